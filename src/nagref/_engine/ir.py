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
  to (signed) zero, as on CPUs that run with FTZ/DAZ set: operands once
  converted to the compute dtype, results in the compute dtype, before they
  are rounded to the result dtype (bfloat16 computed in float32 shares its
  exponent range, so a float32 result just below 2**-126 is zero, not the
  bfloat16 number it would round up to).

A hyperparameter (:class:`Hyper`) is a Python number or a 0-d array with
the chain of dtypes it is rounded through on its way to a constant register
(:data:`VIA_OPMATH`: the conversion most C++ runtimes make of a Python
float). Some kernels compute the leading elements of a tensor in SIMD lanes
and the last few in a scalar loop that the compiler contracted differently:
a :class:`Split` evaluates a second recipe on the last ``n mod lanes``
elements of each tensor. A kernel that runs on several threads may first cut
a large tensor into chunks, each with its own SIMD body and scalar tail: a
split's ``grain`` and ``threads`` say how (:func:`chunks`, :func:`pieces`).
A :class:`Program` is a whole update, prepared once per call; the executor
turns it into one :class:`Batch` per dtype and device for a kernel, or the
generic interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

__all__ = [
    "COMPUTE",
    "HOST",
    "OPMATH",
    "STORAGE",
    "VIA_HOST",
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
    "chunked",
    "chunks",
    "instr",
    "per_dtype",
    "pieces",
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
#: its storage dtype, the rounding model's compute dtype, the storage
#: dtype's ``opmath`` (:mod:`nagref._dtypes`: float32 for the 16-bit formats),
#: and the dtype NumPy's converter goes through on the way to the storage
#: dtype (its ``host_via``: float32 for bfloat16 where the installed
#: ``ml_dtypes`` reaches it through float32, as 0.6 does; the storage dtype
#: itself otherwise).
STORAGE, COMPUTE, OPMATH, HOST = "storage", "compute", "opmath", "host"

#: A Python float converted as c10's ``Half(double)``, Eigen's ``half`` and
#: XLA's run-time ``convert`` do: through float32 where the storage is a
#: 16-bit format (rounded twice), directly otherwise.
VIA_OPMATH = (OPMATH, STORAGE)

#: A Python float converted on the host by NumPy (``ml_dtypes`` for the
#: formats NumPy lacks), as JAX converts a weakly typed scalar and Keras's
#: NumPy and JAX backends cast one: once, except bfloat16 (through float32).
VIA_HOST = (HOST, STORAGE)


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
    """Evaluate ``tail`` on the last ``n mod lanes[dtype]`` elements of each tensor.

    With ``grain`` > 0 and ``threads`` > 1, a tensor of more than ``grain``
    elements is first cut into chunks (:func:`chunks`: PyTorch's
    ``at::parallel_for``), and the body and the tail apply to each chunk:
    the tail is the last ``m mod lanes`` elements of each chunk of ``m``.
    Elements are counted in memory (C) order of the flattened tensor.
    """

    tail: Recipe
    tail_rounding: Rounding
    lanes: Mapping[str, int]
    grain: int = 0
    threads: int = 1


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
    storage dtype. ``stored`` names outputs kept in a dtype of their own, not
    the storage dtype (by register: Optax's float32 trace of bfloat16
    parameters); the inputs that fill such a register have that dtype too.
    ``scalar``, where given, holds per leaf (in the trees' order) a mapping
    from an instruction's position in ``recipe`` to the elements it computes
    with the split's tail rounding (a boolean array in the leaf's shape, True
    where it does), replacing the split's ``n mod lanes`` tails for that leaf:
    a kernel whose SIMD rows depend on the tensors' strides (PyTorch's
    ``TensorIterator``, :mod:`nagref.conventions._layouts`). An empty mapping
    or None: the leaf is split as usual.
    """

    recipe: Recipe
    rounding: Rounding
    inputs: tuple[str, ...]
    outputs: tuple[str | None, ...]
    hypers: Mapping[str, Hyper] = MappingProxyType({})
    split: Split | None = None
    stored: Mapping[str, str] = MappingProxyType({})
    scalar: Sequence[Mapping[int, Any] | None] | None = None


class Batch(NamedTuple):
    """Leaves of one dtype and device under one program: what a kernel receives.

    ``columns[k]`` holds every leaf of input register ``inputs[k]``;
    ``out[j]`` holds the caller's arrays for output ``outputs[j]`` (or is
    None: new arrays). ``segments`` is the body, then, where ``lanes`` is not
    0, the tail: the last ``n mod lanes`` elements of each leaf (see
    :func:`bounds`). ``stored``: the program's outputs kept in a dtype of
    their own (see :class:`Program`); a kernel that cannot store them so
    declines the batch. ``grain`` and ``threads``: the split's chunking (see
    :class:`Split`); where it cuts a leaf into more than one chunk
    (:func:`chunked`), each chunk has its own body and tail (:func:`pieces`),
    and the executor gives the batch to the interpreter, not a kernel.
    ``scalar``: per leaf of the batch, the program's masks (see
    :class:`Program`); a batch with any runs on the interpreter.
    """

    segments: tuple[Segment, ...]
    lanes: int
    inputs: tuple[str, ...]
    columns: Sequence[Sequence[Any]]
    outputs: tuple[str, ...]
    out: Sequence[Sequence[Any] | None]
    stored: Mapping[str, str] = MappingProxyType({})
    grain: int = 0
    threads: int = 1
    scalar: Sequence[Mapping[int, Any] | None] | None = None


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


def chunks(size: int, grain: int = 0, threads: int = 1) -> list[tuple[int, int]]:
    """The chunks ``[start, stop)`` that ``threads`` threads cut a leaf of ``size`` elements into.

    As PyTorch's ``at::parallel_for`` (OpenMP backend) splits a
    ``TensorIterator`` loop of grain ``grain``: a leaf of at most ``grain``
    elements (or ``grain`` 0, or one thread) is one chunk; a larger one is
    cut into c = min(threads, ⌈size / grain⌉) chunks of ⌈size / c⌉ elements,
    the last shorter (measured against torch 2.13.0 with 1 to 4 threads).
    """
    if grain <= 0 or threads <= 1 or size <= grain:
        return [(0, size)]
    count = min(threads, -(-size // grain))
    step = -(-size // count)
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def pieces(lanes: int, size: int, grain: int = 0, threads: int = 1) -> list[tuple[int, int, int]]:
    """``(segment, start, stop)``: each chunk's body (segment 0) and tail (segment 1), in order.

    Every element of a leaf of ``size`` elements lies in exactly one piece.
    Empty pieces are left out (an empty leaf is one empty body), and
    neighbours of the same segment are joined: chunks whose sizes are
    multiples of ``lanes`` leave one body.
    """
    out: list[tuple[int, int, int]] = []
    for start, stop in chunks(size, grain, threads):
        for segment, (a, b) in enumerate(bounds(lanes, stop - start)):
            if b == a:
                continue
            if out and out[-1][0] == segment and out[-1][2] == start + a:
                out[-1] = (segment, out[-1][1], start + b)
            else:
                out.append((segment, start + a, start + b))
    return out or [(0, 0, size)]


def chunked(lanes: int, size: int, grain: int = 0, threads: int = 1) -> bool:
    """Whether chunks give a leaf of ``size`` elements other tails than one body and tail would.

    Such a leaf is not the single body and tail of :func:`bounds` that a
    kernel computes (see :class:`Batch`).
    """
    return bool(lanes) and pieces(lanes, size, grain, threads) != pieces(lanes, size)
