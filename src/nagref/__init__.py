"""nagref: the reference for how SGD, momentum and Nesterov (NAG) update parameters.

The rules are written once against the Python array API standard and run on
NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict. See :mod:`nagref.rules`
for the arithmetic contract, :mod:`nagref.formulations` for the published
forms, :mod:`nagref.convert` for the maps between them and the frameworks'
(:mod:`nagref.conventions`), :mod:`nagref.schedules` for momentum
schedules, and :func:`nagref.explain` for the exact operations of any of them.

``import nagref`` imports the rules only (no NumPy, no tools); every public
submodule (``nagref.conventions``, ``nagref.formulations``, ...) and the
tools (``nagref.audit``, ``nagref.explain``) load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._typing import Array, ArrayTree, Hyperparameter
from ._version import __version__
from .rules import init_velocity, lookahead, momentum, nag, sgd

if TYPE_CHECKING:
    from . import auditing, conventions, convert, fastpaths, formulations, schedules, vectors  # noqa: F401  (loaded on first access)
    from .auditing import AuditReport, audit
    from .explaining import explain

#: submodules that load on first attribute access
_SUBMODULES = {
    "auditing": "nagref.auditing",
    "conventions": "nagref.conventions",
    "convert": "nagref.convert",
    "fastpaths": "nagref.fastpaths",
    "formulations": "nagref.formulations",
    "schedules": "nagref.schedules",
    "vectors": "nagref.vectors",
}
#: functions and classes of the tools, by the module that defines them
_TOOLS = {
    "audit": "nagref.auditing",
    "AuditReport": "nagref.auditing",
    "explain": "nagref.explaining",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])
    if name in _TOOLS:
        return getattr(importlib.import_module(_TOOLS[name]), name)
    raise AttributeError(f"module 'nagref' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES, *_TOOLS})


__all__ = [
    "Array",
    "ArrayTree",
    "AuditReport",
    "Hyperparameter",
    "__version__",
    "audit",
    "conventions",
    "convert",
    "explain",
    "formulations",
    "init_velocity",
    "lookahead",
    "momentum",
    "nag",
    "schedules",
    "sgd",
]
