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

import atexit
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..._host import native_float16
from ...conventions import lookup
from ..cases import Spec
from ..suite import Worker

__all__ = [
    "LIMIT",
    "Run",
    "Trajectory",
    "avx2_helper",
    "described",
    "from_torch",
    "limit_xla",
    "per_step",
    "to_torch",
    "xla_process",
]

#: XLA's flag that keeps its CPU code to an instruction set, and the value
#: that leaves out AVX512-FP16 (a worker of a ``native_float16=False`` variant)
LIMIT = "--xla_cpu_max_isa=AVX2"

Trajectory = list[tuple[np.ndarray, np.ndarray | None]]
Run = Callable[[Spec], Trajectory]


def limit_xla() -> None:
    """Keep this process's XLA to AVX2 (:data:`LIMIT`): set before JAX or TensorFlow starts it."""
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {LIMIT}".strip()


def avx2_helper(convention: str) -> Run:
    """Run a case in one worker of ``convention`` kept to AVX2, started at its first case.

    A driver hands it the float16 cases of variants without native float16
    on a CPU with AVX512-FP16: XLA's instruction set is fixed when its
    process starts. The worker is started for the case's variant (whose
    ``native_float16`` is False: its driver calls :func:`limit_xla`), serves
    every such variant, and is closed when this process exits.
    """
    helpers: list[Worker] = []

    @atexit.register
    def close() -> None:
        for helper in helpers:
            helper.close()

    def run(spec: Spec) -> Trajectory:
        if not helpers:
            helpers.append(Worker(convention, spec.variant))
        return helpers[0].run(spec)

    return run


def xla_process(
    convention: str, variant: str | None
) -> tuple[bool, Callable[[Spec], Trajectory | None]]:
    """Set up a worker of an XLA framework for ``variant``, before the framework starts.

    Returns ``limited``, whether this process's XLA is kept to AVX2 (a worker
    of a variant that pins ``native_float16=False`` on a CPU with
    AVX512-FP16), and ``elsewhere(spec)``: the trajectory of a case that
    belongs in such a worker, run by :func:`avx2_helper` (a float16 case of a
    variant without native float16, here on a CPU with it), or None for a case
    this process runs.
    """
    record = lookup(convention)

    def pinned(name: str) -> bool:
        return record.variant(name).options.get("native_float16") is False

    limited = variant is not None and pinned(variant) and native_float16()
    if limited:
        limit_xla()
    helper = avx2_helper(convention)

    def elsewhere(spec: Spec) -> Trajectory | None:
        if pinned(spec.variant) and spec.dtype == "float16" and native_float16() and not limited:
            return helper(spec)
        return None

    return limited, elsewhere


def described(version: str, limited: bool, cases: str) -> str:
    """A driver's ``version`` and how its XLA runs: kept to AVX2 (``limited``, a helper), or
    handing ``cases`` (those without native float16) to a helper so kept on this CPU."""
    if limited:
        return f"{version}, XLA_FLAGS={LIMIT}"
    if native_float16():
        return f"{version}; {cases} without AVX512-FP16: XLA_FLAGS={LIMIT}"
    return version


def per_step(grads: np.ndarray) -> list[np.ndarray]:
    """Each step's gradient as its own array, 0-d for a scalar parameter.

    Iterating a 1-d array yields NumPy scalars, and ``np.float64`` is a
    Python ``float``: TensorFlow's eager conversion caches Python numbers by
    value, so +0.0 and -0.0 share an entry and a -0.0 gradient could arrive
    as an earlier +0.0. Arrays are never cached.
    """
    return [np.array(g) for g in grads]


def to_torch(a: np.ndarray) -> Any:
    """A torch tensor with ``a``'s values, a copy; bfloat16 (``ml_dtypes``) by its bits.

    ``torch.tensor`` does not read NumPy's ``ml_dtypes.bfloat16`` arrays, so
    their bit patterns travel as int16 and are viewed as bfloat16.
    """
    import torch

    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    return torch.tensor(a.copy())


def from_torch(t: Any) -> np.ndarray:
    """A NumPy copy of tensor ``t``; bfloat16 as ``ml_dtypes.bfloat16``, by its bits."""
    import torch

    t = t.detach()
    if t.dtype == torch.bfloat16:
        import ml_dtypes

        bits: np.ndarray = t.view(torch.int16).numpy().copy()
        return bits.view(ml_dtypes.bfloat16)
    copied: np.ndarray = t.numpy().copy()
    return copied
