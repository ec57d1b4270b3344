"""Run a program over matching pytrees: the front door of every rule, formulation and convention.

:func:`apply` flattens the tree arguments against the parameters'
structure, validates every leaf (:mod:`nagref._checks`) and the caller's
output arrays, runs the program through the engine
(:func:`nagref._engine.execute.run`), and rebuilds the parameters'
structure for each output.

Hyperparameters reach the engine one way: as :class:`~nagref._engine.ir.Hyper`
constants of the program, converted explicitly to 0-d arrays of each leaf's
dtype on its device. Relying on an operator's handling of a Python float is
not portable: ``torch`` multiplies a float16 tensor by a Python float in
float32 (the scalar is not rounded to float16), while NumPy rounds it to
float16 first.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple

from . import fastpaths  # noqa: F401  (registers nagref's kernels with the engine)
from ._checks import check_leaves, describe, dtype_name, first_of_each_type
from ._compat import cpu_only, extent, is_jax_array
from ._engine.execute import run
from ._engine.hypers import check_libraries
from ._engine.ir import Program, per_dtype
from ._tree import Path, Structure, flatten, flatten_like, path_name, unflatten
from ._typing import Namespace

__all__ = ["Captured", "apply", "capture"]


class Captured(NamedTuple):
    """A program that :func:`apply` ran, and the names of the trees that filled its inputs."""

    names: tuple[str, ...]
    program_for: Callable[[str], Program]


_CAPTURED: ContextVar[list[Captured] | None] = ContextVar("nagref_captured", default=None)


@contextlib.contextmanager
def capture() -> Iterator[list[Captured]]:
    """Within this context every :func:`apply` also records its program (``nagref explain``)."""
    captured: list[Captured] = []
    token = _CAPTURED.set(captured)
    try:
        yield captured
    finally:
        _CAPTURED.reset(token)


def apply(
    program: Program | Callable[[str], Program],
    trees: Mapping[str, object],
    *,
    out: Sequence[object] | None = None,
    n_outputs: int | None = None,
) -> tuple[Any, ...]:
    """Run ``program`` on every set of leaves, in one call of the engine.

    Args:
        program: the program, or a function giving it for a storage dtype
            (by name), which may raise for a dtype it refuses. Its inputs
            are filled by ``trees``, in order.
        trees: argument name -> pytree; the first entry gives the structure.
        out: None for new arrays, or a tuple with one entry per output, each
            a pytree of arrays to write that output into (the parameters'
            structure, shapes and dtypes) or None for new arrays.
        n_outputs: how many outputs the program has (read from ``program``
            when it is one program).

    Returns:
        One pytree per output, with the first tree's structure, or None for
        an output the program does not produce.
    """
    if n_outputs is None:
        assert isinstance(program, Program), "n_outputs is needed with a program per dtype"
        n_outputs = len(program.outputs)
    program_for = per_dtype(program)
    flat = _flat(trees, out, n_outputs, program_for)
    xp = flat.xp
    captured = _CAPTURED.get()
    if captured is not None:
        captured.append(Captured(tuple(trees), program_for))
    if xp is None:  # no leaves: the outputs' structure, as float32 leaves would give it
        names = program_for("float32").outputs
        return tuple(None if name is None else unflatten(flat.structure, []) for name in names)
    first_leaf = flat.columns[0][0]

    def checked(dtype: str) -> Program:
        prepared = program_for(dtype)
        check_libraries(prepared.hypers, flat.first_name, first_leaf)
        return prepared

    results = run(xp, checked, flat.columns, flat.out)
    params = flat.columns[0]
    scalars = [i for i, leaf in enumerate(params) if len(leaf.shape) == 0]
    trees_out: list[Any] = []
    for column in results:
        if column is None:
            trees_out.append(None)
            continue
        for i in scalars:
            # NumPy arithmetic on 0-d arrays returns NumPy scalars; give back arrays
            column[i] = xp.asarray(column[i])
        trees_out.append(unflatten(flat.structure, column))
    return tuple(trees_out)


class _Flat(NamedTuple):
    """The trees' leaves, validated, and the caller's output arrays."""

    structure: Structure
    first_name: str
    columns: list[list[Any]]  # per tree argument, its leaves
    out: list[list[Any] | None]  # per output, the caller's arrays, or None
    xp: Namespace | None  # None when the trees have no leaves


def _flat(
    trees: Mapping[str, object],
    out: Sequence[object] | None,
    n_outputs: int,
    program_for: Callable[[str], Program],
) -> _Flat:
    """Flatten every tree against the first; check the leaves and the outputs."""
    names = list(trees)
    first, *others = trees.values()
    leaves_with_paths, structure = flatten(first)
    paths = [path for path, _ in leaves_with_paths]
    columns = [[leaf for _, leaf in leaves_with_paths]]
    columns += [
        flatten_like(structure, tree, name) for name, tree in zip(names[1:], others, strict=True)
    ]
    donated = [] if out is None else _donated(out, n_outputs)
    out_names = [f"out[{k}]" for k in donated]
    out_columns = [
        flatten_like(structure, out[k], name)  # type: ignore[index]
        for k, name in zip(donated, out_names, strict=True)
    ]
    xp = check_leaves(names + out_names, columns + out_columns, paths)
    if out_columns:
        _check_out(out_names, out_columns, paths, inputs=(names, columns))
        own = functools.partial(_own_inputs, names, program_for, columns[0])
        if not _owners_in_their_own_places(donated, out_columns, columns, own):
            _check_overlap((donated, out_columns), (names, columns), paths, own())
    given: list[list[Any] | None] = [None] * n_outputs
    for k, column in zip(donated, out_columns, strict=True):
        given[k] = column
    first_name = path_name(names[0], paths[0]) if paths else names[0]
    return _Flat(structure, first_name, columns, given, xp)


def _donated(out: Sequence[object], n_outputs: int) -> list[int]:
    """The positions of the output pytrees the caller gave (not None)."""
    if not isinstance(out, (tuple, list)) or len(out) != n_outputs:
        raise ValueError(f"out must be a tuple of {n_outputs} pytrees, got {describe(out)}")
    return [k for k, tree in enumerate(out) if tree is not None]


def _check_out(
    names: Sequence[str],
    columns: Sequence[Sequence[Any]],
    paths: Sequence[Path],
    *,
    inputs: tuple[Sequence[str], Sequence[Sequence[Any]]],
) -> None:
    """Output arrays must be writable arrays of a library that writes in place.

    Whether they share memory with each other or with the inputs is
    :func:`_check_overlap`'s question.
    """
    del inputs  # the overlaps are _check_overlap's
    for name, column in zip(names, columns, strict=True):
        for index, leaf in first_of_each_type(column):
            if is_jax_array(leaf):
                raise TypeError(
                    f"{path_name(name, paths[index])} is a JAX array, which cannot be "
                    "written in place; call without out= (under jax.jit, donate_argnums "
                    "reuses the buffers)"
                )
        for index, leaf in enumerate(column):
            # duck-typed: NumPy (and CuPy) arrays say whether they may be written
            if not getattr(getattr(leaf, "flags", None), "writeable", True):
                raise ValueError(
                    f"{path_name(name, paths[index])} is read-only: an output must be writable"
                )


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
    inputs: dict[int, int] = {}  # an input array -> the one leaf that reads it
    for column in columns:
        for i, leaf in enumerate(column):
            if not (cpu_only(type(leaf)) and leaf.base is None):
                return False
            if inputs.setdefault(id(leaf), i) != i:
                return False  # read by two leaves: the sweep decides
    written: set[int] = set()
    roles: Callable[[int], int | None] | None = None
    for k, column in zip(positions, out_columns, strict=True):
        for i, leaf in enumerate(column):
            if not (cpu_only(type(leaf)) and leaf.base is None) or id(leaf) in written:
                return False
            written.add(id(leaf))
            if id(leaf) in inputs:
                roles = own() if roles is None else roles
                role = roles(k)
                if role is None or columns[role][i] is not leaf:
                    return False
    return True


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
    outs: tuple[Sequence[int], Sequence[Sequence[Any]]],
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
    positions, out_columns = outs
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
        raise ValueError(_message(output, other, (positions, names), paths, own_input))


def _message(
    output: _Span,
    other: _Span,
    names: tuple[Sequence[int], Sequence[str]],
    paths: Sequence[Path],
    own_input: Callable[[int], int | None],
) -> str:
    """Why ``output`` may not share memory with ``other``, naming both."""
    positions, trees = names
    this = path_name(f"out[{positions[output.tree]}]", paths[output.leaf])
    exact = output.exact == other.exact
    if other.output:
        that = path_name(f"out[{positions[other.tree]}]", paths[other.leaf])
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
