"""The engine behind every rule and convention: recipes under rounding models.

An update is an ordered :data:`Recipe` of primitive operations on named
registers (``p``, ``g``, ``b`` and the hyperparameters). A framework's recipe
is written in the order and with the operands of the framework's source; a
canonical rule's recipe is traced from its one-line definition
(:mod:`nagref._trace`). How each operation
rounds is not part of the recipe but of a :class:`Rounding` model:

* ``contract``: whether ``muladd(a, b, c)`` = a·b + c is one rounding (a
  fused multiply-add, :func:`nagref._fma.fma`) or two;
* ``compute``: the dtype an operation computes in, per storage dtype (PyTorch
  computes float16 in float32), and ``result``: the dtype each result is
  rounded to before the next operation reads it;
* ``flush``: storage dtypes whose subnormal operands and results are flushed
  to (signed) zero, as on CPUs that run with FTZ/DAZ set.

Hyperparameters are Python numbers turned into 0-d arrays by a :class:`Hyper`
cast chain (for example float32 first, then the storage dtype, as Keras does
with its float32 learning-rate variable). :data:`DOUBLE_TO_DTYPE` is the
conversion most C++ runtimes make of a Python float: c10's ``Half(double)``,
Eigen's ``half`` and XLA's run-time ``convert`` all go through float32 when
the target is float16, so the value is rounded twice; NumPy's ``astype`` and
XLA's constant folding round once.

Some kernels compute the leading elements of a tensor in SIMD lanes and the
last few in a scalar loop that the compiler contracted differently; a
:class:`Split` evaluates a second recipe on the last ``n mod lanes``
elements (in memory order) of each tensor.

A rule or convention prepares one :class:`Program` per call (per storage
dtype, where its rounding depends on it), and :func:`run` runs it over every
set of leaves: it groups the leaves by dtype and device into
:class:`Batch` es, casts each group's constants once, and hands each batch
to a backend's kernel where one is registered (:mod:`nagref._fastpath`, the
one seam for fast paths). What a kernel declines runs here, one array-API
operation at a time: the generic path that defines the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from ._checks import dtype_name
from ._compat import cpu_only, device
from ._fastpath import kernel_for
from ._fma import fma
from ._typing import Namespace

__all__ = [
    "DOUBLE_TO_DTYPE",
    "Batch",
    "Hyper",
    "Program",
    "Recipe",
    "Rounding",
    "Segment",
    "Split",
    "Step",
    "bounds",
    "per_dtype",
    "run",
    "step",
]

Op = Literal["copy", "neg", "mul", "add", "sub", "muladd"]


@dataclass(frozen=True)
class Step:
    """``out <- op(*args)``: one primitive operation on named registers."""

    out: str
    op: Op
    args: tuple[str, ...]


def step(out: str, op: Op, *args: str) -> Step:
    """Shorthand for :class:`Step`."""
    return Step(out, op, args)


Recipe = Sequence[Step]


@dataclass(frozen=True)
class Rounding:
    """How a recipe's operations round (see the module docstring)."""

    contract: bool
    compute: Mapping[str, str] = field(default_factory=dict)
    result: Mapping[str, str] = field(default_factory=dict)
    flush: frozenset[str] = frozenset()


#: A Python float converted to the storage dtype through float32 where the
#: storage is narrower (float16), directly otherwise.
DOUBLE_TO_DTYPE = ("float32 if narrower", "storage")


@dataclass(frozen=True)
class Hyper:
    """A hyperparameter: a Python number and the dtypes it is rounded through.

    ``via`` names dtypes in order; ``"storage"`` and ``"compute"`` stand for
    the parameters' dtype and the model's compute dtype, and ``"float32 if
    narrower"`` for float32 when the storage is float16 (else no step).
    """

    value: float
    via: tuple[str, ...] = ("storage",)


@dataclass(frozen=True)
class Split:
    """Evaluate ``tail`` on the last ``n mod lanes[dtype]`` elements of each tensor."""

    tail: Recipe
    tail_rounding: Rounding
    lanes: Mapping[str, int]


class Segment(NamedTuple):
    """A recipe with its rounding and its constants (0-d arrays by register name)."""

    recipe: Recipe
    rounding: Rounding
    constants: Mapping[str, Any]


