"""nagref.live.table: the live table, its framework summary, progress, and a real run."""

from __future__ import annotations

from typing import ClassVar

import pytest

from nagref.live import VARIANTS, Spec, table, worker_groups
from nagref.live.suite import (
    FrameworkError,
    MissingFrameworkError,
    WorkerFailedError,
    run_nagref,
)
from nagref.live.table import (
    INSTALL,
    NOT_INSTALLED,
    NOT_STARTED,
    LiveRow,
    format_live_table,
    frameworks,
    live_verdict,
    run_live,
    stderr_progress,
)

ROWS = [
    LiveRow("pytorch", "single-tensor", "float16", "torch 2.13.0", 12, 12, 0.0),
    LiveRow("pytorch", "fused", "float64", "torch 2.13.0", 3, 2, 1.5),
    LiveRow("keras", "jax", "float32", NOT_INSTALLED, 0, 0, 0.0),
    LiveRow("keras", "torch", "float32", NOT_INSTALLED, 0, 0, 0.0),
    LiveRow("tensorflow", "apply_momentum", "float32", NOT_INSTALLED, 0, 0, 0.0),
    LiveRow("optax", "jit", "float32", "optax 0.2.4, jax 0.4.35", 1, 1, 0.0),
]


def test_the_table_aligns_its_columns() -> None:
    lines = format_live_table(ROWS).split("\n")
    header, rule, *body = lines
    assert header.split() == [
        "convention",
        "variant",
        "dtype",
        "cases",
        "bitwise",
        "max",
        "ulp",
        "framework",
    ]
    assert set(rule) == {"-"}
    assert len(rule) == len(header)
    assert len(body) == len(ROWS)
    # every column starts where its header does
    starts = [header.index(h) for h in ("variant", "dtype", "cases", "bitwise", "max ulp")]
    for line, row in zip(body, ROWS, strict=True):
        cells = [row.variant, row.dtype, str(row.cases), str(row.bitwise)]
        for start, cell in zip(starts, cells, strict=False):
            assert line[start:].startswith(cell + " "), (line, cell)
        assert line.startswith(row.convention + " ")
        assert line.endswith(row.framework)
    assert body[0][starts[4] :].split()[0] == "0"
    assert body[1][starts[4] :].split()[0] == "1.5"
    # no cases ran: no worst ULP to show
    for line in body[2:5]:
        assert line[starts[4] :].split()[0] == "-"


def test_rows_pass_when_every_case_is_bitwise() -> None:
    assert [r.passed for r in ROWS] == [True, False, True, True, True, True]


def test_frameworks_split_found_from_missing() -> None:
    found, missing = frameworks(ROWS)
    assert found == ["optax 0.2.4, jax 0.4.35", "torch 2.13.0"]  # sorted, each once
    # a per-variant framework is named with its variant
    assert missing == ["keras (jax)", "keras (torch)", "tensorflow"]
    assert frameworks([]) == ([], [])


def test_stderr_progress_writes_one_carriage_returned_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stderr_progress(5, 10, "pytorch foreach float16")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err == "\r\x1b[K[" + "#" * 15 + "." * 15 + "] 5/10 cases: pytorch foreach float16"
    )
    stderr_progress(0, 0, "nothing")  # no division by zero
    assert capsys.readouterr().err == "\r\x1b[K[" + "." * 30 + "] 0/0 cases: nothing"
    stderr_progress(7, 7, "done")
    assert "\n" not in capsys.readouterr().err


def test_run_live_reports_a_framework_that_does_not_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed: list[tuple[str, str | None]] = []

    class Missing:  # a worker whose framework is not installed
        def __init__(
            self, convention: str, variant: str | None, *, wait: bool, **timeouts: float
        ) -> None:
            assert not wait  # every worker starts before any is waited for
            self.key = (convention, variant)

        def wait(self) -> str:
            raise MissingFrameworkError("No module named 'torch'")

        def close(self) -> None:
            closed.append(self.key)

        def kill(self) -> None:
            pytest.fail("killed, but nothing went wrong")

    monkeypatch.setattr(table, "Worker", Missing)
    rows = run_live(cases=5, progress=lambda d, t, w: pytest.fail("nothing runs"))
    assert live_verdict(rows) == (
        False,
        f"NOTHING CHECKED: no framework is installed; install them with: {INSTALL}",
    )
    assert [(r.convention, r.variant, r.dtype) for r in rows] == [
        (c, v, d) for c, vs in VARIANTS.items() for v, ds in vs.items() for d in ds
    ]
    assert {(r.framework, r.cases, r.bitwise, r.max_ulp) for r in rows} == {
        (NOT_INSTALLED, 0, 0, 0.0)
    }
    assert sorted(closed) == sorted((c, v) for c, v, _ in worker_groups())
    assert frameworks(rows) == (
        [],
        sorted([f"keras ({v})" for v in VARIANTS["keras"]] + [c for c in VARIANTS if c != "keras"]),
    )


def test_run_live_on_the_installed_frameworks(
    live_table_run: tuple[list[LiveRow], list[tuple[int, int, str]]],
) -> None:
    rows, calls = live_table_run  # run_live(cases=1, seed=3, progress=...)
    expected = [(c, v, d) for c, vs in VARIANTS.items() for v, ds in vs.items() for d in ds]
    assert sorted((r.convention, r.variant, r.dtype) for r in rows) == sorted(expected)
    assert len(rows) == len(expected)
    for row in rows:
        assert row.framework != NOT_INSTALLED, row
        assert row.cases == 1
        assert row.passed, row
        assert row.max_ulp == 0.0
    assert [d for d, _, _ in calls] == list(range(len(expected)))
    assert {t for _, t, _ in calls} == {len(expected)}
    assert {w for _, _, w in calls} == {" ".join(row) for row in expected}
    found, missing = frameworks(rows)
    assert missing == []
    assert any(f.startswith("torch ") for f in found)
    assert any(f.startswith("keras ") and f.endswith("(jax)") for f in found)


