"""nagref.live.suite: comparing trajectories, nagref's side, and a real worker process."""

from __future__ import annotations

import select
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest

from nagref._compare import bitwise_equal
from nagref.conventions import pytorch, tensorflow
from nagref.live import Spec, Worker, arrays, check, compare, run_nagref
from nagref.live.suite import (
    FrameworkError,
    MissingFrameworkError,
    WorkerError,
    WorkerFailedError,
    _Tail,
)

SPEC = Spec("pytorch", "foreach", "float32", (3,), 0, (0.1, 0.1))


def _f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def test_compare_counts_elements_and_mismatches() -> None:
    a, b = _f32(1, 2, 3), _f32(1, 2, 3)
    live = [(a, a * 2), (a, None)]
    result = compare(SPEC, live, [(b, b * 2), (b, None)])
    assert (result.elements, result.mismatches, result.max_ulp, result.first) == (9, 0, 0.0, None)
    assert result.bitwise
    off = np.nextafter(np.float32(3), np.float32(np.inf))
    worse = compare(SPEC, live, [(b, b * 2), (_f32(1, 2, off), None)])
    assert (worse.elements, worse.mismatches, worse.max_ulp) == (9, 1, 1.0)
    assert not worse.bitwise
    assert worse.first is not None
    assert worse.first.startswith("step 2, param[2]")
    two = compare(SPEC, live, [(_f32(1, 2, 5), _f32(2, 4, 7)), (b, None)])
    assert two.mismatches == 2
    apart = int(np.float32(5).view(np.int32)) - int(np.float32(3).view(np.int32))
    assert two.max_ulp == apart  # the parameter's 3 -> 5, the larger gap
    assert two.first is not None
    assert two.first.startswith("step 1, param[2]")


def test_nan_equals_nan_but_signed_zeros_differ() -> None:
    nan = _f32(np.nan, 0.0)
    assert compare(SPEC, [(nan, None)], [(nan.copy(), None)]).bitwise
    result = compare(SPEC, [(_f32(0.0, 1.0), None)], [(_f32(-0.0, 1.0), None)])
    assert result.mismatches == 1
    assert result.max_ulp == 0.0  # 0 ULP apart, and still not the same bits
    assert not result.bitwise
    assert compare(SPEC, [(nan, None)], [(_f32(1.0, 0.0), None)]).max_ulp == np.inf


def test_compare_refuses_mismatched_shapes_of_trajectory() -> None:
    a = _f32(1.0)
    with pytest.raises(AssertionError, match="state"):
        compare(SPEC, [(a, a)], [(a, None)])
    with pytest.raises(AssertionError, match="step 1"):
        compare(SPEC, [(a, None)], [(a, a)])
    with pytest.raises(ValueError, match="1 steps against 2"):
        compare(SPEC, [(a, None)], [(a, None), (a, None)])


def _same(x: Any, y: Any) -> bool:
    return bool(bitwise_equal(np.asarray(x), np.asarray(y)).all())


@pytest.mark.parametrize("variant", ["single-tensor", "foreach"])
def test_run_nagref_is_pytorchs_function_step_by_step(variant: str) -> None:
    lr = (0.1, 0.05, 0.2, 0.01)
    spec = Spec("pytorch", variant, "float16", (37,), 4, lr, 0.9, False, 0.3, 1e-3, True, 0.05)
    param, grads = arrays(spec)
    buf = None  # PyTorch has no buffer before its first step
    ours = run_nagref(spec)
    assert len(ours) == 4
    with np.errstate(all="ignore"):
        for t, g in enumerate(grads):
            param, buf = pytorch.sgd(
                param,
                g,
                buf,
                lr=lr[t],
                momentum=0.9,
                dampening=0.3,
                weight_decay=1e-3,
                maximize=True,
                foreach=variant == "foreach",
            )
            assert _same(ours[t][0], param)
            assert _same(ours[t][1], buf)


def test_run_nagref_is_tensorflows_function_from_zeros() -> None:
    spec = Spec("tensorflow", "apply_momentum", "float64", (2, 3), 8, (0.1, 0.3, 0.2), 0.5, True)
    param, grads = arrays(spec)
    accum = np.zeros_like(param)
    ours = run_nagref(spec)
    for t, g in enumerate(grads):
        param, accum = tensorflow.apply_momentum(
            param, accum, g, lr=spec.lr[t], momentum=0.5, use_nesterov=True
        )
        assert _same(ours[t][0], param)
        assert _same(ours[t][1], accum)
    # recorded inputs take the place of the spec's own arrays
    p0, g0 = np.ones((2, 3)), np.full((3, 2, 3), 0.5)
    recorded = run_nagref(spec, (p0, g0))
    first, _ = tensorflow.apply_momentum(
        p0, np.zeros_like(p0), g0[0], lr=0.1, momentum=0.5, use_nesterov=True
    )
    assert _same(recorded[0][0], first)
    assert not _same(recorded[0][0], ours[0][0])


