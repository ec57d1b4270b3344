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

:func:`plan` prepares a recipe for one set of leaves (a :class:`Job`), and
:func:`run` runs a call's jobs through a backend's kernel where one is
registered (:mod:`nagref._fastpath`, the one seam for fast paths) and
otherwise here, one array-API operation at a time: the generic path that
defines the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._checks import dtype_name
from ._compat import device
from ._fastpath import kernel_for
from ._fma import fma
from ._typing import Namespace

__all__ = [
    "DOUBLE_TO_DTYPE",
    "Hyper",
    "Job",
    "Recipe",
    "Rounding",
    "Segment",
    "Split",
    "Step",
    "plan",
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


@dataclass(frozen=True)
class Segment:
    """A recipe, its rounding and its constants, for elements ``[start, stop)``.

    The elements are counted in memory (C) order; a recipe without a
    :class:`Split` has one segment covering the whole array.
    """

    recipe: Recipe
    rounding: Rounding
    constants: Mapping[str, Any]
    start: int
    stop: int


@dataclass(frozen=True)
class Job:
    """One set of leaves to update: what :func:`plan` prepares and :func:`run` runs."""

    segments: Sequence[Segment]
    registers: Mapping[str, Any]
    outputs: Sequence[str]
    out: Sequence[Any | None] | None = None


def plan(
    xp: Namespace,
    recipe: Recipe,
    rounding: Rounding,
    registers: Mapping[str, Any],
    *,
    hypers: Mapping[str, Hyper | Any],
    outputs: Sequence[str],
    split: Split | None = None,
    out: Sequence[Any | None] | None = None,
) -> Job:
    """Prepare ``recipe`` on one set of leaves, returning the ``outputs`` registers.

    Every array register has the storage dtype; results are returned in it.
    A hyperparameter is a :class:`Hyper` (a Python number and its cast chain)
    or a 0-d array already in the storage dtype. With ``out`` (one array or
    None per output), results are written into the given arrays, which are
    returned.
    """
    first = next(iter(registers.values()))
    size = math.prod(int(extent) for extent in first.shape)
    cut = size
    if split is not None:
        lanes = split.lanes.get(dtype_name(first), 0)
        cut = size - size % lanes if lanes else size
    where = device(first)
    segments = [Segment(recipe, rounding, _constants(xp, hypers, rounding, first, where), 0, cut)]
    if cut < size:
        assert split is not None
        tail_constants = _constants(xp, hypers, split.tail_rounding, first, where)
        segments.append(Segment(split.tail, split.tail_rounding, tail_constants, cut, size))
    return Job(segments, registers, outputs, out)


def run(xp: Namespace, jobs: Sequence[Job]) -> list[tuple[Any, ...]]:
    """Run every job: through the backend's kernel where it takes them, else here.

    A kernel registered with :mod:`nagref._fastpath` receives all the jobs at
    once (so that it can batch many small tensors) and may decline any of
    them; those run here, one array-API operation at a time. Both give the
    same bits.
    """
    kernel = kernel_for(xp)
    done: Sequence[tuple[Any, ...] | None] = [None] * len(jobs)
    if kernel is not None and jobs:
        done = kernel(jobs)
    return [_generic_job(xp, job) if r is None else r for job, r in zip(jobs, done, strict=True)]


def _generic_job(xp: Namespace, job: Job) -> tuple[Any, ...]:
    results = _generic(xp, job.segments, job.registers, job.outputs)
    if job.out is None:
        return results
    for target, result in zip(job.out, results, strict=True):
        if target is not None:
            target[...] = result
    return tuple(r if t is None else t for t, r in zip(job.out, results, strict=True))


def _generic(
    xp: Namespace,
    segments: Sequence[Segment],
    registers: Mapping[str, Any],
    outputs: Sequence[str],
) -> tuple[Any, ...]:
    first = next(iter(registers.values()))
    if len(segments) == 1:
        values = _run_segment(xp, segments[0], registers)
        return tuple(_astype(xp, values[name], first.dtype) for name in outputs)
    shape = first.shape
    flat = {name: xp.reshape(x, (-1,)) for name, x in registers.items()}
    parts = [
        _run_segment(xp, segment, {k: v[segment.start : segment.stop] for k, v in flat.items()})
        for segment in segments
    ]
    joined = (xp.concat([part[name] for part in parts]) for name in outputs)
    return tuple(xp.reshape(_astype(xp, x, first.dtype), shape) for x in joined)


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
    return values  # in the result dtype; evaluate() casts the outputs to storage


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
    xp: Namespace,
    hypers: Mapping[str, Hyper | Any],
    rounding: Rounding,
    first: Any,
    where: Any,
) -> Mapping[str, Any]:
    """Each hyperparameter as a 0-d array, cast along its chain."""
    if not any(isinstance(hyper, Hyper) for hyper in hypers.values()):
        return hypers  # arrays already (the canonical rules): shared by every leaf
    compute = _dtype(xp, rounding.compute, first)
    return {
        name: _cast_hyper(xp, hyper, first.dtype, compute, where)
        if isinstance(hyper, Hyper)
        else hyper
        for name, hyper in hypers.items()
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
