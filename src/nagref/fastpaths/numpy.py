"""The NumPy kernel: recipes evaluated in one pass by compiled C.

:func:`run` checks that the arrays are plain, C-contiguous, native-endian
``numpy.ndarray`` of one dtype and shape, and that the rounding model is one
the C evaluator implements (see :mod:`nagref.fastpaths._cpu`); otherwise it
declines and the generic path runs. It compiles the recipe to register
instructions, allocates the outputs (or takes the caller's), and hands the
buffers to C, which releases the GIL while it works.

Caller-donated outputs may be the input arrays themselves (an in-place
update): every block is read before it is written. An output that overlaps
an input or another output in any other way makes the kernel decline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .._recipe import Job, Segment, Step
from . import _cpu

__all__ = ["run"]

#: (storage, compute, result) -> the C evaluator's kind
_KINDS = {
    ("float64", "float64", "float64"): 0,
    ("float32", "float32", "float32"): 1,
    ("float64", "float32", "float32"): 2,
    ("float16", "float32", "float16"): 3,
    ("float16", "float16", "float16"): 4,
}
_FLUSHABLE = {0, 1}
#: dtype.char -> the storage dtype's name (a faster lookup than dtype.name)
_STORAGE = {"e": "float16", "f": "float32", "d": "float64"}
_OPS = {"copy": 0, "neg": 1, "mul": 2, "add": 3, "sub": 4}
_FMA, _MULADD = 5, 6


def run(jobs: Sequence[Job]) -> list[tuple[Any, ...] | None]:
    """Evaluate the jobs with the C kernel; None for each job it declines.

    Jobs that share a compiled program and its constants (a model's tensors
    of one dtype) go to C in one call, in the order given. C skips a job
    whose outputs overlap its inputs other than by being them (or overlap
    each other); it is declined too.
    """
    results: list[tuple[Any, ...] | None] = []
    batches: dict[tuple[Any, ...], tuple[_Program, list[Any], list[int]]] = {}
    compiled: dict[tuple[Any, ...], Any] = {}  # by object identity, this call only
    for index, job in enumerate(jobs):
        prepared = _prepare(job, compiled)
        if prepared is None:
            results.append(None)
            continue
        outputs, work = prepared
        for program, entry in work:
            key = (program.kind, program.flush, len(program.slots), program.code, program.key)
            batch = batches.setdefault(key, (program, [], []))
            batch[1].append(entry)
            batch[2].append(index)
        results.append(outputs)
    for program, entries, owners in batches.values():
        skipped = _cpu.run(
            program.kind,
            program.flush,
            len(program.slots),
            program.code,
            program.constants,
            entries,
        )
        for entry in skipped:
            results[owners[entry]] = None
    return results


def _prepare(
    job: Job, compiled: dict[tuple[Any, ...], Any]
) -> tuple[tuple[Any, ...], list[tuple[_Program, Any]]] | None:
    """A job's outputs and C entries, or None where the kernel cannot take it."""
    registers = job.registers
    first = next(iter(registers.values()))
    if not (
        type(first) is np.ndarray and first.flags.c_contiguous and first.dtype.isnative
    ) or not all(_like(a, first) for a in registers.values()):
        return None
    storage = _STORAGE.get(first.dtype.char)
    if storage is None:
        return None
    # the jobs of one call share recipes, roundings and constant arrays, which
    # all stay alive meanwhile, so their identities key the compiled programs
    key: tuple[Any, ...] = (storage, *registers)
    for segment in job.segments:
        constants = segment.constants
        key += (id(segment.recipe), id(segment.rounding), *constants, *map(id, constants.values()))
    if key not in compiled:
        compiled[key] = _programs(job, storage)
    plans = compiled[key]
    if plans is None:
        return None
    programs, written = plans
    results = _outputs(first, job.outputs, written, registers, job.out)
    if results is None:
        return None
    work = []
    for program, segment in zip(programs, job.segments, strict=True):
        inputs = [(program.slots[name], registers[name]) for name in program.reads]
        ports = [(program.slots[name], results[name]) for name in results if name in written]
        work.append((program, (inputs, ports, segment.start, segment.stop)))
    return tuple(results[name] for name in job.outputs), work


