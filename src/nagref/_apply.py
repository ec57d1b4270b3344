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
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextvars import ContextVar, Token
from typing import Any, NamedTuple

from . import fastpaths  # noqa: F401  (registers nagref's kernels with the engine)
from ._checks import NAMES_ACCEPTED, check_leaves, describe, dtype_name
from ._engine.execute import run
from ._engine.fingerprint import fingerprint, same
from ._engine.hypers import check_libraries
from ._engine.ir import Program, per_dtype
from ._outputs import check_outputs
from ._tree import Structure, flatten, flatten_like, path_name, unflatten
from ._typing import Namespace

__all__ = ["Captured", "Flat", "apply", "capture", "check", "sharing"]


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


class _Shared(NamedTuple):
    """One call's result under :func:`sharing`: what it ran, on which leaves, and what it
    gave, all held weakly: sharing keeps no array alive that its owners have let go (a
    replay drops a candidate's arrays the moment it leaves the recording)."""

    prints: list[Hashable | None]
    structure: Structure
    inputs: list[list[weakref.ref[Any]]]  # a dead one: no later array can be it
    outputs: list[list[weakref.ref[Any]] | None]


def _weak(leaves: Sequence[Any]) -> list[weakref.ref[Any]] | None:
    """Weak references to ``leaves``; None where some array type takes none."""
    try:
        return [weakref.ref(leaf) for leaf in leaves]
    except TypeError:
        return None


_SHARED: ContextVar[list[_Shared] | None] = ContextVar("nagref_shared", default=None)


class sharing:  # noqa: N801  (used as a function: ``with sharing(): ...``)
    """Within this context a call whose program and input leaves (the very same arrays)
    are another call's gets that call's results, the same arrays, without computing.

    Sound because every function here is pure and the engine deterministic: the
    same recipe, rounding and constants on the same arrays give the same bits.
    The audit's replay uses it, where candidates whose recipes coincide (Keras
    on TensorFlow and on NumPy, tf-keras's legacy SGD, ...) advance together.
    The results are shared, so nothing under the context may write into them.
    One object may be entered again: its calls' results stay shared, and are
    let go with it.
    """

    def __init__(self) -> None:
        self._shared: list[_Shared] = []
        self._tokens: list[Token[list[_Shared] | None]] = []

    def __enter__(self) -> None:
        self._tokens.append(_SHARED.set(self._shared))

    def __exit__(self, *exc: object) -> None:
        _SHARED.reset(self._tokens.pop())


def _fingerprints(
    program_for: Callable[[str], Program], flat: Flat
) -> list[Hashable | None] | None:
    """The call's computation per dtype group (:func:`fingerprint`); None if a dtype
    is refused (the call raises it again, as it would have)."""
    firsts = {dtype_name(leaf): leaf for leaf in reversed(flat.columns[0])}
    assert flat.xp is not None
    try:
        return [fingerprint(flat.xp, program_for(name), first) for name, first in firsts.items()]
    except Exception:
        return None


def _find_shared(
    shared: list[_Shared], prints: list[Hashable | None], flat: Flat
) -> tuple[Any, ...] | None:
    """The results of an earlier call that ran the same computation on these very leaves,
    where they are all still alive."""
    for entry in shared:
        if (
            entry.structure == flat.structure
            and same(entry.prints, prints)
            and len(entry.inputs) == len(flat.columns)
            and all(
                len(x) == len(y) and all(ref() is leaf for ref, leaf in zip(x, y, strict=True))
                for x, y in zip(entry.inputs, flat.columns, strict=True)
            )
        ):
            outputs = [None if c is None else [ref() for ref in c] for c in entry.outputs]
            if any(c is not None and any(leaf is None for leaf in c) for c in outputs):
                continue  # what it gave is gone: computed again (a later entry may hold it)
            return tuple(None if c is None else unflatten(flat.structure, c) for c in outputs)
    return None


