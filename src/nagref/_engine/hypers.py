"""Hyperparameters as constant registers: each :class:`~.ir.Hyper` cast along its chain.

One channel for every program: a canonical rule's ``lr`` (a Python float or
a 0-d array, for example a schedule's value traced under ``jax.jit``), a
traced literal, and a convention's cast chain (``momentum``: double to float
to half) all become 0-d arrays here, once per batch, on the leaves' device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._checks import describe, dtype_name
from .._compat import array_namespace, device, to_device
from .._dtypes import TABLE
from .._typing import Namespace
from .ir import COMPUTE, OPMATH, STORAGE, Hyper, Rounding

__all__ = ["check_libraries", "constants", "resolve"]


def check_libraries(hypers: Mapping[str, Hyper], first_name: str, first_leaf: object) -> None:
    """A hyperparameter given as an array must come from the leaves' library."""
    for name, hyper in hypers.items():
        if isinstance(hyper.value, float):
            continue
        try:
            array_namespace(hyper.value, first_leaf)
        except TypeError:
            raise TypeError(
                f"{name} ({describe(hyper.value)}) and {first_name} "
                f"({describe(first_leaf)}) come from different array libraries"
            ) from None


def constants(
    xp: Namespace, hypers: Mapping[str, Hyper], rounding: Rounding, first: Any, where: Any
) -> dict[str, Any]:
    """Each hyperparameter as a 0-d array for leaves like ``first`` on ``where``."""
    storage = dtype_name(first)
    row = TABLE.get(storage)  # None for a non-native byte order ('>f4')
    named = {
        STORAGE: storage,
        COMPUTE: rounding.compute.get(storage, storage),
        OPMATH: storage if row is None else row.opmath,
    }
    return {
        name: _cast(xp, hyper, [named.get(d, d) for d in hyper.via], first, where)
        for name, hyper in hypers.items()
    }


def resolve(xp: Namespace, name: str, first: Any) -> Any:
    """The dtype object of ``xp`` named ``name`` (the leaf's own, where it is that one).

    A namespace may store a dtype it does not name: Dask holds float16
    arrays but ``array_api_compat.dask.array`` has no ``float16``.
    """
    if dtype_name(first) == name:
        return first.dtype
    return getattr(xp, name)


def _cast(xp: Namespace, hyper: Hyper, via: list[str], first: Any, where: Any) -> Any:
    dtypes = [resolve(xp, name, first) for name in via]
    if isinstance(hyper.value, float):
        value = xp.asarray(hyper.value, dtype=dtypes[0], device=where)
    else:
        value = xp.astype(hyper.value, dtypes[0])
    for dtype in dtypes[1:]:
        if value.dtype != dtype:
            value = xp.astype(value, dtype)
    if not isinstance(hyper.value, float) and where is not None and device(value) != where:
        value = to_device(value, where)
    return value
