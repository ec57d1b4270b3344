"""nagref.record.keras: Keras ``model.fit`` recorded on TensorFlow, JAX (jitted and eager)
and torch audits to its own backend's convention, recording leaves fit's weights bit for
bit alone, and misuse says what is wrong. One process per backend (Keras picks it at
import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance import require

require("keras")

SRC = str(Path(__file__).resolve().parents[2] / "src")

#: Fit a small MLP twice, without and with the recording; print what the audit says.
FIT = """
import json, sys
import numpy as np
import keras
import nagref.record
from nagref.auditing import audit_model, open_model

path, jit, model_kind, decay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
rng = np.random.default_rng(0)
x = rng.standard_normal((96, 6)).astype("float32")
y = np.sin(x[:, :1]).astype("float32")

def fit(record):
    keras.utils.set_random_seed(0)
    if model_kind.startswith("mlp"):  # mlp2: two outputs
        layers = [keras.layers.Dense(16, activation="tanh"),
                  keras.layers.Dense(8, activation="relu"),
                  keras.layers.Dense(2 if model_kind == "mlp2" else 1)]
    else:  # one Dense layer of 8 outputs: XLA fuses its bias's gradient into the update
        layers = [keras.layers.Dense(8)]
    model = keras.Sequential([keras.Input((6,)), *layers])
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, 4, 0.8)
    opt = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True,
                               weight_decay=decay or None)
    opt.exclude_from_weight_decay(var_names=["bias"])
    target = {"mlp": y, "mlp2": np.sin(x[:, :2])}.get(model_kind, np.tile(y, 8))
    model.compile(optimizer=opt, loss="mse", jit_compile={"auto": "auto", "1": True,
                                                          "0": False}[jit])
    if record:
        with nagref.record.keras(opt, path):
            model.fit(x, target, batch_size=12, epochs=3, verbose=0, shuffle=False)
    else:
        model.fit(x, target, batch_size=12, epochs=3, verbose=0, shuffle=False)
    return [keras.ops.convert_to_numpy(v.value).tobytes() for v in model.trainable_variables]