def test_a_failed_row_fails_and_says_why_in_one_line() -> None:
    died = "worker died during a case: killed by signal 9 (SIGKILL)"
    rows = [
        LiveRow("pytorch", "foreach", "float32", "torch 2.13.0", 1, 1, 0.0),
        LiveRow("pytorch", "fused", "float32", "torch 2.13.0", 0, 0, 0.0, died),
        LiveRow("keras", "jax", "float32", NOT_STARTED, 0, 0, 0.0, "worker died while starting"),
    ]
    assert [r.passed for r in rows] == [True, False, False]
    body = format_live_table(rows).split("\n")[2:]
    assert body[0].endswith(" torch 2.13.0")
    assert body[1].endswith(f" FAIL (torch 2.13.0): {died}")
    assert body[2].endswith(" FAIL: worker died while starting")
    assert frameworks(rows) == (["torch 2.13.0"], [])  # a failed worker is neither
    assert live_verdict(rows) == (
        False,
        f"FAIL: 2 rows failed; pytorch: {died}; keras (jax): worker died while starting",
    )


def test_the_live_verdict() -> None:
    ok = LiveRow("optax", "jit", "float32", "optax 0.2.4", 3, 3, 0.0)
    assert live_verdict([ok, ROWS[2]]) == (True, "PASS: 3 live cases, every one bitwise")
    assert live_verdict([ok, ROWS[1]]) == (
        False,
        "FAIL: 1 of 6 live cases not bitwise, in 1 rows; 0 rows failed",
    )
    assert live_verdict([])[1].startswith("NOTHING CHECKED: ")
    assert "'nagref[frameworks]'" in INSTALL
    assert INSTALL.index("torch==2.13.0") < INSTALL.index("nagref[frameworks]")  # the CPU build


class _Scripted:
    """A worker that answers from nagref itself, and fails as told."""

    made: ClassVar[list[_Scripted]] = []

    def __init__(self, convention: str, variant: str | None, **options: object) -> None:
        assert options.pop("wait") is False
        self.options = options
        self.convention = convention
        self.served = 0
        self.ended = ""
        self.spec: Spec | None = None
        _Scripted.made.append(self)

    def wait(self) -> str:
        if self.convention == "optax":
            raise WorkerFailedError("worker died while starting: exit code 1: ImportError: x")
        if self.convention == "tensorflow":
            raise KeyboardInterrupt
        return f"{self.convention} 1.0"

    def submit(self, spec: Spec) -> None:
        self.spec = spec
        self.served += 1

    def result(self, spec: Spec) -> list[tuple[object, object]]:
        if self.convention == "pytorch" and self.served == 2:
            raise FrameworkError(f"the framework raised ValueError: no on {spec}")
        if self.convention == "pytorch" and self.served == 4:
            raise WorkerFailedError("worker died during a case: killed by signal 9 (SIGKILL)")
        return run_nagref(spec)  # type: ignore[return-value]

    def close(self) -> None:
        self.ended = self.ended or "closed"

    def kill(self) -> None:
        self.ended = self.ended or "killed"


def test_a_failing_worker_fails_its_rows_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _Scripted.made.clear()
    monkeypatch.setattr(table, "Worker", _Scripted)
    groups = [g for g in worker_groups() if g[0] != "tensorflow"]  # its wait is Ctrl-C
    monkeypatch.setattr(table, "worker_groups", lambda: groups)
    rows = run_live(cases=2, start_timeout=7.0, case_timeout=3.0)
    assert {tuple(w.options.items()) for w in _Scripted.made} == {
        (("start_timeout", 7.0), ("case_timeout", 3.0))
    }
    assert {w.ended for w in _Scripted.made} == {"closed"}
    torch = [r for r in rows if r.convention == "pytorch"]
    # case 2 raised in the framework, the worker died on case 4: 3 cases ran, 2 of them bitwise
    assert [(r.cases, r.bitwise, r.error) for r in torch[:2]] == [
        (2, 1, "the framework raised ValueError: no"),
        (1, 1, "worker died during a case: killed by signal 9 (SIGKILL)"),
    ]
    assert {(r.cases, r.error) for r in torch[2:]} == {
        (0, "worker died during a case: killed by signal 9 (SIGKILL)")
    }
    optax = [r for r in rows if r.convention == "optax"]
    assert {(r.framework, r.cases, r.error) for r in optax} == {
        (NOT_STARTED, 0, "worker died while starting: exit code 1: ImportError: x")
    }
    keras = [r for r in rows if r.convention == "keras"]
    assert keras
    assert all(r.passed and r.cases == 2 for r in keras)
    passed, line = live_verdict(rows)
    assert not passed
    assert line.startswith("FAIL: 1 of ")
    assert "; optax: worker died while starting: exit code 1: ImportError: x" in line


def test_an_interrupt_kills_every_worker_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    _Scripted.made.clear()
    monkeypatch.setattr(table, "Worker", _Scripted)
    groups = sorted(worker_groups(), key=lambda g: g[0] == "tensorflow")  # tensorflow last
    monkeypatch.setattr(table, "worker_groups", lambda: groups)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C while waiting for tensorflow
        run_live(cases=1)
    assert len(_Scripted.made) == len(worker_groups())
    ended = {w.convention: w.ended for w in _Scripted.made}
    assert ended["tensorflow"] == "killed"
    assert ended["pytorch"] == "closed"  # it had finished
    assert set(ended.values()) == {"closed", "killed"}