class Program(NamedTuple):
    """A whole update, prepared once per call: what the leaves are run through.

    ``inputs`` names the registers that the argument trees fill, in their
    order; ``outputs`` the registers returned (a name may repeat). Each
    :class:`Hyper` in ``hypers`` becomes a constant register, cast along its
    chain for each storage dtype.
    """

    recipe: Recipe
    rounding: Rounding
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    hypers: Mapping[str, Hyper] = MappingProxyType({})
    split: Split | None = None


class Batch(NamedTuple):
    """Leaves of one dtype and device under one program: what a kernel receives.

    ``columns[k]`` holds every leaf of input register ``inputs[k]``;
    ``out[j]`` holds the caller's arrays for output ``j`` (or is None: new
    arrays). ``segments`` is the body, then, where ``lanes`` is not 0, the
    tail: the last ``n mod lanes`` elements of each leaf (see :func:`bounds`).
    """

    segments: tuple[Segment, ...]
    lanes: int
    inputs: tuple[str, ...]
    columns: Sequence[Sequence[Any]]
    outputs: tuple[str, ...]
    out: Sequence[Sequence[Any] | None]


def per_dtype(program: Program | Callable[[str], Program]) -> Callable[[str], Program]:
    """The program for each storage dtype: ``program`` itself, or one program for all."""
    if isinstance(program, Program):
        return lambda dtype: program
    return program


def bounds(lanes: int, size: int) -> list[tuple[int, int]]:
    """Each segment's elements ``[start, stop)`` of a leaf of ``size`` elements.

    Elements are counted in memory (C) order. The tail segment, if the batch
    has one, is left out where it would be empty.
    """
    cut = size - size % lanes if lanes else size
    return [(0, cut), (cut, size)] if cut < size else [(0, size)]


def run(
    xp: Namespace,
    program_for: Callable[[str], Program],
    columns: Sequence[Sequence[Any]],
    out: Sequence[Sequence[Any] | None],
    *,
    arrays: Callable[[Any], Mapping[str, Any]] | None = None,
) -> list[list[Any]]:
    """Run a program over every set of leaves; return each output's leaves.

    Args:
        xp: the leaves' namespace.
        program_for: the program for a storage dtype (by name); it may raise
            for a dtype it refuses. Every group's program is prepared, and
            every constant cast, before anything is computed.
        columns: per input register, its leaves (validated: corresponding
            leaves share dtype, shape and device).
        out: per output, the caller's arrays to write into, or None.
        arrays: hyperparameters that are already 0-d arrays, as constants for
            a leaf's dtype and device.

    Leaves are grouped by dtype and device into :class:`Batch` es. The
    kernel registered for ``xp`` (:mod:`nagref._fastpath`, the one seam for
    fast paths) receives each batch whole and may decline any leaf; those
    run here, one array-API operation at a time: the generic path that
    defines the result.
    """
    batches = [
        (indices, _batch(xp, program_for, first, indices, columns=columns, out=out, arrays=arrays))
        for first, indices in _groups(columns[0])
    ]
    n_outputs = len(out)
    results: list[list[Any]] = [[None] * len(columns[0]) for _ in range(n_outputs)]
    kernel = kernel_for(xp)
    for indices, batch in batches:
        done = kernel(batch) if kernel is not None else [None] * len(batch.columns[0])
        for k, (index, leaf) in enumerate(zip(indices, done, strict=True)):
            outputs = _generic_leaf(xp, batch, k) if leaf is None else leaf
            for column, result in zip(results, outputs, strict=True):
                column[index] = result
    return results


def _groups(leaves: Sequence[Any]) -> list[tuple[Any, Sequence[int]]]:
    """The leaves' positions grouped by dtype and device, in first-seen order."""
    keys: list[tuple[Any, Any]] = []
    groups: list[tuple[Any, list[int]]] = []
    last = -1
    # a NumPy array is on the CPU: ask the others' devices only
    devices = not all(map(cpu_only, set(map(type, leaves))))
    for index, leaf in enumerate(leaves):
        dtype, where = leaf.dtype, device(leaf) if devices else "cpu"
        if last < 0 or not (keys[last][0] == dtype and keys[last][1] == where):
            last = next(
                (k for k, (d, w) in enumerate(keys) if d == dtype and w == where), len(keys)
            )
            if last == len(keys):
                keys.append((dtype, where))
                groups.append((leaf, []))
        groups[last][1].append(index)
    if len(groups) == 1:
        return [(groups[0][0], range(len(leaves)))]
    return list(groups)


