r"""How torch walks a tensor's memory: strides, ``TensorIterator``'s order, and the SIMD rows.

A torch tensor is a view of memory: its strides (in elements, one per
dimension) say where each element lies. torch's elementwise CPU ops
(``add_``, ``mul_``, ``clone``, ``neg`` and their ``_foreach_`` forms, all
``TensorIterator`` kernels) do not walk the elements in logical order but in
an order chosen from the operands' strides, and whether an element is
computed in the SIMD body or in the scalar loop depends on that walk. This
module computes it, as torch 2.13.0's ``TensorIteratorBase`` does
(``aten/src/ATen/TensorIterator.cpp``, ``cpu/Loops.h``):

1. **Order.** The dimensions are sorted by stride, fastest first
   (``reorder_dimensions``): for two dimensions, the operands are asked in
   order (the output first, where it exists already: an in-place op's
   ``self``), and the first with different strides there decides; equal
   strides are broken by size (the smaller first), a stride of 0 asks the
   next operand, and an undecided pair keeps its order.
2. **Coalescing.** Neighbours in that order merge where every operand's
   stride continues the faster one's (``stride · size``), or either has
   size 1 (``coalesce_dimensions``).
3. **Threads.** A walk of more than :data:`GRAIN` elements is cut into
   chunks of the iteration index (:func:`nagref._engine.ir.chunks`).
4. **Rows.** Each chunk is walked in rows of the innermost (coalesced)
   dimension. A row where every operand has stride 1 runs the SIMD body on
   its leading multiples of ``lanes`` elements and the scalar loop on the
   rest; a row where any operand has another stride runs the scalar loop on
   every element (``VectorizedLoop2d``).

A new output (an out-of-place op's result) is allocated dense in that order
(``allocate_or_resize_outputs``), so a transposed input gives a transposed
result, and ``clone`` (``preserve_format``) keeps the strides of a
non-overlapping, dense tensor and makes any other one contiguous (or
channels-last, where its strides suggest it: ``suggest_memory_format``).

A contiguous tensor is one row (in chunks): the tail is the last
``n mod lanes`` elements of each chunk, the model of
:func:`nagref._engine.ir.pieces`, of which this is the general case.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from .._checks import describe
from .._engine.ir import Instr, Recipe, chunks
from .._typing import Namespace

__all__ = [
    "NAMES",
    "Strides",
    "allocated",
    "cloned",
    "contiguous",
    "dense",
    "memory_axes",
    "named",
    "order",
    "read",
    "scalar_any",
    "simd",
    "walk",
]

#: The layouts a name gives (for any shape): see :func:`named`.
NAMES = ("contiguous", "transposed", "strided")

#: A tensor's strides, in elements, one per dimension.
Strides = tuple[int, ...]


def is_contiguous(shape: Sequence[int], strides: Strides) -> bool:
    """Whether a tensor of ``shape`` with ``strides`` is laid out C-contiguously; one with
    no elements is, whatever its strides (``torch.tensor(np.ones(0))`` has stride ``(0,)``)."""
    return any(int(extent) == 0 for extent in shape) or strides == contiguous(shape)


def contiguous(shape: Sequence[int]) -> Strides:
    """The strides of a C-contiguous tensor of ``shape`` (torch's, a size-0 or 1 dim's included)."""
    strides: list[int] = []
    step = 1
    for extent in reversed(shape):
        strides.append(step)
        step *= max(int(extent), 1)
    return tuple(reversed(strides))


def named(name: object, shape: Sequence[int], argument: str) -> Strides:
    """The strides ``name`` gives a tensor of ``shape``: a layout's name, or strides themselves.

    ``"contiguous"``: C order; ``"transposed"``: the dimensions reversed in
    memory (``x.mT`` of a 2-D tensor, ``x.permute(*reversed(range(x.ndim)))``
    in general); ``"strided"``: every other element along the last
    dimension (``base[..., ::2]`` of a contiguous ``base`` twice as long
    there). A sequence of whole numbers >= 0, one per dimension, is taken as
    the strides, in elements. ``argument`` names the argument in errors.
    """
    if isinstance(name, str):
        if name not in NAMES:
            raise ValueError(
                f"{argument} must be one of {', '.join(NAMES)} or strides, got {describe(name)}"
            )
        if name == "contiguous" or not shape:
            return contiguous(shape)
        if name == "transposed":
            return contiguous(shape[::-1])[::-1]
        strides = contiguous((*shape[:-1], 2 * shape[-1]))
        return (*strides[:-1], 2)
    if (
        not isinstance(name, (tuple, list))
        or len(name) != len(shape)
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in name)
    ):
        raise ValueError(
            f"{argument} must be one of {', '.join(NAMES)} or {len(shape)} whole numbers >= 0 "
            f"(the strides of a tensor of shape {tuple(shape)}, in elements), got {describe(name)}"
        )
    return tuple(name)


def read(leaf: Any, argument: str) -> Strides | None:
    """A leaf's own strides, in elements: a torch tensor's or a NumPy array's (None: neither)."""
    stride = getattr(leaf, "stride", None)
    if callable(stride) and type(leaf).__module__.startswith("torch"):
        return tuple(int(s) for s in stride())
    steps, itemsize = getattr(leaf, "strides", None), getattr(leaf, "itemsize", None)
    numpy = type(leaf).__module__ == "numpy" and type(leaf).__name__ == "ndarray"
    if numpy and isinstance(steps, tuple) and isinstance(itemsize, int):
        if any(s < 0 or s % itemsize for s in steps):
            raise ValueError(
                f"{argument} has strides {steps} (bytes), which no torch tensor has "
                "(negative, or not whole elements): pass layout= to say how torch holds it"
            )
        return tuple(s // itemsize for s in steps)
    return None


def memory_axes(shape: Sequence[int], strides: Strides) -> tuple[int, ...]:
    """A dense tensor's dimensions in memory order, slowest first (a stable sort)."""
    return tuple(sorted(range(len(shape)), key=lambda d: (-strides[d], -shape[d])))


def dense(shape: Sequence[int], strides: Strides) -> bool:
    """Whether the tensor is non-overlapping and dense (``is_non_overlapping_and_dense``)."""
    if math.prod(shape) <= 1:
        return True
    dims = sorted(
        (d for d in range(len(shape)) if shape[d] != 1), key=lambda d: (abs(strides[d]), shape[d])
    )
    step = 1
    for d in dims:
        if strides[d] != step:
            return False
        step *= shape[d]
    return True


def order(shape: Sequence[int], operands: Sequence[Strides]) -> list[int]:
    """The dimensions from fastest to slowest, as ``reorder_dimensions`` sorts them.

    ``operands``: the strides of the operands that exist already, outputs
    first (a new output has none yet).
    """
    ndim = len(shape)
    perm = list(range(ndim - 1, -1, -1))

    def should_swap(dim0: int, dim1: int) -> int:
        for strides in operands:
            stride0, stride1 = strides[dim0], strides[dim1]
            if stride0 == 0 or stride1 == 0:
                continue
            if stride0 < stride1:
                return -1
            if stride0 > stride1:
                return 1
            if shape[dim0] > shape[dim1]:
                return 1
        return 0

    for i in range(1, ndim):
        dim1 = i
        for dim0 in range(i - 1, -1, -1):
            comparison = should_swap(perm[dim0], perm[dim1])
            if comparison > 0:
                perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
                dim1 = dim0
            elif comparison < 0:
                break
    return perm


def allocated(shape: Sequence[int], inputs: Sequence[Strides]) -> Strides:
    """The strides of an out-of-place op's new result: dense in the inputs' order."""
    strides = [0] * len(shape)
    step = 1
    for d in order(shape, inputs):
        strides[d] = step
        step *= max(int(shape[d]), 1)
    return tuple(strides)


def cloned(shape: Sequence[int], strides: Strides) -> Strides:
    """The strides of ``torch.clone(x)`` (``preserve_format``) for ``x`` of ``strides``."""
    if dense(shape, strides):
        return strides
    if len(shape) == 4 and _channels_last(shape, strides):
        _, c, h, w = shape
        return (h * w * c, 1, w * c, c)
    return contiguous(shape)


def _channels_last(shape: Sequence[int], strides: Strides) -> bool:
    """c10's ``is_channels_last_strides_2d_s4``: strides that suggest channels-last."""
    smallest = 0
    if strides[1] == 0:
        return False
    for d in (1, 3, 2, 0):
        if shape[d] == 0 or strides[d] < smallest:
            return False
        if d == 0 and smallest == strides[1]:
            return False
        smallest = strides[d] * (shape[d] if shape[d] > 1 else 1)
    return True


def simd(
    xp: Namespace,
    shape: Sequence[int],
    operands: Sequence[Strides],
    *,
    lanes: int,
    grain: int,
    threads: int,
    device: Any = None,
) -> Any:
    """Which elements an elementwise op computes in its SIMD body (True) or scalar loop (False).

    A boolean array of ``xp`` (on ``device``) in the tensors' logical (C)
    order, for an op whose operands (outputs first, then inputs) have
    ``operands``' strides, with ``lanes``-element SIMD steps, on ``threads``
    threads of grain ``grain`` (see the module's docstring).
    """
    size = math.prod(shape)
    if not size:
        return xp.zeros(tuple(shape), dtype=xp.bool, device=device)
    perm, row, vectorised = _rows(shape, operands)
    index = xp.arange(size, dtype=xp.int64, device=device)  # the walk's (iteration) index
    if not vectorised:
        body = xp.zeros(size, dtype=xp.bool, device=device)
    else:  # each chunk's rows: [a, b) of row and chunk, its body up to b - (b - a) mod lanes
        parts = []
        for start, stop in chunks(size, grain, threads):
            i = index[start:stop]
            first = (i // row) * row
            a = xp.where(first > start, first, xp.full_like(first, start))
            b = xp.where(first + row < stop, first + row, xp.full_like(first, stop))
            parts.append(i < b - (b - a) % lanes)
        body = xp.concat(parts) if len(parts) > 1 else parts[0]
    # iteration index -> logical element: the walk's order, slowest dim first
    axes = perm[::-1]
    walked = xp.reshape(index, tuple(shape[d] for d in axes))
    logical = xp.permute_dims(walked, tuple(sorted(range(len(axes)), key=axes.__getitem__)))
    return xp.reshape(xp.take(body, xp.reshape(logical, (-1,))), tuple(shape))


def _rows(shape: Sequence[int], operands: Sequence[Strides]) -> tuple[list[int], int, bool]:
    """The walk's order, its rows' length (the coalesced innermost dimension), and whether
    every operand has stride 1 along the rows (the SIMD loop's condition)."""
    perm = order(shape, operands)
    inner, inner_strides = 1, [0] * len(operands)
    for d in perm:  # each run of dims whose strides continue one another is one dim
        if shape[d] == 1:
            continue
        if inner == 1:
            inner, inner_strides = shape[d], [s[d] for s in operands]
            continue
        if all(s[d] == step * inner for s, step in zip(operands, inner_strides, strict=True)):
            inner *= shape[d]
            continue
        break
    return perm, max(inner, 1), all(step == 1 for step in inner_strides)


def scalar_any(
    shape: Sequence[int], operands: Sequence[Strides], *, lanes: int, grain: int, threads: int
) -> bool:
    """Whether :func:`simd` leaves any element to the scalar loop (from the shapes alone)."""
    size = math.prod(shape)
    _, row, vectorised = _rows(shape, operands)
    if not size:
        return False
    if not vectorised:
        return True
    for start, stop in chunks(size, grain, threads):
        head = min(stop, start - start % row + row)  # the first row's end in this chunk
        tail = max(start, stop - stop % row)  # the last row's start
        if (head - start) % lanes or (stop - tail) % lanes:
            return True
        if tail > head and row % lanes:  # whole rows between them
            return True
    return False


def walk(
    recipe: Recipe,
    shape: Sequence[int],
    layouts: dict[str, Strides],
    *,
    in_place: Callable[[Instr], bool],
    lanes: int,
    grain: int,
    threads: int,
    xp: Namespace | None = None,
    device: Any = None,
) -> tuple[dict[int, Any], dict[str, Strides]]:
    """The scalar elements of each multiply-add of ``recipe``, run as torch ops on such tensors.

    ``layouts``: the input registers' strides. Each ``muladd(x, a, y)`` is
    ``y.add(x, alpha=a)`` (in place, ``y.add_``, where ``in_place`` says so);
    ``copy`` is ``clone``, ``neg`` an out-of-place op; ``mul`` (``mul_``)
    rounds alike in the body and the scalar loop. Returns, by instruction
    position, the mask of the elements computed by the scalar loop (where
    any: arrays of ``xp`` on ``device``; none without ``xp``), and every
    register's layout after the recipe.
    """
    layouts = dict(layouts)
    masks: dict[int, Any] = {}
    for k, s in enumerate(recipe):
        if s.op == "copy":
            layouts[s.out] = cloned(shape, layouts[s.args[0]])
        elif s.op == "neg":
            layouts[s.out] = allocated(shape, [layouts[s.args[0]]])
        elif s.op == "muladd":
            x, _, y = s.args
            operands = [layouts[y], layouts[x]]
            every = {"lanes": lanes, "grain": grain, "threads": threads}
            if xp is not None and scalar_any(shape, operands, **every):
                masks[k] = xp.logical_not(simd(xp, shape, operands, device=device, **every))
            layouts[s.out] = layouts[y] if in_place(s) else allocated(shape, operands)
        elif s.op != "mul" or not in_place(s):
            raise NotImplementedError(f"no torch layout rule for {s}")
    return masks, layouts
