"""``nagref conformance`` tells the truth when its framework workers fail.

Each test runs the real command in a subprocess, with the worker's test hook
``NAGREF_LIVE_FAULT`` (see :mod:`nagref.live.worker`) making workers miss
their framework, fail to import it, die, stop or hang; most frameworks are
"missing" so that each run imports at most one or two. Every run is tagged
with an environment marker, so that no worker may outlive it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from nagref.live import VARIANTS
from nagref.live.table import INSTALL

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

COMMAND = [sys.executable, "-m", "nagref", "conformance", "--steps", "1", "--no-theory"]
FAST = ["--dtype", "float64", "--cases", "1"]
SIGKILL = "killed by signal 9 (SIGKILL)"


class Run:
    """The command, started with faults and a marker of its own."""

    def __init__(self, fault: str, *args: str) -> None:
        self.marker = uuid.uuid4().hex
        env = dict(os.environ, NAGREF_LIVE_FAULT=fault, NAGREF_TEST_MARKER=self.marker)
        self.popen = subprocess.Popen(
            [*COMMAND, *FAST, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            # Ctrl-C is ignored in background jobs; the command gets it as a terminal would
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
        )

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        out, err = self.popen.communicate(timeout=timeout)
        return self.popen.returncode, out, err

    def workers(self) -> list[int]:
        """The live processes with this run's marker, the command itself apart."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as environ:
                    tagged = f"NAGREF_TEST_MARKER={self.marker}".encode() in environ.read()
            except OSError:  # gone, or not ours
                continue
            if tagged and int(pid) != self.popen.pid:
                found.append(int(pid))
        return found

    def wait_for_worker(self, convention: str) -> int:
        """The process id of ``convention``'s worker, once it runs."""
        deadline = time.monotonic() + 60
        while True:
            for pid in self.workers():
                with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if cmdline.read().endswith(f"nagref.live.worker\0{convention}\0".encode()):
                        return pid
            assert time.monotonic() < deadline, f"no {convention} worker started"
            time.sleep(0.05)

    def no_worker_left(self, grace: float = 0.0) -> bool:
        deadline = time.monotonic() + grace
        while self.workers():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    """The runs a test starts; any still running at the end is killed."""
    started: list[Run] = []
    yield started
    for run in started:
        if run.popen.poll() is None:
            run.popen.kill()
            run.popen.wait()


def _start(runs: list[Run], fault: str, *args: str) -> Run:
    runs.append(Run(fault, *args))
    return runs[-1]


def _rows(out: str, convention: str) -> list[str]:
    """The table's rows of ``convention`` (``"keras jax"``: of that variant too)."""
    words = convention.split()
    return [line for line in out.splitlines() if line.split()[: len(words)] == words]


def test_workers_that_fail_to_start_are_failures_with_their_reasons(runs: list[Run]) -> None:
    # the first match wins: every other convention's workers exit with code 3
    fault = "pytorch:import,optax:crash,keras/jax:hang,keras:missing,*:exit"
    # long enough for every worker to start on two busy cores; keras/jax hangs till then
    run = _start(runs, fault, "--start-timeout", "15")
    code, out, err = run.finish()
    assert (code, err) == (1, "")
    assert run.no_worker_left()
    exited = "FAIL: worker died while starting: exit code 3: NAGREF_LIVE_FAULT: exiting with code 3"
    expected = {
        **{name: exited for name in VARIANTS if name not in ("pytorch", "optax", "keras")},
        "pytorch": "FAIL: worker died while starting: exit code 1: ImportError: "
        "NAGREF_LIVE_FAULT: the framework's import raised",
        "optax": f"FAIL: worker died while starting: {SIGKILL}",
        "keras jax": "FAIL: worker timed out while starting: no reply within 15 s; killed",
    }
    assert "tensorflow" in expected
    for convention, cell in expected.items():
        rows = _rows(out, convention)
        assert rows
        assert all(row.endswith(f"  {cell}") for row in rows), rows
    keras = [row for row in _rows(out, "keras") if " jax " not in row]
    assert keras
    assert all(row.endswith(" not installed") for row in keras)  # only these are missing
    missing = "; ".join(f"keras ({v})" for v in sorted(VARIANTS["keras"]) if v != "jax")
    assert f"frameworks not found: {missing}" in out
    last = out.splitlines()[-1]
    # every row of the failing frameworks: keras's jax variant and all of the others'
    failing = sum(
        len(dtypes)
        for convention, variants in VARIANTS.items()
        for variant, dtypes in variants.items()
        if convention != "keras" or variant == "jax"
    )
    assert last.startswith(f"FAIL: {failing} rows failed; ")
    assert "; keras (jax): worker timed out while starting" in last
    assert "PASS" not in out.split("convention ")[-1]


