"""End to end: record live trajectories, audit them, name the convention and its variant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nagref
from conformance import require
from conformance.frameworks.conftest import LiveWorker
from nagref.conventions import lookup
from nagref.live import VARIANTS, Spec
from nagref.live.cases import arrays
from nagref.live.recordings import Recorded, write

torch = require("torch")
require("keras")

RECORD_KERAS = """
import sys
import numpy as np
import keras
rng = np.random.default_rng(11)
lam = rng.uniform(0.1, 2.0, 300).astype("float32")
w = keras.Variable(rng.standard_normal(300).astype("float32"))
initial = keras.ops.convert_to_numpy(w.value).copy()
opt = keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True)
grads, params = [], []
for _ in range(25):
    g = lam * keras.ops.convert_to_numpy(w.value)
    opt.apply([keras.ops.convert_to_tensor(g)], [w])
    grads.append(g)
    params.append(keras.ops.convert_to_numpy(w.value).copy())
np.savez(sys.argv[1], initial=initial, grads=np.stack(grads), params=np.stack(params),
         lr=np.float64(0.05), momentum=np.float64(0.9))
"""


def test_a_torch_nesterov_trajectory_is_torchs(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    lam = torch.tensor(rng.uniform(0.1, 2.0, 300).astype("float32"))
    p = torch.tensor(rng.standard_normal(300).astype("float32"), requires_grad=True)
    initial = p.detach().numpy().copy()
    opt = torch.optim.SGD([p], lr=0.05, momentum=0.9, nesterov=True)
    grads, params = [], []
    for _ in range(25):
        opt.zero_grad()
        (0.5 * (lam * p * p).sum()).backward()
        grads.append(p.grad.numpy().copy())
        opt.step()
        params.append(p.detach().numpy().copy())
    path = tmp_path / "torch.npz"
    np.savez(
        path, initial=initial, grads=np.stack(grads), params=np.stack(params), lr=0.05, momentum=0.9
    )
    report = nagref.audit(path)
    assert report.bitwise[:2] == ["pytorch single-tensor, nesterov", "pytorch foreach, nesterov"]
    assert not [name for name in report.bitwise if not name.startswith("pytorch")]


def test_a_keras_nesterov_trajectory_is_keras(tmp_path: Path) -> None:
    path = tmp_path / "keras.npz"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(
        [sys.executable, "-c", RECORD_KERAS, str(path)], check=True, env=env, capture_output=True
    )
    report = nagref.audit(path)
    assert "keras tensorflow, nesterov" in report.bitwise
    assert not [name for name in report.bitwise if not name.startswith("keras")]


# -- every live row: the audit names its variant on a run recorded from it --------------

#: each live variant in its first dtype, and in bfloat16 (read from its bit patterns)
ROWS = [
    pytest.param(convention, variant, dtype, id=f"{convention}-{variant}-{dtype}")
    for convention, variants in VARIANTS.items()
    for variant, dtypes in variants.items()
    for dtype in dict.fromkeys((dtypes[0], *(d for d in dtypes if d == "bfloat16")))
]


@pytest.mark.parametrize(("convention", "variant", "dtype"), ROWS)
def test_the_audit_names_the_variant_of_a_recorded_run(
    convention: str,
    variant: str,
    dtype: str,
    live_worker: LiveWorker,
    tmp_path: Path,
) -> None:
    worker = live_worker(convention, variant)
    # a run the audit can express: lr, momentum and Nesterov (no weight decay,
    # dampening or maximize); 37 elements, a SIMD body and a tail
    spec = Spec(
        convention=convention,
        variant=variant,
        dtype=dtype,
        shape=(37,),
        seed=2026,
        lr=(0.05, 0.04, 0.06, 0.05, 0.03)
        if lookup(convention).capabilities.changing_lr
        else (0.05,) * 5,
        momentum=0.9,
        nesterov=True,
        special=0.0,
        scale=1.0,
    )
    initial, grads = arrays(spec)
    with np.errstate(all="ignore"):
        trajectory = worker.run(spec)
    recorded = Recorded(worker.version, spec, initial, grads, trajectory)
    report = nagref.audit(write(tmp_path, recorded))
    named = [name.split(",")[0] for name in report.bitwise]
    assert f"{convention} {variant}" in named, report.bitwise
