"""The single place where nagref touches ``array_api_compat``.

Everything else imports these names from here, so that the dependency (and
any future vendoring of it) has one seam.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import (
    array_namespace,
    is_array_api_obj,
    is_dask_array,
    is_jax_array,
    is_lazy_array,
    to_device,
)
from array_api_compat import device as _device

_NDARRAY = ("numpy", "ndarray")


def cpu_only(kind: type) -> bool:
    """Whether every array of type ``kind`` is on the CPU (``numpy.ndarray``)."""
    return (kind.__module__, kind.__name__) == _NDARRAY


def device(x: Any) -> Any:
    """``array_api_compat.device``; a NumPy array's device ("cpu") is known at once.

    The shortcut matters when a model has hundreds of tensors: the general
    lookup asks each array library in turn.
    """
    if cpu_only(type(x)):
        return "cpu"
    return _device(x)


__all__ = [
    "array_namespace",
    "cpu_only",
    "device",
    "is_array_api_obj",
    "is_dask_array",
    "is_jax_array",
    "is_lazy_array",
    "to_device",
]