def test_a_worker_killed_mid_run_fails_its_rows_and_the_others_run(runs: list[Run]) -> None:
    run = _start(runs, "pytorch:crash:1,keras:missing,tensorflow:missing")
    code, out, err = run.finish()
    assert (code, err) == (1, "")
    assert run.no_worker_left()
    pytorch = _rows(out, "pytorch")
    assert pytorch[0].split()[3:6] == ["1", "1", "0"]  # the first case ran, bitwise
    died = f"worker died during a case: {SIGKILL}"
    for row in pytorch[1:]:
        assert row.split()[3:6] == ["0", "0", "-"]
        assert row.endswith(f"FAIL (torch {row.split('(torch ')[1].split(')')[0]}): {died}")
    optax = _rows(out, "optax")
    assert optax
    assert all(row.split()[3:6] == ["1", "1", "0"] for row in optax)  # still run
    assert out.splitlines()[-1] == f"FAIL: {len(pytorch) - 1} rows failed; pytorch: {died}"


def test_a_worker_killed_from_outside_is_a_failure(runs: list[Run]) -> None:
    run = _start(runs, "pytorch:hang:0,keras:missing,tensorflow:missing,optax:missing")
    worker = run.wait_for_worker("pytorch")
    time.sleep(1)  # most likely in its first case by now; either way it is a failure
    os.kill(worker, signal.SIGKILL)
    code, out, err = run.finish()
    assert (code, err) == (1, "")
    last = out.splitlines()[-1]
    rows = sum(map(len, VARIANTS["pytorch"].values()))
    died = rf"FAIL: {rows} rows failed; pytorch: worker died (during a case|while starting): "
    assert re.fullmatch(died + re.escape(SIGKILL), last), last


def test_a_stopped_worker_times_out_and_is_killed(runs: list[Run]) -> None:
    # every other framework missing: on two busy cores a live one may take 2 s for a case too
    others = ",".join(f"{name}:missing" for name in VARIANTS if name != "pytorch")
    run = _start(runs, f"pytorch:stop:0,{others}", "--timeout", "2")
    code, out, err = run.finish()
    assert (code, err) == (1, "")
    assert run.no_worker_left()
    late = "worker timed out during a case: no reply within 2 s; killed"
    assert all(row.endswith(late) for row in _rows(out, "pytorch"))
    assert out.splitlines()[-1].endswith(f"rows failed; pytorch: {late}")


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [(signal.SIGINT, 130, "nagref: interrupted\n"), (signal.SIGTERM, 143, "nagref: terminated\n")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_signal_stops_the_command_and_its_workers(
    runs: list[Run], signum: int, code: int, line: str
) -> None:
    run = _start(runs, "pytorch:hang:0,keras:missing,tensorflow:missing,optax:missing")
    run.wait_for_worker("pytorch")
    time.sleep(0.5)
    run.popen.send_signal(signum)
    assert run.finish(timeout=30) == (code, "", line)  # no traceback, no half report
    assert run.no_worker_left()


def test_a_killed_command_leaves_no_worker(runs: list[Run]) -> None:
    run = _start(runs, "pytorch:hang:0,keras:missing,tensorflow:missing,optax:missing")
    run.wait_for_worker("pytorch")
    run.popen.kill()  # nothing of the command's own runs: the kernel ends its workers
    assert run.finish(timeout=30)[0] == -signal.SIGKILL
    assert run.no_worker_left(grace=10)


def test_nothing_installed_is_nothing_checked_not_a_pass(runs: list[Run]) -> None:
    code, out, err = _start(runs, "*:missing").finish()
    assert (code, err) == (1, "")
    nothing = f"NOTHING CHECKED: no framework is installed; install them with: {INSTALL}"
    assert out.splitlines()[-1] == nothing
    assert "frameworks found: none" in out
    code, out, _ = _start(runs, "*:missing", "--json").finish()
    assert code == 1
    report = json.loads(out)
    assert (report["passed"], report["live"]["passed"]) == (False, False)
    assert report["live"]["verdict"] == nothing
