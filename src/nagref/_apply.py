"""Run a leaf function over matching pytrees: the machinery every rule shares.

:func:`apply` flattens the tree arguments against the parameters' structure,
validates every leaf (:mod:`nagref._checks`), turns each hyperparameter into
a 0-d array of the leaf's dtype on the leaf's device, runs the leaf function
on each set of leaves, and rebuilds the parameters' structure for each
output. A canonical rule's leaf function is traced into a recipe
(:mod:`nagref._trace`); every leaf's recipe is planned
(:func:`nagref._recipe.plan`) and all of them run together
(:func:`nagref._recipe.run`), so a backend's fast path can batch them.

Hyperparameters are always converted explicitly. Relying on an operator's
handling of a Python float is not portable: ``torch`` multiplies a float16
tensor by a Python float in float32 (the scalar is not rounded to float16),
while NumPy rounds it to float16 first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._checks import check_leaves, describe
from ._compat import array_namespace, device, is_jax_array, to_device
from ._recipe import Job, Rounding, plan, run
from ._trace import trace
from ._tree import flatten, flatten_like, path_name, unflatten
from ._typing import Hyperparameter, Namespace

__all__ = ["apply"]

LeafFn = Callable[..., tuple[Any, ...]]

#: The canonical rules' rounding: every operation rounded once to the storage dtype.
CANONICAL = Rounding(contract=False)


def apply(
    leaf_fn: LeafFn,
    trees: Mapping[str, object],
    hyperparameters: Mapping[str, Hyperparameter],
    n_outputs: int,
    *,
    traced: bool = False,
    out: Sequence[object] | None = None,
) -> tuple[Any, ...]:
    """Apply ``leaf_fn(*leaves, **hyperparameters)`` leaf by leaf.

    Args:
        leaf_fn: returns ``n_outputs`` arrays for one set of leaves, or a
            :class:`~nagref._recipe.Job` that computes them.
        trees: argument name -> pytree; the first entry gives the structure.
        hyperparameters: name -> validated hyperparameter (a Python float or
            a 0-d array).
        n_outputs: how many trees to return.
        traced: ``leaf_fn`` is a canonical rule's arithmetic: trace it into a
            recipe and run that under :data:`CANONICAL` rounding.
        out: None for new arrays, or a tuple of ``n_outputs`` entries, each a
            pytree of arrays to write that output into (the parameters'
            structure, shapes and dtypes) or None for new arrays. A leaf
            function that is not traced then receives ``out=`` (one array or
            None per output).

    Returns:
        ``n_outputs`` pytrees with the first tree's structure.
    """
    names = list(trees)
    first, *others = trees.values()
    leaves_with_paths, structure = flatten(first)
    paths = [path_name("", path) for path, _ in leaves_with_paths]
    columns = [[leaf for _, leaf in leaves_with_paths]]
    columns += [
        flatten_like(structure, tree, name) for name, tree in zip(names[1:], others, strict=True)
    ]
    donated = [] if out is None else _donated(out, n_outputs)
    out_names = [f"out[{k}]" for k in donated]
    columns += [
        flatten_like(structure, out[k], name)  # type: ignore[index]
        for k, name in zip(donated, out_names, strict=True)
    ]
    xp = check_leaves(names + out_names, columns, paths)
    _check_out(out_names, columns[len(names) :], paths)
    outputs: list[list[Any]] = [[] for _ in range(n_outputs)]
    if xp is not None:
        cast = _HyperparameterCast(xp, hyperparameters, names[0] + paths[0], columns[0][0])
        recipe = trace(leaf_fn) if traced else None
        rows: list[Any] = []
        for index, leaves in enumerate(zip(*columns[: len(names)], strict=True)):
            targets: list[Any] | None = None
            if out is not None:
                targets = [None] * n_outputs
                for k, column in zip(donated, columns[len(names) :], strict=True):
                    targets[k] = column[index]
            if recipe is not None:
                rows.append(
                    plan(
                        xp,
                        recipe.recipe,
                        CANONICAL,
                        dict(zip(recipe.inputs, leaves, strict=True)),
                        hypers=cast.like(leaves[0]),
                        outputs=recipe.outputs,
                        out=targets,
                    )
                )
            elif targets is not None:
                rows.append(leaf_fn(*leaves, **cast.like(leaves[0]), out=targets))
            else:
                rows.append(leaf_fn(*leaves, **cast.like(leaves[0])))
        # leaf functions that return a Job are run together, so that a
        # backend kernel can batch them
        jobs = [row for row in rows if isinstance(row, Job)]
        ran = iter(run(xp, jobs))
        for leaves, row in zip(zip(*columns[: len(names)], strict=True), rows, strict=True):
            results = next(ran) if isinstance(row, Job) else row
            for column, result in zip(outputs, results, strict=True):
                column.append(_as_array(xp, result, leaves[0]))
    return tuple(unflatten(structure, column) for column in outputs)


def _donated(out: Sequence[object], n_outputs: int) -> list[int]:
    """The positions of the output pytrees the caller gave (not None)."""
    if not isinstance(out, (tuple, list)) or len(out) != n_outputs:
        raise ValueError(f"out must be a tuple of {n_outputs} pytrees, got {describe(out)}")
    return [k for k, tree in enumerate(out) if tree is not None]


def _check_out(
    names: Sequence[str], columns: Sequence[Sequence[Any]], paths: Sequence[str]
) -> None:
    """Output arrays must be writable, and no array may receive two outputs."""
    seen: dict[int, str] = {}
    for name, column in zip(names, columns, strict=True):
        for path, leaf in zip(paths, column, strict=True):
            if is_jax_array(leaf):
                raise TypeError(
                    f"{name}{path} is a JAX array, which cannot be written in place; "
                    "call without out= (under jax.jit, donate_argnums reuses the buffers)"
                )
            if id(leaf) in seen:
                raise ValueError(
                    f"{name}{path} is the same array as {seen[id(leaf)]}: "
                    "the outputs must be distinct arrays"
                )
            seen[id(leaf)] = name + path


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
