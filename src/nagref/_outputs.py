"""The caller's ``out=`` arrays: writable, and sharing memory only where that is safe.

Leaves are computed one after another, so an output that shares memory with
another leaf's input (or with another output) would change it before it is
read. :func:`check_outputs` runs before anything is computed and refuses,
naming the arrays by their pytree paths: outputs that cannot be written
(JAX arrays, read-only arrays, what ``torch`` refuses only when it writes:
:func:`nagref._compat.write_refusal`), outputs whose elements share memory
with each other (an expanded view), and any memory an output shares with an
input or another output, except exactly its own leaf's input of the same
role (the in-place step). NumPy arrays that own their memory are compared by
identity in one pass; anything else by the byte intervals it views
(:func:`nagref._compat.extent`).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ._checks import dtype_name, first_of_each_type
from ._compat import cpu_only, extent, is_jax_array, write_refusal
from ._engine.ir import Program
from ._tree import Path, path_name

__all__ = ["check_outputs"]


def check_outputs(
    outs: tuple[Sequence[int], Sequence[str], Sequence[Sequence[Any]]],
    inputs: tuple[Sequence[str], Sequence[Sequence[Any]]],
    paths: Sequence[Path],
    program_for: Callable[[str], Program],
) -> None:
    """Refuse outputs that cannot be written or that share memory unsafely.

    Args:
        outs: the outputs' positions among the program's outputs, their
            argument names (``out[k]``) and their leaves.
        inputs: the argument names and leaves of the inputs.
        paths: each leaf position's pytree path.
        program_for: the program, asked (once) which input each output
            replaces, only where an output is exactly an input.
    """
    positions, out_names, out_columns = outs
    names, columns = inputs
    _check_out(out_names, out_columns, paths)
    own = functools.partial(_own_inputs, names, program_for, columns[0])
    if not _owners_in_their_own_places(positions, out_columns, columns, own):
        _check_overlap((positions, out_names, out_columns), (names, columns), paths, own())


def _check_out(
    names: Sequence[str], columns: Sequence[Sequence[Any]], paths: Sequence[Path]
) -> None:
    """Output arrays must be writable arrays of a library that writes in place,
    each element in memory of its own."""
    for name, column in zip(names, columns, strict=True):
        torch_like = False
        for index, leaf in first_of_each_type(column):
            if is_jax_array(leaf):
                raise TypeError(
                    f"{path_name(name, paths[index])} is a JAX array, which cannot be "
                    "written in place; call without out= (under jax.jit, donate_argnums "
                    "reuses the buffers)"
                )
            torch_like = torch_like or hasattr(leaf, "requires_grad")
        for index, leaf in enumerate(column):
            # duck-typed: NumPy (and CuPy) arrays say whether they may be written
            if not getattr(getattr(leaf, "flags", None), "writeable", True):
                raise ValueError(
                    f"{path_name(name, paths[index])} is read-only: an output must be writable"
                )
            refusal = write_refusal(leaf) if torch_like else None
            if refusal is not None:
                raise ValueError(f"{path_name(name, paths[index])} {refusal}")
            if _overlaps_itself(leaf):
                raise ValueError(
                    f"{path_name(name, paths[index])} has elements that share memory (an "
                    "expanded or overlapping strided view): each output element must have "
                    "memory of its own"
                )


#: The most elements whose offsets :func:`_overlaps_itself` lists one by one.
_LISTED = 1 << 16


def _overlaps_itself(leaf: Any) -> bool:
    """Whether two elements of ``leaf`` may share memory.

    Contiguous arrays cannot. Otherwise, from its extent's shape and strides: a
    zero stride over two or more elements does (an expanded view); axes whose
    strides, in increasing order, each step over all the smaller ones cannot;
    anything else is decided by listing the offsets (up to :data:`_LISTED`
    elements, above which it counts as overlapping).
    """
    flags = getattr(leaf, "flags", None)
    if flags is not None and (flags.c_contiguous or flags.f_contiguous):
        return False
    contiguous = getattr(leaf, "is_contiguous", None)
    if callable(contiguous) and contiguous():
        return False
    where = extent(leaf)
    itemsize = getattr(leaf, "itemsize", None)
    if where is None or not isinstance(itemsize, int):
        return False
    shape: tuple[int, ...] = where.exact[1]  # type: ignore[assignment]
    strides: tuple[int, ...] = where.exact[2]  # type: ignore[assignment]
    axes = sorted((abs(s), n) for n, s in zip(shape, strides, strict=True) if n > 1)
    reach = itemsize  # the bytes spanned by the axes so far, plus one element
    for stride, n in axes:
        if stride < reach:
            break
        reach += stride * (n - 1)
    else:
        return False
    count = math.prod(shape)
    if axes[0][0] == 0 or count > _LISTED:
        return True
    offsets = [0]
    for stride, n in axes:
        offsets = [o + k * stride for o in offsets for k in range(n)]
    offsets.sort()
    return any(b - a < itemsize for a, b in itertools.pairwise(offsets))


def _owners_in_their_own_places(
    positions: Sequence[int],
    out_columns: Sequence[Sequence[Any]],
    columns: Sequence[Sequence[Any]],
    own: Callable[[], Callable[[int], int | None]],
) -> bool:
    """Whether every array is a NumPy array that owns its memory, and every output is
    a distinct array that is no input or exactly its own leaf's own-role input.

    Two different arrays that own their memory share none of it, so identity
    decides overlap among them, in one pass (a model's hundreds of leaves).
    False sends the call to the memory sweep of :func:`_check_overlap`, which
    also names what is wrong.
    """
    if not all(map(_owned, columns)) or not all(map(_owned, out_columns)):
        return False
    inputs: dict[int, int] = {}  # an input array -> the one leaf that reads it
    for column in columns:
        for i, leaf in enumerate(column):
            if inputs.setdefault(id(leaf), i) != i:
                return False  # read by two leaves: the sweep decides
    written: set[int] = set()
    roles: Callable[[int], int | None] | None = None
    for k, column in zip(positions, out_columns, strict=True):
        role: int | None = None
        for i, leaf in enumerate(column):
            key = id(leaf)
            if key in written:
                return False
            written.add(key)
            if key in inputs:
                if roles is None:
                    roles = own()
                role = roles(k) if role is None else role
                if role is None or columns[role][i] is not leaf:
                    return False
    return True


def _owned(column: Sequence[Any]) -> bool:
    """Whether every leaf is a NumPy array that owns its memory (the type asked once)."""
    return all(map(cpu_only, set(map(type, column)))) and all(x.base is None for x in column)


def _own_inputs(
    names: Sequence[str], program_for: Callable[[str], Program], params: Sequence[Any]
) -> Callable[[int], int | None]:
    """Per output of the program, the argument tree it may overwrite (in place), if any.

    Where the program's output registers are input registers (every
    convention: outputs ``("p", "b")`` for inputs ``("p", "g", "b")``), the
    output may overwrite the input of its register's name. A traced rule's
    outputs are temporaries: output 0 may overwrite the first tree (the
    parameters), output 1 the last tree other than ``grad`` (the velocity).
    Asked only when an output is exactly one of its leaf's inputs.
    """
    known: list[tuple[int | None, ...]] = []

    def own(k: int) -> int | None:
        if not known:
            program = program_for(dtype_name(params[0]))
            inputs, outputs = program.inputs, program.outputs
            if any(name in inputs for name in outputs if name is not None):
                known.append(tuple(inputs.index(n) if n in inputs else None for n in outputs))
            else:
                state = [t for t, name in enumerate(names) if t and name != "grad"]
                known.append((0, state[-1] if state else None))
        roles = known[0]
        return roles[k] if k < len(roles) else None

    return own


class _Span(NamedTuple):
    """One leaf's memory, for the sweep of :func:`_check_overlap`."""

    space: str
    lo: int
    hi: int
    exact: tuple[object, ...]
    output: bool
    tree: int  # the output's position in out, or the input's in the trees
    leaf: int  # the leaf's position in its tree


