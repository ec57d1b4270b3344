"""Paddle's CPU ``Momentum`` beyond the live table's rows, against the running framework.

What the CPU kernel leaves out, checked live: ``rescale_grad`` and
``multi_precision`` change no bit (the gradient is not rescaled: the model
run on rescaled gradients differs), and float16 and bfloat16 parameters are
refused by Paddle itself (no CPU kernel) as by nagref.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from conformance import missing_allowed
from nagref.live import Spec, Worker, check, compare, run_nagref
from nagref.live.cases import arrays
from nagref.live.suite import FrameworkError, WorkerError


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    try:
        live = Worker("paddle")
    except WorkerError as error:
        if missing_allowed():
            pytest.skip(f"paddle: {error} (NAGREF_ALLOW_MISSING_BACKENDS=1)")
        pytest.fail(f"paddle: {error}; install it: pip install paddlepaddle")
    yield live
    live.close()


def _spec(dtype: str, seed: int, **changes: object) -> Spec:
    spec = Spec("paddle", "momentum", dtype, (37,), seed, (0.05, 0.1, 0.02), momentum=0.9)
    return replace(spec, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("nesterov", [False, True])
def test_rescale_grad_and_multi_precision_are_no_ops_on_cpu(
    worker: Worker, dtype: str, nesterov: bool
) -> None:
    extra = {"rescale_grad": 0.25, "multi_precision": True}
    for seed in range(4):  # both weight-decay forms; multi-tensor for float32
        spec = _spec(dtype, seed, nesterov=nesterov, weight_decay=0.01, extra=extra)
        result = check(worker, spec)
        assert result.bitwise, f"{result.mismatches} elements differ; first at {result.first}"
        param, grads = arrays(spec)
        rescaled = run_nagref(spec, (param, (grads * 0.25).astype(grads.dtype)))
        assert compare(spec, worker.run(spec), rescaled).mismatches > 0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_parameters_have_no_cpu_kernel(worker: Worker, dtype: str) -> None:
    spec = _spec(dtype, 0, extra={"multi_precision": True})
    with pytest.raises(FrameworkError, match="kernel `momentum` is not registered"):
        worker.run(spec)
    with np.errstate(all="ignore"), pytest.raises(TypeError, match=f"param has dtype {dtype}"):
        run_nagref(spec)
