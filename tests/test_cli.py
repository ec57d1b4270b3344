"""The ``nagref`` command line, in-process and as ``python -m nagref``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nagref.rules
from nagref import __version__, auditing, cli
from nagref.cli import main
from nagref.conventions import REGISTRY
from nagref.live import VARIANTS
from nagref.live.table import INSTALL, NOT_INSTALLED, LiveRow, stderr_progress


def test_conformance_prints_a_table_and_a_verdict_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["conformance", "--steps", "5", "--cases", "0", "--no-theory"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["rule", "formula", "problem", "dtype"]
    rows = [line for line in out[2:] if line.strip() and not line.startswith("PASS")]
    assert len(rows) == 70  # (3 real problems x 4 real dtypes + 1 complex x 2) x 5 formula rows
    assert all(line.split()[-1] in ("ok", "(±0)") for line in rows)
    assert out[-1].startswith("PASS: all 70 checks")


def test_conformance_prints_the_theory_beside_the_measurements(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["conformance", "--steps", "1", "--cases", "0", "--dtype", "float64"]) == 0
    out = capsys.readouterr().out
    assert "linear rates on quadratics" in out
    assert "stability edges" in out
    assert "O(1/k²) bounds" in out
    lines = out.splitlines()
    start = lines.index("linear rates on quadratics (tuned constants, L = 1)")
    nag = next(
        line.split() for line in lines[start:] if line.startswith("nag ") and " 100 " in line
    )
    assert nag[:3] == ["nag", "100", "0.900000"]  # 1 − 1/√κ, then the matrix and the iterates
    assert lines[-1] == (
        "PASS: theory: 9 of 9 linear rates, 5 of 5 stability edges and 3 of 3 O(1/k²) bounds hold"
    )


def test_conformance_dtype_selection(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "conformance",
                "--steps",
                "2",
                "--cases",
                "0",
                "--no-theory",
                "--dtype",
                "float64",
                "--dtype",
                "complex128",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "float64" in out
    assert "complex128" in out
    assert "float32" not in out


def test_a_failing_check_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def naive_sgd(param: object, grad: object, *, lr: float) -> object:
        return param - grad * lr * 1.0000001  # type: ignore[operator]

    monkeypatch.setattr(nagref.rules, "sgd", naive_sgd)
    assert (
        main(["conformance", "--steps", "3", "--cases", "0", "--dtype", "float64", "--no-theory"])
        == 1
    )
    assert capsys.readouterr().out.splitlines()[-1].startswith("FAIL: 3 of 15 checks")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: command"),
        (["conformance", "--steps", "0"], "--steps: expected an integer from 1 to 100000, got '0'"),
        (["conformance", "--steps", "x"], "--steps: expected an integer from 1 to 100000, got 'x'"),
        (["conformance", "--steps", "100001"], "--steps: expected an integer from 1 to 100000"),
        (["conformance", "--cases", "10001"], "--cases: expected an integer from 0 to 10000"),
        (["audit", "t.npz", "--ulps", str(10**400)], "argument --ulps: expected an integer from 0"),
        (["audit", "t.npz", "--ulps", str(10**400)], "got '1" + "0" * 19 + "'...'"),
        (["conformance", "--cases", "9" * 5000], "...'99999999999999999999' (5000 characters)"),
        (["audit", "t.npz", "--ulps", str(2**53 + 1)], f"to {2**53}, got '{2**53 + 1}'"),
        (["conformance", "--timeout", "0"], "--timeout: expected a number of seconds above 0"),
        (["conformance", "--timeout", "nan"], "and at most 86400, got 'nan'"),
        (["conformance", "--start-timeout", "inf"], "--start-timeout: expected a number of"),
        (["conformance", "--timeout", "86401"], "--timeout: expected a number of seconds"),
        (["conformance", "--bogus\nline"], "unrecognized arguments: --bogus\\nline"),
        (["conformance", "--dtype", "int8"], "argument --dtype: invalid choice: 'int8'"),
        (["replay"], "argument command: invalid choice: 'replay'"),
        (["audit"], "the following arguments are required: TRAJECTORY"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nagref", *argv], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_python_dash_m_and_version() -> None:
    # the published formulas alone: the theory runs in the tests beside this one
    argv = ["conformance", "--steps", "2", "--cases", "0", "--no-theory"]
    result = subprocess.run(
        [sys.executable, "-m", "nagref", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("PASS")
    version = subprocess.run(
        [sys.executable, "-m", "nagref", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == f"nagref {__version__}"


def _share(
    monkeypatch: pytest.MonkeyPatch, run: tuple[list[LiveRow], list[tuple[int, int, str]]]
) -> None:
    """``nagref conformance --cases 1`` reads the session's one live-table run (conftest)."""

    def run_live(cases: int, **options: object) -> list[LiveRow]:
        assert cases == 1
        assert set(options) == {"progress", "start_timeout", "case_timeout"}
        return run[0]

    monkeypatch.setattr(cli, "run_live", run_live)


