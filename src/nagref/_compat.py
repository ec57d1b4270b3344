"""The single place where nagref touches ``array_api_compat``.

Everything else imports these names from here, so that the dependency (and
any future vendoring of it) has one seam.
"""

from __future__ import annotations

from array_api_compat import (
    array_namespace,
    device,
    is_array_api_obj,
    is_dask_array,
    is_jax_array,
    is_lazy_array,
    to_device,
)

__all__ = [
    "array_namespace",
    "device",
    "is_array_api_obj",
    "is_dask_array",
    "is_jax_array",
    "is_lazy_array",
    "to_device",
]