def _programs(job: Job, storage: str) -> tuple[list[_Program], set[str]] | None:
    """Each segment's program and the registers every segment writes, or None."""
    programs = []
    for segment in job.segments:
        program = _compile(segment, storage, list(job.registers))
        if program is None:
            return None
        programs.append(program)
    writes = [{s.out for s in segment.recipe} for segment in job.segments]
    written = set.intersection(*writes)
    if any(name in w and name not in written for w in writes for name in job.outputs):
        return None  # an output some segments compute and others pass through
    return programs, written


def _like(array: Any, first: Any) -> bool:
    """``array`` has ``first``'s type, dtype, shape and (C-contiguous) layout."""
    return (
        type(array) is np.ndarray
        and array.dtype == first.dtype
        and array.shape == first.shape
        and (array.strides == first.strides or array.flags.c_contiguous)
    )


@dataclass(frozen=True)
class _Program:
    kind: int
    flush: bool
    code: bytes
    constants: list[tuple[int, float]]
    slots: dict[str, int]  # register name -> the C evaluator's register
    reads: list[str]  # the input registers the recipe reads
    key: tuple[str, ...]  # the constants, exactly (float.hex tells -0.0 from 0.0)


def _compile(segment: Segment, storage: str, inputs: list[str]) -> _Program | None:
    """The recipe as C instructions, or None where the evaluator lacks its model."""
    rounding = segment.rounding
    compute = rounding.compute.get(storage, storage)
    result = rounding.result.get(storage, storage)
    flush = storage in rounding.flush
    code = _code(
        tuple(segment.recipe),
        contract=rounding.contract,
        kind=_KINDS.get((storage, compute, result)),
        flush=flush,
        inputs=tuple(inputs),
        constants=tuple(segment.constants),
    )
    if code is None:
        return None
    kind, text, slots, reads = code
    exact = [float(value).hex() for value in segment.constants.values()]
    constants = [
        (slots[name], _constant(value, compute, flush))
        for name, value in zip(segment.constants, exact, strict=True)
    ]
    return _Program(kind, flush, text, constants, slots, reads, tuple(exact))


@lru_cache(maxsize=256)
def _code(
    recipe: tuple[Step, ...],
    *,
    contract: bool,
    kind: int | None,
    flush: bool,
    inputs: tuple[str, ...],
    constants: tuple[str, ...],
) -> tuple[int, bytes, dict[str, int], list[str]] | None:
    if kind is None or (flush and kind not in _FLUSHABLE):
        return None
    slots = {name: index for index, name in enumerate(inputs)}
    for name in constants:
        if name in slots:
            return None
        slots[name] = len(slots)
    code = bytearray()
    reads: set[str] = set()
    defined = set(slots)
    for s in recipe:
        if not set(s.args) <= defined:
            return None
        reads |= set(s.args) & set(inputs)
        args = [slots[a] for a in s.args]
        out = slots.setdefault(s.out, len(slots))
        defined.add(s.out)
        if s.op == "muladd":
            code += bytes([_FMA if contract else _MULADD, out, *args])
        else:
            code += bytes([_OPS[s.op], out, *args, *(args[:1] * (3 - len(args)))])
    if len(slots) > _cpu.MAX_REGISTERS:
        return None
    return kind, bytes(code), slots, [name for name in inputs if name in reads]


@lru_cache(maxsize=1024)
def _constant(value: str, compute: str, flush: bool) -> float:
    """A hyperparameter as the kernel reads it: rounded to the compute dtype, flushed.

    ``value`` is the exact float64 copy of the constant in ``float.hex`` form,
    because the cache must tell -0.0 from 0.0 (they compare equal as
    floats). Rounding depends only on the real value, so rounding that copy
    equals rounding the (float16, float32 or float64) constant itself.
    """
    x = np.asarray(float.fromhex(value)).astype(compute)
    if flush and 0 < abs(x) < np.finfo(x.dtype).smallest_normal:
        x = np.copysign(np.zeros_like(x), x)
    return float(x)


def _outputs(
    first: Any,
    outputs: Sequence[str],
    written: set[str],
    registers: Mapping[str, Any],
    out: Sequence[Any | None] | None,
) -> dict[str, Any] | None:
    """The output arrays by register name: the caller's where given, else new."""
    results = {}
    for name, target in zip(outputs, out or [None] * len(outputs), strict=True):
        if target is not None:
            if name in results or not _like(target, first) or not target.flags.writeable:
                return None
            results[name] = target
            if name not in written:
                target[...] = registers[name]
    for name in outputs:
        if name not in results:
            results[name] = np.empty_like(first) if name in written else registers[name].copy()
    return results
