"""The generic interpreter: a batch's leaf, one array-API operation at a time.

This path defines the result: every kernel must give its bits. It runs on
any array-API namespace (NumPy, CuPy, PyTorch, JAX, Dask, array-api-strict),
rounding each operation as the segment's :class:`~.ir.Rounding` says, with
the fused multiply-add built exactly from array operations (:mod:`.fma`).
A batch with a tail runs each segment on its pieces of the flattened leaf
(:func:`~.ir.pieces`: one body and tail, or, where a split cuts the leaf
into chunks, a body and a tail per chunk) and joins the results in order. A
leaf with masks (:class:`~.ir.Program`'s ``scalar``) runs the body's recipe
once on the whole leaf, each masked instruction computed under both
roundings and its elements taken from the tail's where the mask says.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._checks import dtype_name
from .._compat import device
from .._dtypes import smallest_normal
from .._typing import Namespace
from .fma import fma
from .hypers import resolve
from .ir import Batch, Instr, Op, Rounding, Segment, pieces

__all__ = ["run_leaf"]


def run_leaf(xp: Namespace, batch: Batch, index: int) -> tuple[Any, ...]:
    """Leaf ``index`` of ``batch``: its outputs, written into the caller's arrays if given."""
    registers = {
        name: column[index] for name, column in zip(batch.inputs, batch.columns, strict=True)
    }
    first = batch.columns[0][index]
    size = math.prod(int(extent) for extent in first.shape)
    masks = None if batch.scalar is None else batch.scalar[index]
    parts = [(0, 0, size)] if masks else pieces(batch.lanes, size, batch.grain, batch.threads)
    # each output in the storage dtype, or one of its own (rounded once, from the result)
    dtypes = [
        resolve(xp, batch.stored[name], first) if name in batch.stored else first.dtype
        for name in batch.outputs
    ]
    results = _evaluate(
        xp, batch.segments, parts, registers, batch.outputs, dtypes=dtypes, masks=masks
    )
    targets = [None if column is None else column[index] for column in batch.out]
    for target, result in zip(targets, results, strict=True):
        if target is not None:
            target[...] = result
    return tuple(r if t is None else t for t, r in zip(targets, results, strict=True))


def _evaluate(
    xp: Namespace,
    segments: Sequence[Segment],
    parts: Sequence[tuple[int, int, int]],
    registers: Mapping[str, Any],
    outputs: Sequence[str],
    *,
    dtypes: Sequence[Any],
    masks: Mapping[int, Any] | None = None,
) -> tuple[Any, ...]:
    """The outputs of each piece ``(segment, start, stop)`` of the flattened registers,
    joined in order, as new arrays of ``dtypes``."""
    first = next(iter(registers.values()))
    shape = tuple(first.shape)
    if len(parts) == 1:  # one segment for the whole leaf
        tail = (segments[-1], masks) if masks else None
        values = _run_segment(xp, segments[parts[0][0]], registers, tail)
        return tuple(
            _shaped(xp, _astype(xp, values[name], dtype), shape)
            for name, dtype in zip(outputs, dtypes, strict=True)
        )
    flat = {name: xp.reshape(x, (-1,)) for name, x in registers.items()}
    results = [
        _run_segment(xp, segments[k], {name: v[start:stop] for name, v in flat.items()})
        for k, start, stop in parts
    ]
    joined = (
        xp.concat(
            [
                xp.broadcast_to(values[name], (stop - start,))
                for values, (_, start, stop) in zip(results, parts, strict=True)
            ]
        )
        for name in outputs
    )
    return tuple(
        xp.reshape(_astype(xp, x, dtype), shape) for x, dtype in zip(joined, dtypes, strict=True)
    )


def _shaped(xp: Namespace, x: Any, shape: tuple[int, ...]) -> Any:
    """An output in the leaf's shape (a constant broadcast to a new array)."""
    if tuple(x.shape) != shape:
        x = xp.asarray(xp.broadcast_to(x, shape), copy=True)
    return x


def _run_segment(
    xp: Namespace,
    segment: Segment,
    registers: Mapping[str, Any],
    tail: tuple[Segment, Mapping[int, Any]] | None = None,
) -> dict[str, Any]:
    """Run ``segment`` on the registers; ``tail``: a segment and masks, by instruction,
    of the elements that take its rounding instead (see :class:`~.ir.Program`)."""
    first = next(iter(registers.values()))
    step = _stepper(xp, segment.rounding, first)
    values: dict[str, Any] = {**registers, **segment.constants}
    if tail is None:
        for s in segment.recipe:
            values[s.out] = step(s, values)
        return values  # in the result dtype; _evaluate casts the outputs to storage
    other, masks = tail
    tail_step = _stepper(xp, other.rounding, first)
    where = device(first)
    for k, s in enumerate(segment.recipe):
        value = step(s, values)
        if k in masks:
            mask = xp.asarray(masks[k], device=where)
            scalar = tail_step(s, {**values, **other.constants})
            value = xp.where(mask, _astype(xp, scalar, value.dtype), value)
        values[s.out] = value
    return values


def _stepper(
    xp: Namespace, rounding: Rounding, first: Any
) -> Callable[[Instr, Mapping[str, Any]], Any]:
    """One instruction on the registers under ``rounding``, for leaves like ``first``."""
    storage = dtype_name(first)
    compute = resolve(xp, rounding.compute.get(storage, storage), first)
    result = resolve(xp, rounding.result.get(storage, storage), first)
    flush = _flusher(xp, storage in rounding.flush)

    def rounded(x: Any) -> Any:
        # flushed in the compute dtype, before the rounding to the result's:
        # a float32 result below 2**-126 is zero even where bfloat16 would
        # round it up to its smallest normal number (the CPU's FTZ)
        return _astype(xp, flush(x), result)

    def step(s: Instr, values: Mapping[str, Any]) -> Any:
        args = [flush(_astype(xp, values[a], compute)) for a in s.args]
        if s.op == "muladd" and not rounding.contract:  # two roundings
            product = _astype(xp, rounded(args[0] * args[1]), compute)
            return rounded(product + args[2])
        return rounded(_apply(xp, s.op, args))

    return step


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
        tiny = smallest_normal(dtype_name(x))
        return xp.where(xp.abs(x) < tiny, xp.copysign(xp.zeros_like(x), x), x)

    return flush
