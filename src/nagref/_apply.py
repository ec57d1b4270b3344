"""Run an update over matching pytrees: the machinery every rule shares.

Both entry points flatten the tree arguments against the parameters'
structure, validate every leaf (:mod:`nagref._checks`) and rebuild the
parameters' structure for each output.

* :func:`apply_program` runs a :class:`~nagref._recipe.Program` (a canonical
  rule's traced arithmetic, or a framework convention's recipe) through the
  recipe engine (:func:`nagref._recipe.run`), which hands whole columns of
  leaves to a backend's fast path where one is registered.
* :func:`apply` calls a plain leaf function on each set of leaves (the
  published formulations and the conversions between them).

Hyperparameters are always converted explicitly, to a 0-d array of each
leaf's dtype on its device. Relying on an operator's handling of a Python
float is not portable: ``torch`` multiplies a float16 tensor by a Python
float in float32 (the scalar is not rounded to float16), while NumPy rounds
it to float16 first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ._checks import check_leaves, describe, first_of_each_type
from ._compat import array_namespace, device, is_jax_array, to_device
from ._recipe import Program, per_dtype, run
from ._tree import Path, Structure, flatten, flatten_like, path_name, unflatten
from ._typing import Hyperparameter, Namespace

__all__ = ["apply", "apply_program"]

LeafFn = Callable[..., tuple[Any, ...]]


def apply(
    leaf_fn: LeafFn,
    trees: Mapping[str, object],
    hyperparameters: Mapping[str, Hyperparameter],
    n_outputs: int,
) -> tuple[Any, ...]:
    """Apply ``leaf_fn(*leaves, **hyperparameters)`` leaf by leaf.

    Args:
        leaf_fn: returns ``n_outputs`` arrays for one set of leaves.
        trees: argument name -> pytree; the first entry gives the structure.
        hyperparameters: name -> validated hyperparameter (a Python float or
            a 0-d array), passed as a 0-d array of each leaf's dtype.
        n_outputs: how many trees to return.

    Returns:
        ``n_outputs`` pytrees with the first tree's structure.
    """
    flat = _flat(trees, None, n_outputs)
    outputs: list[list[Any]] = [[] for _ in range(n_outputs)]
    if flat.xp is not None:
        cast = _HyperparameterCast(flat.xp, hyperparameters, flat.first_name, flat.columns[0][0])
        for leaves in zip(*flat.columns, strict=True):
            results = leaf_fn(*leaves, **cast.like(leaves[0]))
            for column, result in zip(outputs, results, strict=True):
                column.append(_as_array(flat.xp, result, leaves[0]))
    return tuple(unflatten(flat.structure, column) for column in outputs)


def apply_program(
    program: Program | Callable[[str], Program],
    trees: Mapping[str, object],
    hyperparameters: Mapping[str, Hyperparameter],
    n_outputs: int,
    *,
    out: Sequence[object] | None = None,
) -> tuple[Any, ...]:
    """Run ``program`` on every set of leaves, in one call of the recipe engine.

    Args:
        program: the program, or a function giving it for a storage dtype
            (by name), which may raise for a dtype it refuses. Its inputs
            are filled by ``trees``, in order.
        trees: argument name -> pytree; the first entry gives the structure.
        hyperparameters: name -> validated hyperparameter (a Python float or
            a 0-d array): constant registers, as 0-d arrays of each leaf's
            dtype. A convention's cast chains are in its program instead.
        n_outputs: how many trees to return (the program's outputs).
        out: None for new arrays, or a tuple of ``n_outputs`` entries, each a
            pytree of arrays to write that output into (the parameters'
            structure, shapes and dtypes) or None for new arrays.

    Returns:
        ``n_outputs`` pytrees with the first tree's structure.
    """
    flat = _flat(trees, out, n_outputs)
    xp = flat.xp
    if xp is None:
        return tuple(unflatten(flat.structure, []) for _ in range(n_outputs))
    cast = _HyperparameterCast(xp, hyperparameters, flat.first_name, flat.columns[0][0])
    program_for = per_dtype(program)
    results = run(
        xp,
        program_for,
        flat.columns,
        flat.out,
        arrays=cast.like if hyperparameters else None,
    )
    params = flat.columns[0]
    scalars = [i for i, leaf in enumerate(params) if len(leaf.shape) == 0]
    for column in results:
        for i in scalars:
            column[i] = _as_array(xp, column[i], params[i])
    return tuple(unflatten(flat.structure, column) for column in results)


class _Flat(NamedTuple):
    """The trees' leaves, validated, and the caller's output arrays."""

    structure: Structure
    first_name: str
    columns: list[list[Any]]  # per tree argument, its leaves
    out: list[list[Any] | None]  # per output, the caller's arrays, or None
    xp: Namespace | None  # None when the trees have no leaves


def _flat(trees: Mapping[str, object], out: Sequence[object] | None, n_outputs: int) -> _Flat:
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
    """Output arrays must be writable, no array may receive two outputs, and an
    output may be an input of its own leaf (an in-place step) but not of another.

    Leaves are computed one after another, so writing one leaf's result into
    another leaf's input would change that input before it is read.
    """
    reader: dict[int, int] = {}  # an input array -> the leaf that reads it (-1: several)
    for column in inputs[1]:
        for index, leaf in enumerate(column):
            if reader.setdefault(id(leaf), index) != index:
                reader[id(leaf)] = -1
    seen: dict[int, tuple[str, int]] = {}
    for name, column in zip(names, columns, strict=True):
        for index, leaf in first_of_each_type(column):
            if is_jax_array(leaf):
                raise TypeError(
                    f"{path_name(name, paths[index])} is a JAX array, which cannot be "
                    "written in place; call without out= (under jax.jit, donate_argnums "
                    "reuses the buffers)"
                )
        for index, leaf in enumerate(column):
            if id(leaf) in seen:
                other, where = seen[id(leaf)]
                raise ValueError(
                    f"{path_name(name, paths[index])} is the same array as "
                    f"{path_name(other, paths[where])}: the outputs must be distinct arrays"
                )
            seen[id(leaf)] = (name, index)
            if reader.get(id(leaf), index) != index:
                other, where = next(
                    (n, i)
                    for n, c in zip(*inputs, strict=True)
                    for i, x in enumerate(c)
                    if x is leaf and i != index
                )
                raise ValueError(
                    f"{path_name(name, paths[index])} is the same array as the input "
                    f"{path_name(other, paths[where])} of another leaf: an output may be its "
                    "own leaf's input (an in-place step), not another's"
                )
            # duck-typed: NumPy (and CuPy) arrays say whether they may be written
            if not getattr(getattr(leaf, "flags", None), "writeable", True):
                raise ValueError(
                    f"{path_name(name, paths[index])} is read-only: an output must be writable"
                )


def _as_array(xp: Namespace, result: Any, like: Any) -> Any:
    # NumPy arithmetic on 0-d arrays returns NumPy scalars; give back arrays.
    if len(like.shape) == 0:
        return xp.asarray(result)
    return result


class _HyperparameterCast:
    """Hyperparameters as 0-d arrays of one leaf's dtype and device, cached."""

    def __init__(
        self,
        xp: Namespace,
        hyperparameters: Mapping[str, Hyperparameter],
        first_name: str,
        first_leaf: object,
    ) -> None:
        self._xp = xp
        self._values = dict(hyperparameters)
        self._cache: list[tuple[Any, Any, dict[str, Any]]] = []
        for name, value in self._values.items():
            if not isinstance(value, float):
                try:
                    array_namespace(value, first_leaf)
                except TypeError:
                    raise TypeError(
                        f"{name} ({describe(value)}) and {first_name} "
                        f"({describe(first_leaf)}) come from different array libraries"
                    ) from None

    def like(self, leaf: Any) -> dict[str, Any]:
        dtype, where = leaf.dtype, device(leaf)
        for cached_dtype, cached_device, arrays in self._cache:
            if cached_dtype == dtype and cached_device == where:
                return arrays
        arrays = {name: self._convert(value, dtype, where) for name, value in self._values.items()}
        self._cache.append((dtype, where, arrays))
        return arrays

    def _convert(self, value: Hyperparameter, dtype: Any, where: Any) -> Any:
        xp = self._xp
        if isinstance(value, float):
            return xp.asarray(value, dtype=dtype, device=where)
        array = xp.astype(value, dtype)
        if where is not None and device(array) != where:
            array = to_device(array, where)
        return array