def test_conformance_runs_the_live_frameworks_table(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    live_table_run: tuple[list[LiveRow], list[tuple[int, int, str]]],
) -> None:
    _share(monkeypatch, live_table_run)
    assert main(["conformance", "--steps", "1", "--cases", "1", "--no-theory"]) == 0
    out = capsys.readouterr().out.splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("convention"))
    rows = [line.split() for line in out[start + 2 :] if line and not line.startswith("PASS")]
    live_rows = [(c, v, d) for c, vs in VARIANTS.items() for v, ds in vs.items() for d in ds]
    assert len(rows) == len(live_rows)  # every live row of the registry, on this machine
    assert {row[0] for row in rows} == set(REGISTRY)
    for row in rows:
        assert row[3] == "1", row  # every framework was found and ran
        assert row[4] == "1", row  # bitwise in every case
    assert out[-1] == f"PASS: {len(live_rows)} live cases, every one bitwise"


def test_cases_must_be_a_non_negative_integer(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["conformance", "--cases", "-1"])
    assert exit_info.value.code == 2
    assert "--cases: expected an integer from 0 to 10000, got '-1'" in capsys.readouterr().err


def test_the_bounds_are_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("conformance", "audit"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "steps per problem, 1 to 100000" in text
    assert "dtype, 0 to 10000, run against" in text
    assert "(default: 300)" in text
    assert f"0 to 2**53 = {2**53}" in text


def test_the_ulps_bound_reaches_the_audit_as_an_exact_float(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[float] = []

    def audit(path: object, *, tolerance_ulps: float, infer: bool, progress: object) -> object:
        seen.append(tolerance_ulps)
        raise auditing.TrajectoryError("stop here")

    monkeypatch.setattr(auditing, "audit", audit)
    with pytest.raises(SystemExit):
        main(["audit", "t.npz", "--ulps", str(2**53)])
    assert seen == [float(2**53)]
    assert capsys.readouterr().err == "nagref: error: stop here\n"


def _no_framework(cases: int, **options: object) -> list[LiveRow]:
    return [LiveRow("pytorch", "fused", "float32", NOT_INSTALLED, 0, 0, 0.0)]


def test_no_framework_installed_checks_nothing_and_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "run_live", _no_framework)
    argv = ["conformance", "--steps", "1", "--no-theory", "--dtype", "float64"]
    assert main(argv) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"NOTHING CHECKED: no framework is installed; install them with: {INSTALL}"
    assert "PASS: " not in out[-1]
    assert main([*argv, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["passed"], report["published"]["passed"]) == (False, True)
    assert report["live"]["passed"] is False
    assert report["live"]["verdict"].startswith("NOTHING CHECKED: ")
    assert main([*argv, "--cases", "0"]) == 0  # skipping them is asked for


def test_the_install_command_is_the_projects() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    extra = project["project"]["optional-dependencies"]["frameworks"]
    torch_pin = next(r for r in extra if r.startswith("torch=="))
    assert f"pip install {torch_pin} && pip install 'nagref[frameworks]'" == INSTALL


def test_timeouts_reach_the_live_run(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def run_live(cases: int, **options: object) -> list[LiveRow]:
        seen.update(options, cases=cases)
        return [LiveRow("pytorch", "fused", "float32", "torch 2.13.0", cases, cases, 0.0)]

    monkeypatch.setattr(cli, "run_live", run_live)
    argv = ["conformance", "--steps", "1", "--no-theory", "--dtype", "float64", "--cases", "3"]
    assert main([*argv, "--timeout", "2.5", "--start-timeout", "1e1"]) == 0
    assert seen == {"cases": 3, "progress": None, "case_timeout": 2.5, "start_timeout": 10.0}
    assert main(argv) == 0
    assert (seen["case_timeout"], seen["start_timeout"]) == (300.0, 300.0)


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [(signal.SIGINT, 130, "nagref: interrupted\n"), (signal.SIGTERM, 143, "nagref: terminated\n")],
)
def test_a_signal_is_one_line_and_its_exit_code(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signum: int,
    code: int,
    line: str,
) -> None:
    def run_live(cases: int, **options: object) -> list[LiveRow]:
        if signum == signal.SIGINT:
            raise KeyboardInterrupt  # what Ctrl-C raises
        os.kill(os.getpid(), signum)
        time.sleep(10)
        pytest.fail("the signal did not stop the run")

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli, "run_live", run_live)
    assert main(["conformance", "--steps", "1", "--no-theory", "--dtype", "float64"]) == code
    assert capsys.readouterr().err == line
    assert signal.getsignal(signal.SIGTERM) is before  # the command's own handler is gone


def test_conformance_json_holds_every_table_and_the_frameworks_found(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    live_table_run: tuple[list[LiveRow], list[tuple[int, int, str]]],
) -> None:
    _share(monkeypatch, live_table_run)
    assert (
        main(["conformance", "--steps", "1", "--cases", "1", "--json", "--dtype", "float32"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert report["published"]["passed"] is True
    assert len(report["published"]["rows"]) == 15
    assert {r["method"] for r in report["theory"]["rates"]} == {"gd", "heavy_ball", "nag"}
    assert report["theory"]["verdict"].startswith("PASS: theory")
    live = report["live"]
    rows = sum(len(dtypes) for variants in VARIANTS.values() for dtypes in variants.values())
    assert len(live["rows"]) == rows
    assert live["frameworks_missing"] == []
    assert any(f.startswith("torch 2.13.0") for f in live["frameworks_found"])
    assert live["verdict"] == f"PASS: {rows} live cases, every one bitwise"


def test_the_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    stderr_progress(15, 60, "optax jit float16")
    assert capsys.readouterr().err == (
        "\r\x1b[K[#######.......................] 15/60 cases: optax jit float16"
    )