def _batch(
    xp: Namespace,
    program_for: Callable[[str], Program],
    first: Any,
    indices: Sequence[int],
    *,
    columns: Sequence[Sequence[Any]],
    out: Sequence[Sequence[Any] | None],
    arrays: Callable[[Any], Mapping[str, Any]] | None,
) -> Batch:
    """The batch of the leaves at ``indices``, whose first is ``first``."""
    storage = dtype_name(first)
    program = program_for(storage)
    given = {} if arrays is None else arrays(first)
    where = device(first)

    def segment(recipe: Recipe, rounding: Rounding) -> Segment:
        constants = _constants(xp, program.hypers, rounding, first, where)
        return Segment(recipe, rounding, {**given, **constants} if constants else given)

    segments = [segment(program.recipe, program.rounding)]
    split = program.split
    lanes = 0 if split is None else split.lanes.get(storage, 0)
    if split is not None and lanes:
        segments.append(segment(split.tail, split.tail_rounding))
    if not isinstance(indices, range):
        columns = [[column[i] for i in indices] for column in columns]
        out = [None if column is None else [column[i] for i in indices] for column in out]
    return Batch(tuple(segments), lanes, program.inputs, columns, program.outputs, out)


def _generic_leaf(xp: Namespace, batch: Batch, index: int) -> tuple[Any, ...]:
    """One leaf of a batch on the generic path, written into the caller's arrays."""
    registers = {
        name: column[index] for name, column in zip(batch.inputs, batch.columns, strict=True)
    }
    first = batch.columns[0][index]
    size = math.prod(int(extent) for extent in first.shape)
    ranges = bounds(batch.lanes, size)
    results = _generic(xp, batch.segments[: len(ranges)], ranges, registers, batch.outputs)
    targets = [None if column is None else column[index] for column in batch.out]
    for target, result in zip(targets, results, strict=True):
        if target is not None:
            target[...] = result
    return tuple(r if t is None else t for t, r in zip(targets, results, strict=True))


def _generic(
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
    compute = _dtype(xp, rounding.compute, first)
    result = _dtype(xp, rounding.result, first)
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
    return values  # in the result dtype; _generic casts the outputs to storage


def _dtype(xp: Namespace, by_storage: Mapping[str, str], first: Any) -> Any:
    """The dtype ``by_storage`` names for ``first``'s dtype (by default, that dtype)."""
    name = by_storage.get(dtype_name(first))
    return first.dtype if name is None else getattr(xp, name)


def _astype(xp: Namespace, x: Any, dtype: Any) -> Any:
    return x if x.dtype == dtype else xp.astype(x, dtype)


def _apply(xp: Namespace, op: Op, args: list[Any]) -> Any:
    if op == "copy":
        return args[0]
    if op == "neg":
        return -args[0]
    if op == "mul":
        return args[0] * args[1]
    if op == "add":
        return args[0] + args[1]
    if op == "sub":
        return args[0] - args[1]
    return fma(*xp.broadcast_arrays(*args))  # muladd, contracted


def _constants(
    xp: Namespace, hypers: Mapping[str, Hyper], rounding: Rounding, first: Any, where: Any
) -> dict[str, Any]:
    """Each hyperparameter as a 0-d array, cast along its chain."""
    compute = _dtype(xp, rounding.compute, first)
    return {
        name: _cast_hyper(xp, hyper, first.dtype, compute, where) for name, hyper in hypers.items()
    }


def _cast_hyper(xp: Namespace, hyper: Hyper, storage: Any, compute: Any, where: Any) -> Any:
    narrow = storage == xp.float16
    named = {"storage": storage, "compute": compute, "float32 if narrower": xp.float32}
    via = [d for d in hyper.via if d != "float32 if narrower" or narrow]
    dtypes = [named[d] if d in named else getattr(xp, d) for d in via]
    # a Python float is a float64: the first conversion rounds it once
    value = xp.asarray(float(hyper.value), dtype=dtypes[0], device=where)
    for dtype in dtypes[1:]:
        value = xp.astype(value, dtype)
    return value


def _flusher(xp: Namespace, active: bool) -> Callable[[Any], Any]:
    if not active:
        return lambda x: x

    def flush(x: Any) -> Any:
        tiny = xp.finfo(x.dtype).smallest_normal
        return xp.where(xp.abs(x) < tiny, xp.copysign(xp.zeros_like(x), x), x)

    return flush