def apply(
    program: Program | Callable[[str], Program],
    trees: Mapping[str, object],
    *,
    out: Sequence[object] | None = None,
    n_outputs: int | None = None,
    dtypes: tuple[tuple[str, ...], str] | None = None,
    fixed: Mapping[str, str] | None = None,
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
        dtypes: the storage dtypes accepted and who accepts them (see
            :func:`nagref._checks.check_leaves`); by default all of nagref's.
        fixed: trees whose leaves have a dtype of their own, not the
            parameters' (by tree name; an output by its position, ``"out[1]"``):
            the program stores those outputs in that dtype (``Program.stored``).

    Returns:
        One pytree per output, with the first tree's structure, or None for
        an output the program does not produce.
    """
    if n_outputs is None:
        assert isinstance(program, Program), "n_outputs is needed with a program per dtype"
        n_outputs = len(program.outputs)
    program_for = per_dtype(program)
    flat = _flat(trees, out, n_outputs, program_for, dtypes, fixed=fixed)
    xp = flat.xp
    captured = _CAPTURED.get()
    if captured is not None:
        captured.append(Captured(tuple(trees), program_for))
    if xp is None:  # no leaves: the outputs' structure, as float32 leaves would give it
        names = program_for("float32").outputs
        return tuple(None if name is None else unflatten(flat.structure, []) for name in names)
    shared = _SHARED.get() if out is None else None
    prints = None if shared is None or xp is None else _fingerprints(program_for, flat)
    if shared is not None and prints is not None:
        found = _find_shared(shared, prints, flat)
        if found is not None:
            return found
    first_leaf = flat.columns[0][0]

    def checked(dtype: str) -> Program:
        prepared = program_for(dtype)
        check_libraries(prepared.hypers, flat.first_name, first_leaf)
        return prepared

    computed = run(xp, checked, flat.columns, flat.out)
    params = flat.columns[0]
    scalars = [i for i, leaf in enumerate(params) if len(leaf.shape) == 0]
    trees_out: list[Any] = []
    for column in computed:
        if column is None:
            trees_out.append(None)
            continue
        for i in scalars:
            # NumPy arithmetic on 0-d arrays returns NumPy scalars; give back arrays
            column[i] = xp.asarray(column[i])
        trees_out.append(unflatten(flat.structure, column))
    if shared is not None and prints is not None and all(p is not None for p in prints):
        inputs = [_weak(column) for column in flat.columns]
        outputs = [None if column is None else _weak(column) for column in computed]
        if all(i is not None for i in inputs) and all(
            o is not None for o, c in zip(outputs, computed, strict=True) if c is not None
        ):
            shared.append(_Shared(prints, flat.structure, inputs, outputs))  # type: ignore[arg-type]
    return tuple(trees_out)


def check(
    program: Program | Callable[[str], Program],
    trees: Mapping[str, object],
    *,
    out: Sequence[object] | None = None,
    n_outputs: int,
    dtypes: tuple[tuple[str, ...], str] | None = None,
    fixed: Mapping[str, str] | None = None,
) -> Flat:
    """Check the trees and outputs as :func:`apply` does, computing and writing nothing.

    Returns the trees' leaves and the caller's output arrays, flattened.
    """
    return _flat(trees, out, n_outputs, per_dtype(program), dtypes, fixed=fixed)


class Flat(NamedTuple):
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
    dtypes: tuple[tuple[str, ...], str] | None,
    *,
    fixed: Mapping[str, str] | None = None,
) -> Flat:
    """Flatten every tree against the first; check the leaves and the outputs."""
    names = list(trees)
    first, *others = trees.values()
    leaves_with_paths, structure = flatten(first, names[0])
    paths = [path for path, _ in leaves_with_paths]
    columns = [[leaf for _, leaf in leaves_with_paths]]
    columns += [
        flatten_like(structure, tree, name) for name, tree in zip(names[1:], others, strict=True)
    ]
    donated = [] if out is None else _donated(out, n_outputs)
    # one output is the caller's out= itself (sgd, lookahead); several, a tuple of them
    out_names = ["out"] if n_outputs == 1 and donated else [f"out[{k}]" for k in donated]
    out_columns = [
        flatten_like(structure, out[k], name)  # type: ignore[index]
        for k, name in zip(donated, out_names, strict=True)
    ]
    named = (names + out_names, columns + out_columns, paths)
    xp = check_leaves(*named, NAMES_ACCEPTED if dtypes is None else dtypes, fixed)
    if out_columns:
        check_outputs((donated, out_names, out_columns), (names, columns), paths, program_for)
    given: list[list[Any] | None] = [None] * n_outputs
    for k, column in zip(donated, out_columns, strict=True):
        given[k] = column
    first_name = path_name(names[0], paths[0]) if paths else names[0]
    return Flat(structure, first_name, columns, given, xp)


def _donated(out: Sequence[object], n_outputs: int) -> list[int]:
    """The positions of the output pytrees the caller gave (not None)."""
    if not isinstance(out, (tuple, list)) or len(out) != n_outputs:
        raise ValueError(f"out must be a tuple of {n_outputs} pytrees, got {describe(out)}")
    return [k for k, tree in enumerate(out) if tree is not None]
