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
from .._compat import array_namespace, device, named_dtype, to_device
from .._dtypes import TABLE, host_via, round_to
from .._typing import Namespace
from .fma import round_to_odd_float32
from .ir import COMPUTE, HOST, OPMATH, STORAGE, Hyper, Rounding

__all__ = ["chain", "check_libraries", "constants", "resolve"]

#: Dtypes narrower than float32, which some backends reach from float64 through float32.
_NARROW = frozenset(
    name for name, row in TABLE.items() if row.precision < TABLE["float32"].precision
)


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
    return {
        name: _cast(xp, hyper, chain(hyper.via, rounding, storage), first, where)
        for name, hyper in hypers.items()
    }


def chain(via: tuple[str, ...], rounding: Rounding, storage: str) -> list[str]:
    """A cast chain's dtype names for leaves of dtype ``storage`` (see :class:`~.ir.Hyper`)."""
    row = TABLE.get(storage)  # None for a non-native byte order ('>f4')
    named = {
        STORAGE: storage,
        COMPUTE: rounding.compute.get(storage, storage),
        OPMATH: storage if row is None else row.opmath,
        HOST: host_via(storage) or storage,
    }
    return [named.get(d, d) for d in via]


def resolve(xp: Namespace, name: str, first: Any) -> Any:
    """The dtype object of ``xp`` named ``name`` (the leaf's own, where it is that one).

    A namespace may store a dtype it does not name: Dask holds float16
    arrays but ``array_api_compat.dask.array`` has no ``float16``.
    """
    if dtype_name(first) == name:
        return first.dtype
    return named_dtype(xp, name)


def _cast(xp: Namespace, hyper: Hyper, via: list[str], first: Any, where: Any) -> Any:
    dtypes = [resolve(xp, name, first) for name in via]
    if isinstance(hyper.value, float):
        # rounded along the chain here, so that the backend's own conversion
        # is exact: PyTorch (c10's Half(double)) converts a Python float to
        # float16 through float32, rounding twice
        value = hyper.value
        for name in via:
            value = round_to(value, name)
        return xp.asarray(value, dtype=dtypes[-1], device=where)
    value = hyper.value
    for name, dtype in zip(via, dtypes, strict=True):
        if value.dtype != dtype:
            if name in _NARROW and dtype_name(value) == "float64":
                # PyTorch and XLA convert float64 to float16 through float32,
                # rounding twice; rounding to odd in float32 first leaves the
                # second rounding the only one (Boldo and Melquiond 2008)
                value = round_to_odd_float32(xp, value)
            value = xp.astype(value, dtype)
    if where is not None and device(value) != where:
        value = to_device(value, where)
    return value