plain, recorded = fit(False), fit(True)
m = open_model(path)
report = audit_model(path)
best = report.matches[0]
print(json.dumps({
    "same": plain == recorded, "run": m.run, "steps": m.steps,
    "tensors": [[t.name, t.group] for t in m.tensors],
    "lr": list(m.groups[0].lr[:6]), "weight_decay": [g.fixed["weight_decay"] for g in m.groups],
    "bitwise": report.bitwise, "best": best.candidate, "best_first": best.first_tensor,
    "best_tensors": best.tensors_bitwise, "best_step": best.first.step if best.first else None,
    "ranked": {m.candidate: [str(m.status), m.max_ulp] for m in report.matches},
}))
"""


def _run(backend: str, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": SRC, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", code, *args], check=False, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def _fit(tmp_path: Path, backend: str, jit: str, model: str, decay: float) -> dict[str, Any]:
    done = _run(backend, FIT, str(tmp_path / "run.trajectory"), jit, model, str(decay))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("nagref: recorded 24 steps of "), lines
    result: dict[str, Any] = json.loads(lines[-1])
    return result


#: What each backend's model.fit audits to, bit for bit: its own variant and those that
#: compute the same float32 arithmetic (measured, Keras 3.15.1).
EAGER = ["keras tensorflow, nesterov", "keras jax, nesterov", "keras numpy, nesterov",
         "keras tensorflow-function, nesterov", "keras jax-callable-lr, nesterov",
         "tf_keras sgd, nesterov",
         "tf_keras sgd-floatx64, nesterov", "tf_keras sgd-function, nesterov"]  # fmt: skip
JIT = ["keras jax-jit, nesterov", "keras tensorflow-jit, nesterov", "tf_keras sgd-jit, nesterov"]
TORCH = ["keras torch, nesterov", "keras torch-callable-lr, nesterov"]


@pytest.mark.parametrize(
    ("backend", "jit", "decay", "bitwise", "compiled"),
    [
        ("tensorflow", "auto", 0.004, EAGER, True),  # a tf.function, not XLA, on a CPU
        (
            "tensorflow",
            "auto",
            0.0,
            [
                *EAGER[:5],
                "sklearn update_params, nesterov",
                *EAGER[5:],
                "tf_keras legacy, nesterov",
                "tf_keras raw_op, nesterov",
            ],
            True,
        ),
        ("jax", "auto", 0.004, JIT, True),
        ("jax", "0", 0.004, EAGER, False),
        ("torch", "auto", 0.004, TORCH, False),
    ],
    ids=["tensorflow", "tensorflow-no-decay", "jax-jit", "jax-eager", "torch"],
)
def test_model_fit_audits_to_its_backend_and_keeps_its_bits(
    tmp_path: Path, backend: str, jit: str, decay: float, bitwise: list[str], compiled: bool
) -> None:
    r = _fit(tmp_path, backend, jit, "mlp", decay)
    assert r["same"] is True  # fit's weights: the same bits with and without the recording
    assert r["bitwise"] == bitwise
    run = r["run"]
    assert (run["framework"], run["optimizer"]) == ("keras", "SGD")
    assert run["options"]["backend"] == backend
    assert run["options"]["compiled"] is compiled
    assert (run["threads"] is None) == (backend != "torch")
    assert r["steps"] == 24
    names = [name.split("/")[-1] for name, _ in r["tensors"]]
    assert names == ["kernel", "bias"] * 3
    # the bias is excluded from the decoupled weight decay: group 1, weight_decay 0
    groups = [0, 1] * 3 if decay else [0] * 6
    assert [g for _, g in r["tensors"]] == groups
    assert r["weight_decay"] == ([decay, 0.0] if decay else [0.0])
    lr = r["lr"]
    assert lr[0] == pytest.approx(0.05)
    assert lr[5] < lr[4] < lr[0]  # the schedule, as each step computed it


def test_jax_fit_fusing_a_bias_gradient_is_no_bitwise_match(tmp_path: Path) -> None:
    # A Dense layer of 8 outputs under model.fit's jax.jit: XLA fuses its bias's
    # gradient (a reduction of the loss's) into the bias's update, whose arithmetic
    # keras jax-jit does not model: the audit claims no match and names keras jax-jit
    # the closest, bit for bit on the kernel and off on the bias from step 2;
    # the recording still leaves fit's bits alone. (An MLP ending in Dense(1) matches.)
    r = _fit(tmp_path, "jax", "auto", "dense", 0.0)
    assert r["same"] is True
    assert r["bitwise"] == []
    assert r["best"] == "keras jax-jit, nesterov"
    assert str(r["best_first"]).endswith("/bias")
    assert r["best_tensors"] == 1  # the kernel
    assert r["best_step"] == 2


def test_tensorflow_fit_folds_the_weight_decay_as_tensorflow_function_does(
    tmp_path: Path,
) -> None:
    # model.fit's tf.function on TensorFlow: Grappler folds θ·λ·η to θ·fl(λ·η), which
    # Keras 3's tensorflow-function variant models (docs/conventions.md), as tf-keras's
    # sgd-function does. Where that changes a bit (here: an MLP of two outputs), the
    # audit names those two, indistinguishable here, and no eager variant
    r = _fit(tmp_path, "tensorflow", "auto", "mlp2", 0.004)
    assert r["same"] is True
    assert r["bitwise"] == [
        "keras tensorflow-function, nesterov",
        "tf_keras sgd-function, nesterov",
    ]
    assert r["ranked"]["keras tensorflow, nesterov"] == ["within", 1.0]
    assert r["weight_decay"] == [0.004, 0.0]


#: Eager steps: Keras's own apply loop (the NumPy backend has no fit), and fit with
#: run_eagerly (a callable learning rate, its Python float recorded as it is).
EAGERLY = """
import json, sys
import numpy as np
import keras
import nagref.record
from nagref.auditing import audit_model, open_model

rng = np.random.default_rng(3)
if sys.argv[1] == "loop":
    w = keras.Variable(rng.standard_normal(37).astype("float32"))
    opt = keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True)
    with nagref.record.keras(opt, "run.trajectory", quiet=True):
        for _ in range(10):
            g = 0.5 * keras.ops.convert_to_numpy(w.value)
            opt.apply([keras.ops.convert_to_tensor(g)], [w])
else:
    x = rng.standard_normal((48, 5)).astype("float32")
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="tanh"),
                              keras.layers.Dense(1)])
    opt = keras.optimizers.SGD(lambda: 0.03, momentum=0.8, nesterov=True)
    model.compile(optimizer=opt, loss="mse", run_eagerly=True)
    with nagref.record.keras(opt, "run.trajectory", quiet=True):
        model.fit(x, np.sin(x[:, :1]), batch_size=8, epochs=2, verbose=0, shuffle=False)
m = open_model("run.trajectory")
print(json.dumps({"run": m.run, "steps": m.steps, "lr": m.groups[0].lr[0],
                  "bitwise": audit_model("run.trajectory").bitwise}))
