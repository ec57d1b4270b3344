"""nagref.live.table: the live table, its framework summary, progress, and a real run."""

from __future__ import annotations

import pytest

from nagref.live import VARIANTS, table, worker_groups
from nagref.live.table import (
    NOT_INSTALLED,
    LiveRow,
    format_live_table,
    frameworks,
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
        def __init__(self, convention: str, variant: str | None, *, wait: bool) -> None:
            assert not wait  # every worker starts before any is waited for
            self.key = (convention, variant)

        def wait(self) -> str:
            raise RuntimeError("the framework worker exited")

        def close(self) -> None:
            closed.append(self.key)

    monkeypatch.setattr(table, "Worker", Missing)
    rows = run_live(cases=5, progress=lambda d, t, w: pytest.fail("nothing runs"))
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


def test_run_live_on_the_installed_frameworks() -> None:
    calls: list[tuple[int, int, str]] = []
    rows = run_live(cases=1, seed=3, progress=lambda d, t, w: calls.append((d, t, w)))
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