def _span(value: Any, output: bool, tree: int, leaf: int) -> _Span:
    where = extent(value)
    if where is None:  # no memory to read: the object itself
        return _Span("", id(value), id(value) + 1, ("id", id(value)), output, tree, leaf)
    return _Span(where.space, where.lo, where.hi, where.exact, output, tree, leaf)


def _check_overlap(
    outs: tuple[Sequence[int], Sequence[str], Sequence[Sequence[Any]]],
    inputs: tuple[Sequence[str], Sequence[Sequence[Any]]],
    paths: Sequence[Path],
    own_input: Callable[[int], int | None],
) -> None:
    """No output may share memory with another output or with an input,
    except exactly its own leaf's input of its own role (an in-place step).

    Leaves are computed one after another, so writing one leaf's result into
    memory another leaf reads (or writes) would change it first. Memory is
    compared by byte intervals (:func:`nagref._compat.extent`): "exactly" is
    the same start, shape, strides and dtype; any other intersection is
    refused, conservatively so for interleaved strided views. Arrays whose
    memory is unknown are compared by identity. The same leaf's other inputs
    may be that very memory too (``torch``'s buffer may be the parameter).
    The intervals are sorted and swept: the cost grows with the number of
    leaves, not of pairs, unless something is refused.
    """
    positions, _, out_columns = outs
    names, columns = inputs
    spans = [
        _span(leaf, False, t, i)
        for t, column in enumerate(columns)
        for i, leaf in enumerate(column)
    ]
    spans += [
        _span(leaf, True, k, i)
        for k, column in enumerate(out_columns)
        for i, leaf in enumerate(column)
    ]
    spans.sort(key=lambda s: (s.space, s.lo))

    def allowed(output: _Span, read: _Span) -> bool:
        """Whether ``output`` may overlap input ``read``: both exactly its own input."""
        if read.leaf != output.leaf or read.exact != output.exact:
            return False
        own = own_input(positions[output.tree])
        if own is None:
            return False
        return own == read.tree or _span(columns[own][output.leaf], False, own, 0).exact == (
            output.exact
        )

    # (output's position, leaf, kind, other's position, leaf): the first one is reported
    found: list[tuple[tuple[int, int, int, int, int], _Span, _Span]] = []

    def refuse(output: _Span, other: _Span) -> None:
        kind = 0 if other.output else 1 if other.leaf != output.leaf else 2
        key = (output.tree, output.leaf, kind, other.tree, other.leaf)
        found.append((key, output, other))

    live_in: list[tuple[int, int, _Span]] = []  # heaps by the end of each interval
    live_out: list[tuple[int, int, _Span]] = []
    space = None
    for n, span in enumerate(spans):
        if span.space != space:
            space, live_in, live_out = span.space, [], []
        for live in (live_out, live_in) if span.output else (live_out,):
            while live and live[0][0] <= span.lo:
                heapq.heappop(live)
        for _, _, other in live_out:
            if span.output:
                first, second = sorted((span, other), key=lambda s: (s.tree, s.leaf))
                refuse(second, first)
            elif not allowed(other, span):
                refuse(other, span)
        if span.output:
            for _, _, other in live_in:
                if not allowed(span, other):
                    refuse(span, other)
            heapq.heappush(live_out, (span.hi, n, span))
        else:
            heapq.heappush(live_in, (span.hi, n, span))
    if found:
        _, output, other = min(found, key=lambda problem: problem[0])
        raise ValueError(
            _message(output, other, outs=outs[:2], trees=names, paths=paths, own_input=own_input)
        )