"""


@pytest.mark.parametrize(
    ("backend", "how", "steps", "lr"),
    [("numpy", "loop", 10, 0.05000000074505806), ("tensorflow", "fit", 12, 0.03)],
)
def test_eager_steps_audit_to_their_backend(
    tmp_path: Path, backend: str, how: str, steps: int, lr: float
) -> None:
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": SRC, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", EAGERLY, how], check=False, cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads(done.stdout.splitlines()[-1])
    assert (r["run"]["options"]["backend"], r["run"]["options"]["compiled"]) == (backend, False)
    assert (r["steps"], r["lr"]) == (steps, lr)  # a float: Keras's float32 variable
    assert f"keras {backend}, nesterov" in r["bitwise"]
    assert not [name for name in r["bitwise"] if "jit" in name or "torch" in name]


XLA = """
import numpy as np
import keras
import nagref.record

x = np.ones((8, 3), "float32")
opt = keras.optimizers.SGD(0.1)
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
model.compile(optimizer=opt, loss="mse", jit_compile=True)
try:
    with nagref.record.keras(opt, "x.trajectory"):
        model.fit(x, x[:, :1], verbose=0)
except ValueError as error:
    print(error)
"""


def test_tensorflow_under_xla_is_refused(tmp_path: Path) -> None:
    # XLA cannot call back to the host: refused when the step is traced, not recorded wrong
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-c", XLA], check=False, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        "nagref: recorded 0 steps; x.trajectory not written",
        "TensorFlow under XLA (jit_compile=True) cannot call back to the host: record "
        "model.fit with jit_compile=False",
    ]


MISUSE = """
import numpy as np
import keras
import nagref.record
from nagref.auditing import open_model

def attempt(what, call):
    try:
        call()
    except Exception as error:
        print(what, type(error).__name__, error)
    else:
        print(what, "no error")

sgd = keras.optimizers.SGD(0.1)
with nagref.record.keras(sgd, "z.trajectory"):
    pass
attempt("adam", lambda: nagref.record.keras(keras.optimizers.Adam(), "a.trajectory").__enter__())
attempt("clip", lambda: nagref.record.keras(keras.optimizers.SGD(clipnorm=1.0),
                                            "a.trajectory").__enter__())
attempt("steps", lambda: nagref.record.keras(sgd, "a.trajectory", steps=0).__enter__())
x = np.ones((8, 3), "float32")

def fresh():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=sgd, loss="mse")
    return model

def nothing():
    with nagref.record.keras(sgd, "n.trajectory", tensors={"no/such/variable"}):
        fresh().fit(x, x[:, :2], verbose=0)
attempt("nothing", nothing)
sgd = keras.optimizers.SGD(0.1)  # a failed jax fit leaves its model's variables unset
model = fresh()
with nagref.record.keras(sgd, "s.trajectory", steps=2, tensors=lambda n: n.endswith("kernel")):
    model.fit(x, x[:, :2], batch_size=2, verbose=0)
m = open_model("s.trajectory")
print("selected", [t.name.split("/")[-1] for t in m.tensors], m.steps, m.complete)

def stale():  # the jitted train function was traced before the recording began
    with nagref.record.keras(sgd, "t.trajectory", quiet=True):
        model.fit(x, x[:, :2], batch_size=2, verbose=0)
attempt("stale", stale)
"""


def test_steps_tensors_and_misuse(tmp_path: Path) -> None:
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-c", MISUSE], check=False, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    said = {line.split()[0]: line for line in done.stdout.splitlines()}
    summaries = [line for line in done.stdout.splitlines() if line.startswith("nagref:")]
    assert summaries[:2] == [f"nagref: recorded 0 steps; {name}.trajectory not written"
                             for name in ("z", "n")]  # fmt: skip
    assert not (tmp_path / "z.trajectory").exists()
    assert said["adam"] == "adam TypeError optimizer must be a keras.optimizers.SGD, got Adam"
    assert said["clip"].startswith("clip ValueError optimizer.clipnorm=1.0: ")
    assert said["steps"] == "steps ValueError steps must be None or an int >= 1, got 0"
    assert "no tensor was selected: tensors= matched no variable's path" in said["nothing"]
    assert said["selected"] == "selected ['kernel'] 2 True"
    assert summaries[2].startswith("nagref: recorded 2 steps of 1 tensors")
    assert len(summaries) == 3  # the quiet recording prints none
    assert said["stale"].startswith("stale RuntimeError 4 optimizer steps ran in the block and "
                                    "0 were recorded")  # fmt: skip
