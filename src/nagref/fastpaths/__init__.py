"""Backend kernels behind nagref's one fast-path seam (:mod:`nagref._fastpath`).

Each kernel evaluates the same recipes as the generic path and gives the
same bits, faster. The seam picks one by array namespace; nothing else calls
them. :func:`disabled` runs the generic path only; :func:`available` says
which kernels load here.
"""

from __future__ import annotations

import importlib

from .._fastpath import disabled

__all__ = ["available", "disabled"]


def available() -> dict[str, str | None]:
    """Each kernel module, mapped to None if it loads or to why it does not."""
    status: dict[str, str | None] = {}
    for name in ("numpy", "cupy"):
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ImportError as error:
            status[name] = str(error)
        else:
            status[name] = None
    return status
