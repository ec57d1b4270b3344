"""PyTorch steps on tensors that are not contiguous: each leaf's layout, and what it changes.

:mod:`._layouts` models how torch walks one tensor's memory; this module
applies it to a step's pytrees (see :func:`nagref.conventions.pytorch.sgd`'s
``layout``): it finds each leaf's strides (given, read from a torch tensor
or NumPy array, or, for the buffer, as torch's first step made it), the
elements each ``add_`` computes in its scalar loop (:func:`layouts`), and
runs the fused kernel, which walks memory, not logical order
(:func:`in_memory`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from .._checks import dtype_name
from .._compat import array_namespace, device
from .._engine.ir import Instr, Recipe, pieces
from .._tree import flatten, flatten_like, unflatten
from ._aten import GRAIN, REDUCED_LANES
from ._layouts import Strides, contiguous, dense, is_contiguous, memory_axes, named, read, walk
from ._registry import Extra, Setting, Variant

__all__ = [
    "AUDIT_THREADS",
    "Leaf",
    "audit_settings",
    "in_memory",
    "layouts",
    "masks",
    "relaid",
    "relaid_trees",
    "sgd_in_place",
]

#: The most threads the audit tries (torch's default is the physical cores).
AUDIT_THREADS = 64

_REGISTERS = {"param": "p", "grad": "g", "momentum_buffer": "b"}


class Leaf(NamedTuple):
    """One parameter's shape and the strides of its tensors, by register (``p``, ``g``, ``b``),
    and the parameter itself (its namespace and device make the masks)."""

    shape: tuple[int, ...]
    strides: dict[str, Strides]
    param: Any

    @property
    def contiguous(self) -> bool:
        return all(is_contiguous(self.shape, s) for s in self.strides.values())


def layouts(
    param: Any,
    grad: Any,
    buffer: Any,
    layout: Mapping[str, object],
    *,
    first: Recipe,
    in_place: Callable[[Instr], bool],
    fused: bool,
) -> list[Leaf] | None:
    """Each leaf's layout, or None where every tensor is contiguous (the usual case).

    ``layout`` (by role: ``"param"``, ``"grad"``, ``"momentum_buffer"``)
    gives a layout's name or strides for every leaf of that role; a role
    whose layout is None takes each leaf's own strides (a
    torch tensor's or a NumPy array's; others are contiguous), except the
    buffer, which has the layout torch's first step gave it: ``first`` (the
    first step's recipe) run on the param and grad layouts (``clone``'s
    rules), or the grad's (``empty_like``) where ``fused``.
    """
    given = {role: value for role, value in layout.items() if value is not None}
    entries, structure = flatten(param)
    trees = {"param": [leaf for _, leaf in entries], "grad": flatten_like(structure, grad, "grad")}
    if buffer is not None:
        trees["momentum_buffer"] = flatten_like(structure, buffer, "momentum_buffer")
    leaves: list[Leaf] = []
    for i, p in enumerate(trees["param"]):
        shape = tuple(int(e) for e in getattr(p, "shape", ()))
        strides: dict[str, Strides] = {}
        for role in ("param", "grad", "momentum_buffer"):
            if role in given:
                strides[_REGISTERS[role]] = named(given[role], shape, f"{role}_layout")
            elif role != "momentum_buffer":
                own = read(trees[role][i], role)
                strides[_REGISTERS[role]] = contiguous(shape) if own is None else own
        leaves.append(Leaf(shape, strides, p))
    if all(leaf.contiguous for leaf in leaves) and "momentum_buffer" not in given:
        return None  # contiguous tensors give a contiguous buffer: nothing to derive
    for leaf in leaves:  # the buffer's layout, as torch's first step made it
        if "b" not in leaf.strides:
            leaf.strides["b"] = (
                leaf.strides["g"]
                if fused
                else walk(
                    first, leaf.shape, leaf.strides, in_place=in_place, lanes=1, grain=0, threads=1
                )[1].get("b", contiguous(leaf.shape))
            )
    if all(leaf.contiguous for leaf in leaves):
        return None
    return leaves


def masks(
    recipe: Recipe,
    leaves: Sequence[Leaf],
    dtype: str,
    *,
    first: bool,
    in_place: Callable[[Instr], bool],
    lanes: int,
    grain: int,
    threads: int,
) -> list[dict[int, Any] | None]:
    """Per leaf of ``dtype``, the scalar elements of each of ``recipe``'s multiply-adds
    (see :func:`walk`); None for the others."""
    registers = ("p", "g") if first else ("p", "g", "b")
    out: list[dict[int, Any] | None] = []
    for leaf in leaves:
        if dtype_name(leaf.param) != dtype:
            out.append(None)
            continue
        inputs = {r: leaf.strides[r] for r in registers}
        xp = array_namespace(leaf.param)
        found = walk(
            recipe, leaf.shape, inputs, in_place=in_place, lanes=lanes, grain=grain,
            threads=threads, xp=xp, device=device(leaf.param),
        )[0]  # fmt: skip
        out.append(found or None)
    return out


def relaid(x: Any, shape: tuple[int, ...], strides: Strides) -> Any:
    """``x`` laid out with ``strides``, where they are dense and ``x`` (a torch tensor or NumPy
    array) has others: a new array (the interpreter's results follow its operands' layouts)."""
    own = read(x, "a result")
    if own is None or own == strides or not dense(shape, strides) or math.prod(shape) <= 1:
        return x
    copied = array_namespace(x).asarray(_to_memory(x, shape, strides), copy=True)
    return _from_memory(copied, shape, strides)


def relaid_trees(
    param: Any, buffer: Any, leaves: Sequence[Leaf], out: tuple[Any, Any] | None
) -> tuple[Any, Any]:
    """A step's new param and buffer trees in their tensors' layouts (``out``'s arrays kept)."""
    trees: list[Any] = [param, buffer]
    for k, (tree, register) in enumerate(((param, "p"), (buffer, "b"))):
        if tree is None or (out is not None and out[k] is not None):
            continue
        entries, structure = flatten(tree)
        trees[k] = unflatten(
            structure,
            [
                relaid(x, leaf.shape, leaf.strides[register])
                for (_, x), leaf in zip(entries, leaves, strict=True)
            ],
        )
    return trees[0], trees[1]


def in_memory(
    param: Any,
    grad: Any,
    buffer: Any,
    leaves: Sequence[Leaf],
    step: Callable[[Any, Any, Any], tuple[Any, Any]],
) -> tuple[Any, Any]:
    """The fused kernel's step: each tensor walked in its memory order, element k with element k.

    torch's fused CPU kernel (``_fused_sgd_``) reads each tensor from its
    first element in memory for ``numel`` elements, so it pairs the k-th
    element in memory of the param, the grad and the buffer, whatever their
    logical positions; its scalar epilogue is the last elements in memory.
    A tensor that is not dense would have it read or write memory outside
    the tensor, which nagref cannot know: it is refused. ``step`` runs the
    fused kernel on 1-D leaves; the results come back in the param's and
    the buffer's layouts.
    """
    for leaf in leaves:
        for register, strides in leaf.strides.items():
            if register == "b" and buffer is None:
                continue
            if not dense(leaf.shape, strides):
                role = next(r for r, name in _REGISTERS.items() if name == register)
                raise ValueError(
                    f"{role} has strides {strides} (shape {leaf.shape}), not dense: torch's "
                    "fused kernel walks numel elements of memory from the tensor's start, "
                    "reading or writing memory outside it, which nagref is not given "
                    "(fused=False steps such tensors as torch's other paths do)"
                )
    entries, structure = flatten(param)
    trees = {"p": [leaf for _, leaf in entries], "g": flatten_like(structure, grad, "grad")}
    if buffer is not None:
        trees["b"] = flatten_like(structure, buffer, "momentum_buffer")

    columns = {
        r: [_to_memory(x, leaf.shape, leaf.strides[r]) for x, leaf in zip(xs, leaves, strict=True)]
        for r, xs in trees.items()
    }
    new_p, new_b = step(columns["p"], columns["g"], columns.get("b"))

    def back(xs: Any, register: str) -> Any:
        return unflatten(
            structure,
            [
                _from_memory(x, leaf.shape, leaf.strides[register])
                for x, leaf in zip(xs, leaves, strict=True)
            ],
        )

    return back(new_p, "p"), None if new_b is None else back(new_b, "b")


def sgd_in_place(foreach: bool) -> Callable[[Instr], bool]:
    """Which of ``torch.optim.SGD``'s operations torch runs in place (for the tensors' layouts).

    ``param.add_``, ``buf.mul_`` and ``buf.add_``; the foreach path's
    Nesterov step too (``_foreach_add_(device_grads, bufs)``), where the
    single-tensor path makes a new tensor (``grad.add(buf)``).
    """

    def in_place(s: Instr) -> bool:
        return s.out in ("p", "b") or (foreach and s.out == "g" and "b" in s.args)

    return in_place


def _to_memory(x: Any, shape: tuple[int, ...], strides: Strides) -> Any:
    """A dense tensor's elements as a 1-D array in memory order (of a tensor so laid out)."""
    xp = array_namespace(x)
    return xp.reshape(xp.permute_dims(x, memory_axes(shape, strides)), (-1,))


def _from_memory(flat: Any, shape: tuple[int, ...], strides: Strides) -> Any:
    """The inverse of :func:`_to_memory`: a view of ``flat`` with ``shape``, laid out so."""
    xp = array_namespace(flat)
    axes = memory_axes(shape, strides)
    return xp.permute_dims(xp.reshape(flat, tuple(shape[a] for a in axes)), _inverse(axes))


def _inverse(axes: Sequence[int]) -> tuple[int, ...]:
    inverse = [0] * len(axes)
    for position, axis in enumerate(axes):
        inverse[axis] = position
    return tuple(inverse)


def audit_settings(
    extras: Sequence[Extra], variant: Variant, shape: tuple[int, ...], dtype: str
) -> list[Setting]:
    """The thread counts and layouts that change the bits of ``variant`` on a run, for the audit.

    Threads cut a float16 or bfloat16 tensor of more than :data:`GRAIN`
    elements into chunks, each with its own scalar tail (not under the
    ``"default"`` capability, where every element is scalar, nor in the fused
    kernel or a compiled step): each count from 2 to min(⌈n / GRAIN⌉,
    :data:`AUDIT_THREADS`) whose chunks' tails differ from every smaller
    count's, each named by the fewest threads that give its bits (``"3+
    threads"``: that many or more). A layout (``extras``: the vectors' cases) decides which elements
    of a float16 or bfloat16 ``add_`` run scalar, and the fused kernel's
    pairing and epilogue in every dtype; a transposed one only where two
    dimensions exceed 1. Each setting is a label and keywords, layouts and
    counts combined.
    """
    options = variant.options
    if options.get("compiled"):
        return []
    fused = bool(options.get("fused"))
    reduced = dtype in REDUCED_LANES and options.get("cpu_capability") != "default"
    counts, n = [1], math.prod(shape)
    if reduced and not fused:
        seen = {tuple(pieces(REDUCED_LANES[dtype], n, GRAIN, 1))}
        for count in range(2, min(-(-n // GRAIN), AUDIT_THREADS) + 1):
            if (split := tuple(pieces(REDUCED_LANES[dtype], n, GRAIN, count))) not in seen:
                seen.add(split)
                counts.append(count)
    laid: list[Setting] = [("", {})]
    if fused or reduced:
        square = sum(d > 1 for d in shape) >= 2
        for extra in extras:
            transposes = "transposed" in extra.keywords.values()
            if extra.applies(variant) and (square or not transposes):
                laid.append((f", {extra.name}", extra.keywords))
    most = -(-n // GRAIN)  # any more threads cut no more chunks: "3+ threads"
    return [
        (label + (f", {count}{'+' * (count == most)} threads" if count > 1 else ""),
         {**keywords, **({"threads": count} if count > 1 else {})})
        for label, keywords in laid
        for count in counts
        if label or count > 1
    ]  # fmt: skip
