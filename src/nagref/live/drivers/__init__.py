"""Live drivers: each runs one framework's own optimizer on a case, in a worker process.

A driver is a module named by its convention's registry record
(``Convention.driver``) with one function::

    start(variant: str | None) -> tuple[str, Callable[[Spec], Trajectory]]

which imports the framework (for a framework that needs a process per
variant, for that variant), and returns its name and version and a function
that runs a :class:`~nagref.live.cases.Spec` on it: the parameters and the
state after every step, as NumPy arrays. :mod:`nagref.live.worker` loads the
driver and speaks JSON lines with the suite.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..cases import Spec

__all__ = ["Run", "Trajectory", "per_step"]

Trajectory = list[tuple[np.ndarray, np.ndarray | None]]
Run = Callable[[Spec], Trajectory]


def per_step(grads: np.ndarray) -> list[np.ndarray]:
    """Each step's gradient as its own array, 0-d for a scalar parameter.

    Iterating a 1-d array yields NumPy scalars, and ``np.float64`` is a
    Python ``float``: TensorFlow's eager conversion caches Python numbers by
    value, so +0.0 and -0.0 share an entry and a -0.0 gradient could arrive
    as an earlier +0.0. Arrays are never cached.
    """
    return [np.array(g) for g in grads]
