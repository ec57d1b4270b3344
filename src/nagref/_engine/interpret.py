"""The generic interpreter: a batch's leaf, one array-API operation at a time.

This path defines the result: every kernel must give its bits. It runs on
any array-API namespace (NumPy, CuPy, PyTorch, JAX, Dask, array-api-strict),
rounding each operation as the segment's :class:`~.ir.Rounding` says, with
the fused multiply-add built exactly from array operations (:mod:`.fma`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._checks import dtype_name
from .._typing import Namespace
from .fma import fma
from .hypers import resolve
from .ir import Batch, Op, Segment, bounds

__all__ = ["run_leaf"]


def run_leaf(xp: Namespace, batch: Batch, index: int) -> tuple[Any, ...]:
    """Leaf ``index`` of ``batch``: its outputs, written into the caller's arrays if given."""
    registers = {
        name: column[index] for name, column in zip(batch.inputs, batch.columns, strict=True)
    }
    first = batch.columns[0][index]
    size = math.prod(int(extent) for extent in first.shape)
    ranges = bounds(batch.lanes, size)
    results = _evaluate(xp, batch.segments[: len(ranges)], ranges, registers, batch.outputs)
    targets = [None if column is None else column[index] for column in batch.out]
    for target, result in zip(targets, results, strict=True):
        if target is not None:
            target[...] = result
    return tuple(r if t is None else t for t, r in zip(targets, results, strict=True))


def _evaluate(
    xp: Namespace,
    segments: Sequence[Segment],
    ranges: Sequence[tuple[int, int]],
    registers: Mapping[str, Any],
    outputs: Sequence[str],
) -> tuple[Any, ...]:
    """The outputs of ``segments`` over ``ranges`` of the registers, as new arrays."""
    first = next(iter(registers.values()))
    shape = tuple(first.shape)
    if len(segments) == 1:
        values = _run_segment(xp, segments[0], registers)
        return tuple(_storage(xp, values[name], first) for name in outputs)
    flat = {name: xp.reshape(x, (-1,)) for name, x in registers.items()}
    parts = [
        _run_segment(xp, segment, {k: v[start:stop] for k, v in flat.items()})
        for segment, (start, stop) in zip(segments, ranges, strict=True)
    ]
    joined = (
        xp.concat(
            [
                xp.broadcast_to(part[name], (stop - start,))
                for part, (start, stop) in zip(parts, ranges, strict=True)
            ]
        )
        for name in outputs
    )
    return tuple(xp.reshape(_astype(xp, x, first.dtype), shape) for x in joined)


def _storage(xp: Namespace, x: Any, first: Any) -> Any:
    """An output in the storage dtype and the leaf's shape (a constant broadcast)."""
    x = _astype(xp, x, first.dtype)
    if tuple(x.shape) != tuple(first.shape):
        x = xp.asarray(xp.broadcast_to(x, tuple(first.shape)), copy=True)
    return x


def _run_segment(xp: Namespace, segment: Segment, registers: Mapping[str, Any]) -> dict[str, Any]:
    first = next(iter(registers.values()))
    rounding = segment.rounding
    storage = dtype_name(first)
    compute = resolve(xp, rounding.compute.get(storage, storage), first)
    result = resolve(xp, rounding.result.get(storage, storage), first)
    flush = _flusher(xp, storage in rounding.flush)
    values: dict[str, Any] = {**registers, **segment.constants}

    def rounded(x: Any) -> Any:
        return flush(_astype(xp, x, result))

    for s in segment.recipe:
        args = [flush(_astype(xp, values[a], compute)) for a in s.args]
        if s.op == "muladd" and not rounding.contract:  # two roundings
            product = _astype(xp, rounded(args[0] * args[1]), compute)
            values[s.out] = rounded(product + args[2])
        else:
            values[s.out] = rounded(_apply(xp, s.op, args))
    return values  # in the result dtype; _evaluate casts the outputs to storage


def _astype(xp: Namespace, x: Any, dtype: Any) -> Any:
    return x if x.dtype == dtype else xp.astype(x, dtype)


def _apply(xp: Namespace, op: Op, args: list[Any]) -> Any:
    if op == "copy":
        return xp.asarray(args[0], copy=True)
    if op == "neg":
        return -args[0]
    if op == "mul":
        return args[0] * args[1]
    if op == "add":
        return args[0] + args[1]
    if op == "sub":
        return args[0] - args[1]
    if op == "div":
        return args[0] / args[1]
    return fma(*xp.broadcast_arrays(*args))  # muladd, contracted


def _flusher(xp: Namespace, active: bool) -> Callable[[Any], Any]:
    if not active:
        return lambda x: x

    def flush(x: Any) -> Any:
        tiny = xp.finfo(x.dtype).smallest_normal
        return xp.where(xp.abs(x) < tiny, xp.copysign(xp.zeros_like(x), x), x)

    return flush
