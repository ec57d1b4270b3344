"""nagref: the reference for how SGD, momentum and Nesterov (NAG) update parameters.

The rules are written once against the Python array API standard and run on
NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict. See :mod:`nagref.rules`
for the arithmetic contract, :mod:`nagref.formulations` for the published
forms, :mod:`nagref.convert` for the maps between them and the frameworks'
(:mod:`nagref.conventions`), and :mod:`nagref.schedules` for momentum
schedules.
"""

from __future__ import annotations

__version__ = "0.1.0"  # first: the tools read it while the package imports

from typing import TYPE_CHECKING, Any

from . import convert, formulations, schedules
from ._typing import Array, ArrayTree, Hyperparameter
from .rules import init_velocity, lookahead, momentum, nag, sgd

if TYPE_CHECKING:
    from .auditing import AuditReport, audit


def __getattr__(name: str) -> Any:
    # the audit (a NumPy tool) loads on first use, so that importing the
    # rules does not import it
    if name in ("audit", "AuditReport"):
        from . import auditing  # noqa: PLC0415

        return getattr(auditing, name)
    raise AttributeError(f"module 'nagref' has no attribute {name!r}")


__all__ = [
    "Array",
    "ArrayTree",
    "AuditReport",
    "Hyperparameter",
    "__version__",
    "audit",
    "convert",
    "formulations",
    "init_velocity",
    "lookahead",
    "momentum",
    "nag",
    "schedules",
    "sgd",
]
