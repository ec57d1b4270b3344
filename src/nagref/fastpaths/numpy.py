"""The NumPy kernel: recipes evaluated in one pass by compiled C.

:func:`run` compiles a batch's recipe (its body and, with a split, its tail)
to register instructions once, allocates the outputs (or takes the
caller's), and hands every leaf of the batch to C in one call
(:mod:`nagref.fastpaths._cpu`), which releases the GIL while it computes.
New outputs of a batch are views into one buffer per output register
(:func:`_new`). C checks each leaf's buffers itself: a leaf whose arrays
are not plain, C-contiguous, native-endian ``numpy.ndarray`` of the batch's
dtype is skipped, and so declined to the generic path. A batch whose dtype
or rounding model the evaluator lacks is declined whole.

Models, as (storage, compute, result) dtypes (:data:`_KINDS`): float64,
float32 and float16 as the C module's docstring lists them, and bfloat16
(``ml_dtypes.bfloat16``) computed in float32 with each result rounded to
bfloat16 (PyTorch's), or kept in float32, or computed in bfloat16 itself
(each operation, the fused multiply-add too, rounded once), and float16
kept in float32 (torch 2.14's fused kernel); every float32
and float64 model and every bfloat16 one may flush subnormals. NumPy does
not export bfloat16 through the buffer protocol, so each bfloat16 array
goes to C as a ``uint16`` view of its bits (zero-copy), made here only for
a plain ``numpy.ndarray`` of native bfloat16; anything else goes as None,
which C skips like any array it cannot take.

Caller-donated outputs may be the input arrays themselves (an in-place
update): every block is read before it is written. A leaf whose output
overlaps an input or another output in any other way is skipped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from .._dtypes import TABLE, numpy_dtype, smallest_normal
from .._engine.ir import Batch, Instr
from . import _cpu

__all__ = ["run"]

#: (storage, compute, result) -> the C evaluator's kind
_KINDS = {
    ("float64", "float64", "float64"): 0,
    ("float32", "float32", "float32"): 1,
    ("float64", "float32", "float32"): 2,
    ("float16", "float32", "float16"): 3,
    ("float16", "float16", "float16"): 4,
    ("bfloat16", "float32", "bfloat16"): 5,
    ("bfloat16", "bfloat16", "bfloat16"): 6,
    ("bfloat16", "float32", "float32"): 7,
    ("float16", "float32", "float32"): 8,
}
_FLUSHABLE = {0, 1, 5, 6, 7}
#: storage dtypes that C reads as their bits, through views of this dtype,
#: because NumPy cannot export them as a buffer (ml_dtypes' bfloat16: 'E')
_BITS = {"bfloat16": np.dtype(np.uint16)}
#: dtype.char -> the storage dtype's name (a faster lookup than dtype.name), for
#: the dtypes the evaluator computes (the dtype table's ``c_type``, and _BITS)
_STORAGE = {
    d.buffer_format: d.name
    for d in TABLE.values()
    if (d.c_type is not None or d.name in _BITS) and d.buffer_format is not None
}
_OPS = {"copy": 0, "neg": 1, "mul": 2, "add": 3, "sub": 4}
_FMA, _MULADD = 5, 6
_ALIGN = 64  # bytes: where each new output array starts (a cache line)


class _Code(NamedTuple):
    """A segment's recipe as C instructions (see :func:`_code`)."""

    kind: int
    text: bytes  # 5 bytes per operation: op, out, a, b, c
    slots: dict[str, int]  # inputs, constants, outputs, then temporaries
    fixed: int  # how many leading slots (inputs, constants, outputs) every segment shares
    reads: frozenset[str]  # the inputs it reads


def run(batch: Batch) -> list[tuple[Any, ...] | None]:
    """Evaluate a batch with the C kernel; None for each leaf it declines."""
    params = batch.columns[0]
    first = params[0]
    storage = _STORAGE.get(first.dtype.char) if type(first) is np.ndarray else None
    bits = None if storage is None else _BITS.get(storage)
    if bits is not None and not (first.dtype.name == storage and first.dtype.isnative):
        storage = None  # another dtype of that char, or bfloat16 in the other byte order
    compiled = None if storage is None else _compile(batch, storage)
    if compiled is None:
        return [None] * len(params)
    spec, segments, reads = compiled
    names = list(dict.fromkeys(batch.outputs))
    given = {name: c for name, c in zip(batch.outputs, batch.out, strict=True) if c is not None}
    out = [given[name] if name in given else _new(params) for name in names]
    column_of = dict(zip(batch.inputs, batch.columns, strict=True))
    columns = [column_of[name] for name in reads] + out
    if bits is not None:
        columns = [[_bits(x, first.dtype, bits) for x in column] for column in columns]
    leaves = list(zip(*columns, strict=True))
    skipped = _cpu.run(spec, segments, leaves, np.ndarray)
    results: list[tuple[Any, ...] | None] = list(
        zip(*(out[names.index(name)] for name in batch.outputs), strict=True)
    )
    for index in skipped:
        results[index] = None
    return results


def _bits(x: Any, dtype: np.dtype[Any], bits: np.dtype[Any]) -> np.ndarray | None:
    """A plain ndarray of ``dtype`` as a view of its bits; None (which C skips) otherwise."""
    return x.view(bits) if type(x) is np.ndarray and x.dtype == dtype else None


