"""The engine's intermediate representation: pure data, importing nothing of nagref's.

An update is an ordered :data:`Recipe` of primitive operations
(:class:`Instr`) on named registers (``p``, ``g``, ``b``, the
hyperparameters). How each operation rounds is not part of the recipe but
of a :class:`Rounding` model:

* ``contract``: whether ``muladd(a, b, c)`` = a·b + c is one rounding (a
  fused multiply-add) or two;
* ``compute``: the dtype an operation computes in, per storage dtype (PyTorch
  computes float16 in float32), and ``result``: the dtype each result is
  rounded to before the next operation reads it;
* ``flush``: storage dtypes whose subnormal operands and results are flushed
  to (signed) zero, as on CPUs that run with FTZ/DAZ set.

A hyperparameter (:class:`Hyper`) is a Python number or a 0-d array with
the chain of dtypes it is rounded through on its way to a constant register
(:data:`VIA_OPMATH`: the conversion most C++ runtimes make of a Python
float). Some kernels compute the leading elements of a tensor in SIMD lanes
and the last few in a scalar loop that the compiler contracted differently:
a :class:`Split` evaluates a second recipe on the last ``n mod lanes``
elements of each tensor. A :class:`Program` is a whole update, prepared once
per call; the executor turns it into one :class:`Batch` per dtype and device
for a kernel, or the generic interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

__all__ = [
    "COMPUTE",
    "OPMATH",
    "STORAGE",
    "VIA_OPMATH",
    "Batch",
    "Hyper",
    "Instr",
    "Op",
    "Program",
    "Recipe",
    "Rounding",
    "Segment",
    "Split",
    "bind",
    "bounds",
    "instr",
    "per_dtype",
]

Op = Literal["copy", "neg", "mul", "add", "sub", "div", "muladd"]


@dataclass(frozen=True)
class Instr:
    """``out <- op(*args)``: one primitive operation on named registers.

    ``note`` says where it comes from (the framework's source expression),
    for ``nagref explain``; it does not change what the operation computes.
    """

    out: str
    op: Op
    args: tuple[str, ...]
    note: str = field(default="", compare=False)


def instr(out: str, op: Op, *args: str, note: str = "") -> Instr:
    """Shorthand for :class:`Instr`."""
    return Instr(out, op, args, note)


Recipe = Sequence[Instr]


@dataclass(frozen=True)
class Rounding:
    """How a recipe's operations round (see the module docstring)."""

    contract: bool
    compute: Mapping[str, str] = field(default_factory=dict)
    result: Mapping[str, str] = field(default_factory=dict)
    flush: frozenset[str] = frozenset()


#: Names in a :class:`Hyper` cast chain that stand for a dtype of the leaf:
#: its storage dtype, the rounding model's compute dtype, and the storage
#: dtype's ``opmath`` (:mod:`nagref._dtypes`: float32 for the 16-bit formats).
STORAGE, COMPUTE, OPMATH = "storage", "compute", "opmath"

#: A Python float converted as c10's ``Half(double)``, Eigen's ``half`` and
#: XLA's run-time ``convert`` do: through float32 where the storage is a
#: 16-bit format (rounded twice), directly otherwise.
VIA_OPMATH = (OPMATH, STORAGE)


@dataclass(frozen=True)
class Hyper:
    """A hyperparameter: a Python number or 0-d array, and the dtypes it is rounded through.

    ``via`` names dtypes in order: a dtype's name, or :data:`STORAGE`,
    :data:`COMPUTE` or :data:`OPMATH`. A Python number is a float64: the
    first conversion rounds it once.
    """

    value: Any
    via: tuple[str, ...] = (STORAGE,)


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
    order; ``outputs`` the registers returned, where None marks an output
    this update does not produce (returned as None). Each :class:`Hyper` in
    ``hypers`` becomes a constant register, cast along its chain for each
    storage dtype.
    """

    recipe: Recipe
    rounding: Rounding
    inputs: tuple[str, ...]
    outputs: tuple[str | None, ...]
    hypers: Mapping[str, Hyper] = MappingProxyType({})
    split: Split | None = None


class Batch(NamedTuple):
    """Leaves of one dtype and device under one program: what a kernel receives.

    ``columns[k]`` holds every leaf of input register ``inputs[k]``;
    ``out[j]`` holds the caller's arrays for output ``outputs[j]`` (or is
    None: new arrays). ``segments`` is the body, then, where ``lanes`` is not
    0, the tail: the last ``n mod lanes`` elements of each leaf (see
    :func:`bounds`).
    """

    segments: tuple[Segment, ...]
    lanes: int
    inputs: tuple[str, ...]
    columns: Sequence[Sequence[Any]]
    outputs: tuple[str, ...]
    out: Sequence[Sequence[Any] | None]


def bind(program: Program, hypers: Mapping[str, Hyper]) -> Program:
    """``program`` with ``hypers`` added to its constants (for a traced program's keywords)."""
    return program._replace(hypers={**program.hypers, **hypers})


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
