"""The engine behind every framework convention: recipes under rounding models.

A framework's update is an ordered :data:`Recipe` of primitive operations on
named registers (``p``, ``g``, ``b`` and the hyperparameters), written in the
order and with the operands of the framework's source. How each operation
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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .._checks import dtype_name
from .._compat import device
from .._fma import fma
from .._typing import Namespace

__all__ = [
    "DOUBLE_TO_DTYPE",
    "Hyper",
    "Recipe",
    "Rounding",
    "Split",
    "Step",
    "evaluate",
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


def evaluate(
    xp: Namespace,
    recipe: Recipe,
    rounding: Rounding,
    registers: Mapping[str, Any],
    *,
    hypers: Mapping[str, Hyper],
    outputs: Sequence[str],
    split: Split | None = None,
) -> tuple[Any, ...]:
    """Run ``recipe`` on one set of leaves and return the ``outputs`` registers.

    Every array register has the storage dtype; results are returned in it.
    """
    first = next(iter(registers.values()))
    lanes = split.lanes.get(dtype_name(first), 0) if split is not None else 0
    if lanes:
        shape = first.shape
        size = math.prod(int(extent) for extent in shape)
        cut = size - size % lanes
        if cut < size:
            assert split is not None
            flat = {name: xp.reshape(x, (-1,)) for name, x in registers.items()}
            head = _run(xp, recipe, rounding, {k: v[:cut] for k, v in flat.items()}, hypers)
            tail = _run(
                xp, split.tail, split.tail_rounding, {k: v[cut:] for k, v in flat.items()}, hypers
            )
            joined = (xp.concat([head[name], tail[name]]) for name in outputs)
            return tuple(xp.reshape(xp.astype(x, first.dtype), shape) for x in joined)
    values = _run(xp, recipe, rounding, registers, hypers)
    return tuple(xp.astype(values[name], first.dtype) for name in outputs)


def _run(
    xp: Namespace,
    recipe: Recipe,
    rounding: Rounding,
    registers: Mapping[str, Any],
    hypers: Mapping[str, Hyper],
) -> dict[str, Any]:
    first = next(iter(registers.values()))
    storage = dtype_name(first)
    compute = getattr(xp, rounding.compute.get(storage, storage))
    result = getattr(xp, rounding.result.get(storage, storage))
    flush = _flusher(xp, storage in rounding.flush)
    values: dict[str, Any] = dict(registers)
    for name, hyper in hypers.items():
        values[name] = _cast_hyper(xp, hyper, first.dtype, compute, device(first))

    def rounded(x: Any) -> Any:
        return flush(xp.astype(x, result))

    for s in recipe:
        args = [flush(xp.astype(values[a], compute)) for a in s.args]
        if s.op == "muladd" and not rounding.contract:  # two roundings
            product = xp.astype(rounded(args[0] * args[1]), compute)
            values[s.out] = rounded(product + args[2])
        else:
            values[s.out] = rounded(_apply(xp, s.op, args))
    return values  # in the result dtype; evaluate() casts the outputs to storage


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
