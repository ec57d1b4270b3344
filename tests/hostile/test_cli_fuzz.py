"""Fuzzing the command line: any argv exits 0, 1 or 2, and 2 is one line on stderr.

``nagref.cli.main`` runs in-process; the expensive runners (the published
table, the theory, the live frameworks, the vectors' writer and the audit)
are cheap fakes that check they were handed values within the documented
bounds. ``explain`` runs for real: it is cheap, and its input is the CLI's.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nagref import auditing, cli, explaining, vectors
from nagref.cli import MAX_CASES, MAX_SECONDS, MAX_STEPS, MAX_ULPS, main
from nagref.live.table import LiveRow
from nagref.report import run

ODD = [
    "",
    " ",
    "-",
    "--",
    "0",
    "1",
    "-1",
    "1.5",
    "nan",
    "-nan",
    "inf",
    "-inf",
    "1e999",
    "-1e999",
    "0x10",
    "1_000",
    "١٢",
    "１",
    "\x00",
    "a\nb",
    "\u2028",
    "é" * 3,
    "🙂",
    "a" * 300,
    str(2**53),
    str(2**53 + 1),
    str(10**400),
    "9" * 5000,
    str(MAX_STEPS),
    str(MAX_STEPS + 1),
    str(MAX_CASES + 1),
    "float32",
    "complex128",
    "3",
    "0.5",
    "2e1",
    "pytorch",
    "keras.sgd",
    "nag",
]
VALUES = st.one_of(
    st.sampled_from(ODD),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)
#: each command's options that take a value, and its flags
OPTIONS = {
    "conformance": (
        ["--steps", "--cases", "--dtype", "--timeout", "--start-timeout"],
        ["--theory", "--no-theory", "--json"],
    ),
    "vectors": (["--out", "--convention", "--dtype"], []),
    "audit": (["--ulps"], ["--json"]),
    "explain": (
        ["--dtype", "--variant", "--lr", "--momentum", "--dampening", "--weight-decay"],
        ["--nesterov", "--maximize", "--json"],
    ),
}
#: values each option takes, for runs that get as far as the runner
GOOD = {
    "--steps": ["1", "7", str(MAX_STEPS)],
    "--cases": ["0", "2", str(MAX_CASES)],
    "--dtype": ["float64", "float32", "float16"],
    "--timeout": ["0.5", "300", "1e-9", str(MAX_SECONDS)],
    "--start-timeout": ["2", "86400.0"],
    "--out": ["out", "a/b"],
    "--convention": list(vectors.CONVENTIONS),
    "--ulps": ["0", "4", str(MAX_ULPS)],
    "--variant": ["foreach", "jit"],
    "--lr": ["0.1", "0", "1e-30"],
    "--momentum": ["0", "0.9"],
    "--dampening": ["0.5"],
    "--weight-decay": ["1e-4"],
}
ANYWHERE = ["--help", "--version", "--bogus", "-x", "--steps=5", "--ulps=1e400"]


def _argv(command: str) -> st.SearchStrategy[list[str]]:
    """``command``, then options with values (odd ones included), flags and strays."""
    valued, flags = OPTIONS[command]
    good = st.sampled_from(valued).flatmap(
        lambda option: st.tuples(st.just(option), st.sampled_from(GOOD[option]))
    )
    token = st.one_of(
        good.map(list),
        good.map(list),  # twice as likely: runs that reach the runner are the rarer ones
        st.tuples(st.sampled_from(valued), VALUES).map(list),
        st.sampled_from(flags + ANYWHERE).map(lambda flag: [flag]),
        VALUES.map(lambda value: [value]),
    )
    first = {"explain": st.sampled_from(explaining.names()), "audit": VALUES}.get(command)
    head = st.just([command]) if first is None else first.map(lambda name: [command, name])
    return st.tuples(head, st.lists(token, max_size=4)).map(lambda p: sum(p[1], p[0]))


_TABLE = run(steps=1, dtypes=("float64",))


def _fakes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Cheap runners that check their arguments; the list names each one called."""
    called: list[str] = []

    def fake_run(steps: int, dtypes: Any) -> Any:
        assert 1 <= steps <= MAX_STEPS
        called.append("conformance")
        return _TABLE

    def fake_live(cases: int, **options: Any) -> list[LiveRow]:
        assert 1 <= cases <= MAX_CASES
        for name in ("start_timeout", "case_timeout"):
            assert 0 < options[name] <= MAX_SECONDS
        return [LiveRow("pytorch", "fused", "float32", "torch 2.13.0", cases, cases, 0.0)]

    def fake_write(directory: Path, *selection: Any) -> list[Path]:
        assert "\0" not in str(directory)
        called.append("vectors")
        return []

    def fake_audit(path: Path, *, tolerance_ulps: float, infer: bool, progress: Any) -> Any:
        assert isinstance(infer, bool)
        assert progress is None or callable(progress)
        assert isinstance(tolerance_ulps, float)
        assert math.isfinite(tolerance_ulps)
        assert 0 <= tolerance_ulps <= MAX_ULPS
        called.append("audit")
        if len(str(path)) % 2:
            raise auditing.TrajectoryError(f"{path}: cannot read: no such file")
        return types.SimpleNamespace(exit_code=len(str(path)) % 4 // 2, to_json=dict)

    theory = types.SimpleNamespace(
        rates=list, edges=list, bounds=list, verdict=lambda *c: (True, "PASS: theory"),
        format_theory=lambda *c: "",
    )  # fmt: skip
    monkeypatch.setattr(cli, "run", fake_run)
    monkeypatch.setattr(cli, "run_live", fake_live)
    monkeypatch.setattr(cli, "theory", theory)
    monkeypatch.setattr(vectors, "write", fake_write)
    monkeypatch.setattr(auditing, "audit", fake_audit)
    monkeypatch.setattr(auditing, "format_report", lambda report: "report")
    real_explain = explaining.explain

    def explain(*args: Any, **kwargs: Any) -> Any:
        called.append("explain")
        return real_explain(*args, **kwargs)

    monkeypatch.setattr(explaining, "explain", explain)
    return called


def _exit(argv: list[str]) -> object:
    try:
        return main(argv)
    except SystemExit as stop:  # argparse: --help, --version and errors
        return stop.code


def _check(argv: list[str], read: Callable[[], Any]) -> object:
    code = _exit(argv)
    err = read().err
    assert code in (0, 1, 2), (argv, code)
    if code == 2:
        assert len(err.splitlines()) == 1, (argv, err)
        assert err.endswith("\n")
        assert err.startswith("nagref")
        assert ": error: " in err
    assert "Traceback" not in err
    return code


@pytest.mark.parametrize("command", list(OPTIONS))
def test_any_argv_exits_0_1_or_2_and_2_is_one_line(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    called = _fakes(monkeypatch)
    codes: list[object] = []

    @settings(max_examples=50, deadline=None)
    @given(argv=_argv(command))
    def case(argv: list[str]) -> None:
        codes.append(_check(argv, capsys.readouterr))

    case()
    assert set(codes) >= {0, 2}
    assert called.count(command) >= 5  # the runner is reached, with values in bounds


@pytest.mark.parametrize(
    "argv",
    [
        ["conformance", "--steps", str(10**400)],
        ["conformance", "--cases", "9" * 5000],
        ["conformance", "--timeout", "1e999"],
        ["audit", "t.npz", "--ulps", str(10**400)],
        ["audit", "t\0.npz"],
        ["vectors", "--out", "a\0b"],
        ["vectors", "--out", "a" * 300],
        ["explain", "nag", "--lr", "1e999"],
        ["explain", "nag\n2"],
        ["conformance", "--bogus\u2028x"],
    ],
)
def test_the_hostile_arguments_found_so_far(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fakes(monkeypatch)
    assert _exit(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("nagref")