def test_an_unknown_convention_fails_before_any_process_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_process(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a process was started")

    monkeypatch.setattr("nagref.live.suite.subprocess.Popen", no_process)
    with pytest.raises(ValueError, match="unknown convention 'nosuch'"):
        Worker("nosuch")


def test_a_real_tensorflow_worker() -> None:
    worker = Worker("tensorflow", wait=False)
    try:
        assert worker.wait().startswith("tensorflow ")
        assert worker.version == worker.wait()
        spec = Spec("tensorflow", "apply_momentum", "float32", (17,), 2, (0.1, 0.2, 0.3), 0.9, True)
        result = check(worker, spec)
        assert result.bitwise, result.first
        assert result.elements == 3 * 2 * 17  # parameters and accumulators, every step
        special = Spec("tensorflow", "apply_momentum", "float16", (), 5, (0.5,) * 6, special=0.5)
        assert check(worker, special).bitwise
        theirs = worker.run(spec)
        assert compare(spec, theirs, run_nagref(spec)).bitwise
        assert theirs[0][0].dtype == np.float32
        assert theirs[0][0].shape == (17,)
        # the framework's error is raised here, and the worker serves the next case
        with pytest.raises(FrameworkError, match="the framework raised"):
            worker.run(Spec("tensorflow", "apply_momentum", "float32", (-1,), 0, (0.1,)))
        assert check(worker, spec).bitwise
    finally:
        worker.close()


def _fault(monkeypatch: pytest.MonkeyPatch, hook: str) -> None:
    monkeypatch.setenv("NAGREF_LIVE_FAULT", hook)


def test_a_missing_framework_is_told_from_a_broken_one(monkeypatch: pytest.MonkeyPatch) -> None:
    _fault(monkeypatch, "pytorch:missing")
    with pytest.raises(MissingFrameworkError, match="No module named 'torch'"):
        Worker("pytorch")
    _fault(monkeypatch, "pytorch:import")
    worker = Worker("pytorch", wait=False)
    broken = "worker died while starting: exit code 1: ImportError: NAGREF_LIVE_FAULT: "
    with pytest.raises(WorkerFailedError, match=f"^{broken}"):
        worker.wait()
    with pytest.raises(WorkerFailedError, match=f"^{broken}"):  # again, and at once
        worker.run(SPEC)
    assert worker._process.returncode == 1  # reaped
    worker.close()  # closing a dead worker is fine
    _fault(monkeypatch, "pytorch:crash")
    with pytest.raises(WorkerError, match=r"while starting: killed by signal 9 \(SIGKILL\)$"):
        Worker("pytorch")


@pytest.mark.parametrize("kind", ["hang", "stop"])
def test_a_worker_that_does_not_start_in_time_is_killed(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    _fault(monkeypatch, f"pytorch:{kind}")
    worker = Worker("pytorch", wait=False, start_timeout=0.5)
    with pytest.raises(WorkerFailedError) as raised:
        worker.wait()
    assert str(raised.value) == ("worker timed out while starting: no reply within 0.5 s; killed")
    assert worker._process.returncode == -9


def test_a_worker_that_stops_during_a_case_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    _fault(monkeypatch, "pytorch:stop:0")  # stopped on receiving the first case
    worker = Worker("pytorch", case_timeout=1)
    try:
        assert worker.version.startswith("torch ")
        with pytest.raises(
            WorkerFailedError,
            match=r"^worker timed out during a case: no reply within 1 s; killed$",
        ):
            check(worker, SPEC)
        assert worker._process.returncode == -9
        with pytest.raises(WorkerFailedError, match="timed out during a case"):
            worker.submit(SPEC)
    finally:
        worker.close()


def test_the_stderr_tail_drains_everything_and_keeps_the_end() -> None:
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; sys.stderr.write('x' * 10**6 + '\\nlast \\x1b words\\n\\n')",
        ],
        stderr=subprocess.PIPE,
    )
    assert writer.stderr is not None
    tail = _Tail(writer.stderr)
    tail.start()
    assert writer.wait(timeout=60) == 0  # a full pipe would have blocked it
    tail.join(timeout=60)
    assert len(tail.data) == 4096
    assert tail.last_line() == "last   words"  # printable: the escape is gone
    tail.data = b"y" * 300
    assert tail.last_line() == "y" * 197 + "..."
    tail.data = b""
    assert tail.last_line() == ""


def test_a_reply_that_came_while_nagref_ran_is_not_late() -> None:
    worker = Worker("pytorch", case_timeout=0.5)
    try:
        worker.submit(SPEC)
        time.sleep(0.6)  # nagref's side taking longer than the timeout ...
        assert select.select([worker._stdout], [], [], 120)[0]  # ... while the reply came
        assert compare(SPEC, worker.result(SPEC), run_nagref(SPEC)).bitwise
    finally:
        worker.close()
