"""MLX's SGD against nagref where random cases rarely look: hyperparameters whose 16-bit
rounding differs once and through float32, and the first step's sign of zero.

A Python float meets a float16 or bfloat16 array as a weak scalar made
through float32, and the learning rate is a float32 array cast to the
dtype: each is rounded twice. Random hyperparameters almost never fall
where that changes the bits; these values sit just beside a midpoint of two
16-bit neighbours, where it always does. MLX's velocity starts at zeros, so
a −0 gradient gives a +0 velocity (a copy of the gradient would keep −0).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import ml_dtypes
import numpy as np
import pytest

from conformance import require
from nagref._dtypes import round_to
from nagref.live import Spec, Worker, arrays, check, compare, run_nagref

require("mlx.core")


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    started = Worker("mlx", None)
    yield started
    started.close()


def _beside_a_midpoint(bits: int, dtype: str) -> float:
    """A float64 just above the midpoint of 16-bit numbers ``bits`` (even) and ``bits + 1``:
    rounded once it is the upper one; through float32 it is the midpoint, a tie, the lower."""
    kind = np.float16 if dtype == "float16" else ml_dtypes.bfloat16
    lo, hi = (float(np.array([b], np.uint16).view(kind)[0]) for b in (bits, bits + 1))
    value = (lo + hi) / 2 * (1 + 2.0**-40)
    assert round_to(value, dtype) != round_to(round_to(value, "float32"), dtype)
    return value


#: per dtype: bit patterns near lr 0.05, momentum 0.9, weight decay 0.01, 1 - dampening 0.7
_BITS = {
    "float16": (0x2A66, 0x3B34, 0x211E, 0x399A),
    "bfloat16": (0x3D4C, 0x3F66, 0x3C24, 0x3F32),
}


def _spec(variant: str, dtype: str, *, dampened: bool) -> Spec:
    lr, mu, wd, keep = (_beside_a_midpoint(b, dtype) for b in _BITS[dtype])
    return Spec(
        convention="mlx",
        variant=variant,
        dtype=dtype,
        shape=(64,),
        seed=7,
        lr=(lr,) * 3,
        momentum=mu,
        nesterov=not dampened,
        dampening=1 - keep if dampened else 0.0,
        weight_decay=wd,
        scale=1.0,
    )


@pytest.mark.parametrize("dampened", [False, True])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("variant", ["eager", "compiled"])
def test_hyperparameters_are_rounded_through_float32(
    worker: Worker, variant: str, dtype: str, dampened: bool
) -> None:
    spec = _spec(variant, dtype, dampened=dampened)
    result = check(worker, spec)
    assert result.bitwise, f"{result.mismatches} elements differ; first at {result.first}"
    # rounded once (each value replaced by its one rounding, which float32 keeps), it differs
    once = replace(
        spec,
        lr=tuple(round_to(x, dtype) for x in spec.lr),
        momentum=round_to(spec.momentum or 0.0, dtype),
        weight_decay=round_to(spec.weight_decay or 0.0, dtype),
        dampening=1 - round_to(1 - spec.dampening, dtype) if dampened else 0.0,
    )
    assert not compare(spec, worker.run(spec), run_nagref(once)).bitwise


@pytest.mark.parametrize("variant", ["eager", "compiled"])
def test_a_negative_zero_gradient_gives_a_positive_zero_velocity(
    worker: Worker, variant: str
) -> None:
    spec = Spec(
        convention="mlx", variant=variant, dtype="float32", shape=(200,), seed=3, lr=(0.1,),
        momentum=0.9, special=1.0,
    )  # fmt: skip
    _, grads = arrays(spec)
    negative = (grads[0] == 0) & np.signbit(grads[0])
    assert negative.any()
    ((_, velocity),) = worker.run(spec)
    assert velocity is not None
    assert not np.signbit(velocity[negative]).any()  # +0, not the gradient's -0
    result = check(worker, spec)
    assert result.bitwise, f"{result.mismatches} elements differ; first at {result.first}"
