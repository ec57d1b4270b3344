"""End to end: record live trajectories, audit them, name the convention and its variant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nagref
from conformance import require
from conformance.frameworks.conftest import LiveWorker
from nagref.auditing import format_report
from nagref.conventions import lookup
from nagref.conventions._aten import default_cpu_capability
from nagref.live import VARIANTS, Spec
from nagref.live.cases import arrays
from nagref.live.drivers import from_torch
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
    # scikit-learn's SGDOptimizer and tf-keras round the same operations in the same order
    same = ("keras", "sklearn", "tf_keras")
    assert not [name for name in report.bitwise if name.split()[0] not in same]


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
        if lookup(convention).can(lookup(convention).variant(variant)).changing_lr
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


# -- threads and layouts: the audit names the setting a torch run had ---------------------


def _record_torch(
    path: Path, param: Any, grads: list[Any], *, threads: int = 1, **options: object
) -> Path:
    """``torch.optim.SGD`` steps on ``param`` (whatever its layout) with each gradient as given."""
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        opt = torch.optim.SGD([param], lr=0.1, momentum=0.9, nesterov=True, **options)
        initial = from_torch(param.detach().clone())
        recorded = [from_torch(g.contiguous().clone()) for g in grads]  # foreach's Nesterov
        params = []  # adds the buffer into the grads in place
        for grad in grads:
            param.grad = grad
            opt.step()
            params.append(from_torch(param.detach().clone()))
    finally:
        torch.set_num_threads(threads_before)
    np.savez(
        path, initial=initial, grads=np.stack(recorded),
        params=np.stack(params), lr=0.1, momentum=0.9, nesterov=True,
        dtype=str(param.dtype).removeprefix("torch."),
    )  # fmt: skip
    return path


def _torch_randn(shape: tuple[int, ...], dtype: Any, seed: int) -> Any:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


SETTINGS = [  # (variant, setting, the recorded run: param and its gradients, options)
    ("single-tensor", ", 2 threads",
     lambda: (_torch_randn((65537,), torch.float16, 1),
              [_torch_randn((65537,), torch.float16, s) for s in (2, 3, 4)], 2, {})),
    ("single-tensor", ", 3+ threads",  # 4 threads cut 3 chunks
     lambda: (_torch_randn((65537,), torch.bfloat16, 1),
              [_torch_randn((65537,), torch.bfloat16, s) for s in (2, 3, 4)], 4, {})),
    ("single-tensor", ", transposed",
     lambda: (_torch_randn((37, 5), torch.bfloat16, 1).t(),
              [_torch_randn((37, 5), torch.bfloat16, s).t() for s in (2, 3, 4)], 1, {})),
    ("foreach", ", strided-grad",
     lambda: (_torch_randn((64,), torch.float16, 1),
              [_torch_randn((128,), torch.float16, s)[::2] for s in (2, 3, 4)], 1,
              {"foreach": True})),
    ("fused", ", transposed-grad",
     lambda: (_torch_randn((5, 37), torch.float32, 1),
              [_torch_randn((37, 5), torch.float32, s).t() for s in (2, 3, 4)], 1,
              {"fused": True})),
]  # fmt: skip


@pytest.mark.parametrize(("variant", "setting", "make"), SETTINGS, ids=[s[1][2:] for s in SETTINGS])
def test_the_audit_names_the_threads_or_layout_of_a_recorded_torch_run(
    variant: str, setting: str, make: Any, tmp_path: Path
) -> None:
    param, grads, threads, options = make()
    path = _record_torch(tmp_path / "run.npz", param, grads, threads=threads, **options)
    capability = default_cpu_capability()  # the kernels this torch runs
    name = f"pytorch {variant}{'' if capability == 'avx512' else '-' + capability}, nesterov"
    report = nagref.audit(path)
    if capability == "default":  # every element scalar: neither threads nor layouts matter
        assert name in report.bitwise, report.bitwise
        return
    assert name + setting in report.bitwise, (report.bitwise, format_report(report))
    assert name not in report.bitwise  # the contiguous, one-thread model differs
