"""nagref.live.worker and its drivers: the JSON-lines protocol, spoken to a real process."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from conformance import require
from nagref._compare import bitwise_equal
from nagref.live import VARIANTS, Spec, arrays, run_nagref
from nagref.live.drivers import keras as keras_driver
from nagref.live.drivers import per_step
from nagref.live.worker import _missing, fault, framework_modules

torch = require("torch")

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")


class Process:
    """A worker process, one JSON line in and one out."""

    def __init__(self, *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "nagref.live.worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=ENV,
        )
        self.version: dict[str, Any] = {}

    def read(self) -> dict[str, Any]:
        assert self.popen.stdout is not None
        return dict(json.loads(self.popen.stdout.readline()))

    def ask(self, spec: Spec) -> dict[str, Any]:
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps(spec.to_json()) + "\n")
        self.popen.stdin.flush()
        return self.read()

    def close(self) -> int:
        assert self.popen.stdin is not None
        self.popen.stdin.close()
        return self.popen.wait(timeout=60)


@pytest.fixture(scope="module")
def pytorch_worker() -> Iterator[Process]:
    process = Process("pytorch")
    process.version = process.read()  # the first line, before any case
    try:
        yield process
    finally:
        process.close()


def _decode(text: str | None, spec: Spec) -> np.ndarray | None:
    if text is None:
        return None
    return np.frombuffer(base64.b64decode(text), dtype=spec.dtype).reshape(spec.shape)


def _torch(spec: Spec, **options: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """torch.optim.SGD on the spec's arrays, here in the test's own process."""
    param, grads = arrays(spec)
    p = torch.tensor(param)
    opt = torch.optim.SGD(
        [p],
        lr=spec.lr[0],
        momentum=spec.momentum or 0.0,
        nesterov=spec.nesterov,
        weight_decay=spec.weight_decay or 0.0,
        dampening=spec.dampening,
        **options,
    )
    out = []
    for lr, g in zip(spec.lr, grads, strict=True):
        opt.param_groups[0]["lr"] = lr
        p.grad = torch.tensor(g)
        opt.step()
        buf = opt.state[p].get("momentum_buffer")
        out.append((p.detach().numpy().copy(), None if buf is None else buf.numpy().copy()))
    return out


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(bitwise_equal(a, b).all())


def test_the_worker_announces_its_framework(pytorch_worker: Process) -> None:
    version = pytorch_worker.version
    assert list(version) == ["version"]
    assert version["version"] == f"torch {torch.__version__}"


@pytest.mark.parametrize(
    ("spec", "options"),
    [
        (
            Spec(
                "pytorch",
                "foreach",
                "float32",
                (37,),
                1,
                (0.1, 0.05, 0.2),
                0.9,
                True,
                0.0,
                1e-2,
                special=0.1,
            ),
            {"foreach": True},
        ),
        (
            Spec("pytorch", "single-tensor", "float16", (2, 3), 2, (0.5, 0.25), 0.5, False, 0.3),
            {"foreach": False},
        ),
        (Spec("pytorch", "fused", "float64", (), 3, (0.1,), None), {"fused": True}),
    ],
    ids=["foreach", "single-tensor", "fused-no-momentum"],
)
def test_the_reply_is_torchs_trajectory(
    pytorch_worker: Process, spec: Spec, options: dict[str, bool]
) -> None:
    reply = pytorch_worker.ask(spec)
    assert list(reply) == ["steps"]
    assert len(reply["steps"]) == spec.steps
    with np.errstate(all="ignore"):
        expected = _torch(spec, **options)
    for (p, s), (want_p, want_s) in zip(reply["steps"], expected, strict=True):
        assert _same(_decode(p, spec), want_p)
        assert _same(_decode(s, spec), want_s)
    if spec.momentum is None:  # no momentum, no buffer: a JSON null
        assert {s for _, s in reply["steps"]} == {None}


def test_a_framework_error_is_a_reply_and_the_worker_serves_on(pytorch_worker: Process) -> None:
    # a foreach variant whose kernels this CPU runs (AVX-512, else AVX2)
    foreach = next(v for v in VARIANTS["pytorch"] if v.startswith("foreach"))
    bad = Spec("pytorch", foreach, "float32", (3,), 0, (0.1,), momentum=0.0, nesterov=True)
    reply = pytorch_worker.ask(bad)
    assert list(reply) == ["error"]
    assert reply["error"].startswith("ValueError: ")
    assert "Nesterov" in reply["error"]
    good = Spec("pytorch", foreach, "float32", (3,), 0, (0.1,))
    assert len(pytorch_worker.ask(good)["steps"]) == 1


def test_the_worker_ignores_ctrl_c_its_parent_ends_it(pytorch_worker: Process) -> None:
    pytorch_worker.popen.send_signal(signal.SIGINT)
    spec = Spec("pytorch", "foreach", "float32", (3,), 0, (0.1,))
    assert len(pytorch_worker.ask(spec)["steps"]) == 1  # it serves on
    assert pytorch_worker.popen.poll() is None


def test_the_worker_exits_cleanly_at_the_end_of_its_input() -> None:
    process = Process("pytorch")
    assert "version" in process.read()
    assert process.close() == 0


@pytest.mark.parametrize("args", [("keras",), ("nosuch",)])
def test_a_worker_that_cannot_start_prints_no_version(args: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nagref.live.worker", *args],
        input="",
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert "ValueError" in done.stderr


def _worker(hook: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nagref.live.worker", *args],
        input="",
        capture_output=True,
        text=True,
        env=dict(ENV, NAGREF_LIVE_FAULT=hook),
        timeout=120,
        check=False,
    )


def test_a_missing_framework_is_the_first_line() -> None:
    done = _worker("keras/jax:missing", "keras", "jax")
    assert (done.returncode, done.stdout) == (0, '{"missing": "No module named \'jax\'"}\n')
    done = _worker("*:missing", "tensorflow")
    assert json.loads(done.stdout) == {"missing": "No module named 'tensorflow'"}


def test_a_broken_framework_is_a_traceback_and_an_exit_code() -> None:
    done = _worker("optax:import", "optax")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines()[-1] == (
        "ImportError: NAGREF_LIVE_FAULT: the framework's import raised"
    )
    done = _worker("pytorch:exit", "pytorch")
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == "NAGREF_LIVE_FAULT: exiting with code 3\n"
    crashed = _worker("pytorch:crash", "pytorch")
    assert crashed.returncode == -signal.SIGKILL


def test_only_the_frameworks_own_package_missing_is_not_installed() -> None:
    assert framework_modules("keras tensorflow-cpu jax torch==2.13.0") == {
        "keras",
        "tensorflow",
        "jax",
        "torch",
    }
    assert framework_modules("optax>=0.2 Some-Pkg[extra]") == {"optax", "some_pkg"}
    absent = ModuleNotFoundError("No module named 'nosuchframework'", name="nosuchframework.sub")
    assert _missing(absent, "nosuchframework") == "nosuchframework"
    assert _missing(absent, "torch==2.13.0") is None  # another package: a broken install
    broken = ModuleNotFoundError("No module named 'torch._C'", name="torch._C")
    assert _missing(broken, "torch==2.13.0") is None  # torch is there, and broken
    assert _missing(ModuleNotFoundError("no name"), "torch==2.13.0") is None


def test_the_fault_hook_picks_the_first_fault_for_this_worker() -> None:
    hook = "keras/jax:hang, keras:missing,pytorch:crash:2"
    assert fault("keras", "jax", hook) == ("hang", None)
    assert fault("keras", "torch", hook) == ("missing", None)
    assert fault("pytorch", None, hook) == ("crash", 2)
    assert fault("optax", None, hook) is None
    assert fault("optax", None, "") is None
    assert fault("optax", None, "*:stop:0") == ("stop", 0)


def test_the_optax_driver_has_no_state_without_momentum() -> None:
    process = Process("optax")
    try:
        assert process.read()["version"].startswith("optax ")
        spec = Spec("optax", "jit", "float64", (5,), 4, (0.1, 0.2, 0.3), None)
        reply = process.ask(spec)
        ours = run_nagref(spec)
        for (p, s), (want_p, want_s) in zip(reply["steps"], ours, strict=True):
            assert s is None
            assert want_s is None
            assert _same(_decode(p, spec), want_p)
    finally:
        assert process.close() == 0


def test_the_keras_driver_needs_a_backend() -> None:
    before = os.environ.get("KERAS_BACKEND")
    with pytest.raises(ValueError, match="backend"):
        keras_driver.start(None)
    assert os.environ.get("KERAS_BACKEND") == before  # refused before touching anything


def test_per_step_gives_arrays_that_keep_the_sign_of_zero() -> None:
    grads = np.array([1.0, -0.0, 0.0, 2.5], dtype=np.float32)
    steps = per_step(grads)
    assert len(steps) == 4
    for step, value in zip(steps, grads, strict=True):
        assert type(step) is np.ndarray  # not a NumPy scalar
        assert step.shape == ()
        assert step.dtype == np.float32
        assert bitwise_equal(step, value)
    assert np.signbit(steps[1])
    assert not np.signbit(steps[2])
    matrix = np.arange(6.0).reshape(3, 2)
    rows = per_step(matrix)
    assert [r.shape for r in rows] == [(2,)] * 3
    rows[0][0] = 9.0  # copies: the gradients are not changed through them
    assert matrix[0, 0] == 0.0
