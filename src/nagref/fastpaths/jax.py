"""The JAX kernel: eager CPU arrays through the NumPy kernel, as zero-copy NumPy views.

An array is viewed with ``numpy.asarray`` (on the CPU, a read-only view
of the array's own buffer), and each new output comes back with
``jax.device_put``, which on the CPU takes a NumPy buffer aligned to 64
bytes without copying it (the NumPy kernel aligns every new output so);
measured with JAX 0.10.2, ``jnp.asarray`` copies, and ``jnp.from_dlpack``
and ``device_put`` copy a buffer that is not so aligned. JAX arrays are
immutable: nagref refuses them as ``out=`` before any kernel runs.

The bits are those of the generic path on JAX, that is of XLA on the CPU,
which flushes subnormal operands and results of float32 and float64
arithmetic to zero, and computes bfloat16 and float16 in float32 (float16's
subnormals are normal there). So every segment whose compute dtype is
float32 or float64 runs with flushing, and bfloat16 computed in bfloat16
runs as XLA does it, in float32 rounded to bfloat16 after each operation
(the same bits as one rounding for a product, sum or difference), with
flushing. Declined whole: a fused multiply-add computed in bfloat16 or
float64 (the generic path emulates it with XLA's operations, whose flushing
of the emulation's tiny error terms makes it inexact near the subnormal
range: 1e-300 in float64; float32's, emulated in float64, stays exact), and
a model the C evaluator cannot flush (float16 computed in float32, float64
in float32).

Never a tracer: a leaf that is not a concrete array is declined, and so is
every leaf while JAX traces (a ``jax.jit`` over arrays it closes over), so
that the traced generic path, XLA's own arithmetic, runs there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jax
import numpy as np

from .._engine.ir import Batch, Segment
from . import _views

__all__ = ["run"]

_CONCRETE = type(jax.numpy.zeros(()))
_SINGLE = jax.sharding.SingleDeviceSharding
_WIDE = frozenset({"float32", "float64"})
#: operations XLA computes without flushing (a copy, a sign flip)
_EXACT = frozenset({"copy", "neg"})

try:  # private: whether JAX is tracing (inside jax.jit, even over concrete arrays)
    from jax._src.core import trace_state_clean as _eager
except ImportError:  # pragma: no cover - another JAX: decline whenever unsure

    def _eager() -> bool:
        return False


def run(batch: Batch) -> list[tuple[Any, ...] | None]:
    """Evaluate a batch of eager CPU arrays with the C kernel; None for each leaf it declines."""
    declined: list[tuple[Any, ...] | None] = [None] * len(batch.columns[0])
    first = batch.columns[0][0]
    if (
        type(first) is not _CONCRETE
        or any(column is not None for column in batch.out)
        or not _eager()
        or type(first.sharding) is not _SINGLE
        or next(iter(first.devices())).platform != "cpu"  # one device per batch
    ):
        return declined
    segments = [_as_xla(segment, np.dtype(first.dtype).name) for segment in batch.segments]
    if any(segment is None for segment in segments):
        return declined
    return _views.run(batch, _view, jax.device_put, segments)  # type: ignore[arg-type]


def _view(x: Any) -> np.ndarray | None:
    if type(x) is not _CONCRETE or type(x.sharding) is not _SINGLE:
        return None
    return np.asarray(x)


def _as_xla(segment: Segment, storage: str) -> Segment | None:
    """The segment with XLA's rounding on the CPU, or None where C cannot model it."""
    rounding = segment.rounding
    compute = rounding.compute.get(storage, storage)
    if any(not isinstance(c, _CONCRETE) for c in segment.constants.values()):
        return None
    fused = rounding.contract and any(s.op == "muladd" for s in segment.recipe)
    if fused and compute in ("bfloat16", "float64"):
        return None
    if storage == "bfloat16" and compute == "bfloat16":
        rounding = replace(rounding, compute={**rounding.compute, storage: "float32"})
    elif compute not in _WIDE:
        return segment
    if storage not in rounding.flush and any(s.op in _EXACT for s in segment.recipe):
        return None  # XLA flushes arithmetic only; C would flush these results too
    return segment._replace(rounding=replace(rounding, flush=rounding.flush | {storage}))