def _new(params: Sequence[np.ndarray]) -> list[np.ndarray]:
    """New arrays like ``params``: C-contiguous, disjoint views into one buffer.

    One allocation instead of one per tensor: the operating system backs a
    large buffer with huge pages (NumPy advises it to), where hundreds of
    small ones would each fault in their own pages on every step. Each view
    starts on a 64-byte boundary (one array too: JAX takes such a buffer
    without copying it); the buffer stays alive while any view does.
    """
    dtype = params[0].dtype
    align = max(1, _ALIGN // dtype.itemsize)
    sizes = [x.size for x in params]
    starts = list(itertools.accumulate((-(-n // align) * align for n in sizes), initial=0))
    buffer = np.empty(starts[-1] + align, dtype)
    base = (-buffer.ctypes.data % _ALIGN) // dtype.itemsize
    return [
        buffer[base + start : base + start + n].reshape(x.shape)
        for x, start, n in zip(params, starts, sizes, strict=False)
    ]


def _compile(
    batch: Batch, storage: str
) -> tuple[_cpu.Spec, list[tuple[bytes, list[tuple[int, float]]]], list[str]] | None:
    """The C spec, each segment's program and the inputs read; None where C lacks the model."""
    outputs = tuple(dict.fromkeys(batch.outputs))
    if sum(c is not None for c in batch.out) > len(outputs):
        return None  # two donated arrays for one register: the generic path writes both
    codes = []
    programs = []
    for segment in batch.segments:
        rounding = segment.rounding
        compute = rounding.compute.get(storage, storage)
        flush = storage in rounding.flush
        code = _code(
            tuple(segment.recipe),
            contract=rounding.contract,
            kind=_KINDS.get((storage, compute, rounding.result.get(storage, storage))),
            flush=flush,
            inputs=batch.inputs,
            constants=tuple(segment.constants),
            outputs=outputs,
        )
        if code is None:
            return None
        constants = [
            (code.slots[name], _constant(float(value).hex(), compute, flush))
            for name, value in segment.constants.items()
        ]
        codes.append(code)
        programs.append((code.text, constants))
    first = codes[0]
    fixed = list(first.slots.items())[: first.fixed]
    if any(c.kind != first.kind or list(c.slots.items())[: c.fixed] != fixed for c in codes):
        return None  # the body and the tail must share a kind and a register layout
    flush = storage in batch.segments[0].rounding.flush
    if any((storage in s.rounding.flush) != flush for s in batch.segments):
        return None
    reads = [name for name in batch.inputs if any(name in c.reads for c in codes)]
    spec = (
        first.kind,
        flush,
        max(len(c.slots) for c in codes),
        batch.lanes,
        bytes(first.slots[name] for name in reads),
        bytes(first.slots[name] for name in outputs),
    )
    return spec, programs, reads


@lru_cache(maxsize=256)
def _code(
    recipe: tuple[Instr, ...],
    *,
    contract: bool,
    kind: int | None,
    flush: bool,
    inputs: tuple[str, ...],
    constants: tuple[str, ...],
    outputs: tuple[str, ...],
) -> _Code | None:
    """The recipe as C instructions, or None where the evaluator cannot run it.

    Registers are numbered inputs first, then constants, then outputs, then
    temporaries, so that a body and its tail address the arrays alike. None
    for a model the evaluator lacks, a constant that shadows an input or is
    overwritten (its register holds the constant for the whole run), an
    operand read before it is defined, an output the recipe never writes,
    or too many registers.
    """
    if kind is None or (flush and kind not in _FLUSHABLE):
        return None
    slots = {name: index for index, name in enumerate(inputs)}
    for name in constants:
        if name in slots:
            return None
        slots[name] = len(slots)
    for name in outputs:
        slots.setdefault(name, len(slots))
    fixed = len(slots)
    code = bytearray()
    reads: set[str] = set()
    defined = set(inputs) | set(constants)
    written = set()
    for s in recipe:
        if s.op not in _OPS and s.op != "muladd":
            return None  # an operation the evaluator lacks (division)
        if not set(s.args) <= defined or s.out in constants:
            return None
        reads |= set(s.args) & set(inputs)
        args = [slots[a] for a in s.args]
        out = slots.setdefault(s.out, len(slots))
        defined.add(s.out)
        written.add(s.out)
        if s.op == "muladd":
            code += bytes([_FMA if contract else _MULADD, out, *args])
        else:
            code += bytes([_OPS[s.op], out, *args, *(args[:1] * (3 - len(args)))])
    if not set(outputs) <= written or len(slots) > _cpu.MAX_REGISTERS:
        return None
    return _Code(kind, bytes(code), slots, fixed, frozenset(reads))


@lru_cache(maxsize=1024)
def _constant(value: str, compute: str, flush: bool) -> float:
    """A hyperparameter as the kernel reads it: rounded to the compute dtype, flushed.

    ``value`` is the exact float64 copy of the constant in ``float.hex`` form,
    because the cache must tell -0.0 from 0.0 (they compare equal as
    floats). Rounding depends only on the real value, so rounding that copy
    equals rounding the (float16, bfloat16, float32 or float64) constant
    itself, with NumPy's (for bfloat16, ml_dtypes') own conversion, as the
    generic path converts it. The smallest normal number comes from the
    dtype table: ``np.finfo`` does not know bfloat16.
    """
    x = float(np.asarray(float.fromhex(value)).astype(numpy_dtype(compute)))
    if flush and 0 < abs(x) < smallest_normal(compute):
        x = math.copysign(0.0, x)
    return x