def _message(
    output: _Span,
    other: _Span,
    *,
    outs: tuple[Sequence[int], Sequence[str]],
    trees: Sequence[str],
    paths: Sequence[Path],
    own_input: Callable[[int], int | None],
) -> str:
    """Why ``output`` may not share memory with ``other``, naming both."""
    positions, out_names = outs
    this = path_name(out_names[output.tree], paths[output.leaf])
    exact = output.exact == other.exact
    if other.output:
        that = path_name(out_names[other.tree], paths[other.leaf])
        if exact:
            return f"{this} is the same array as {that}: the outputs must be distinct arrays"
        return f"{this} overlaps {that} in memory: the outputs must not share memory"
    that = path_name(trees[other.tree], paths[other.leaf])
    if other.leaf != output.leaf:
        if exact:
            return (
                f"{this} is the same array as the input {that} of another leaf: an output "
                "may be its own leaf's input (an in-place step), not another's"
            )
        return (
            f"{this} overlaps the input {that} of another leaf in memory: an output may "
            "be exactly its own leaf's input (an in-place step), and share no other memory"
        )
    own = own_input(positions[output.tree])
    if own is None:
        return (
            f"{this} shares memory with the input {that}: this output replaces no input, "
            "so it must not share memory with one"
        )
    if exact:
        mine = path_name(trees[own], paths[output.leaf])
        return (
            f"{this} is the same array as the input {that}: an output may be written "
            f"over its own input ({mine}) only"
        )
    return (
        f"{this} overlaps the input {that} in memory without being exactly it (the same "
        "start, shape, strides and dtype): an in-place output must view the very "
        "elements it replaces"
    )
