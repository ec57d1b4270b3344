"""nagref: the reference for how SGD, momentum and Nesterov (NAG) update parameters.

The rules are written once against the Python array API standard and run on
NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict. See :mod:`nagref.rules`
for the arithmetic contract.
"""

from __future__ import annotations

from ._typing import Array, ArrayTree, Hyperparameter
from .rules import init_velocity, lookahead, momentum, nag, sgd

__all__ = [
    "Array",
    "ArrayTree",
    "Hyperparameter",
    "__version__",
    "init_velocity",
    "lookahead",
    "momentum",
    "nag",
    "sgd",
]

__version__ = "0.1.0"
