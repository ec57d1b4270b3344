"""Live conformance: nagref's conventions against the running frameworks.

Each framework runs in its own worker process (:mod:`.worker`), so that
Keras can pick its backend at import and JAX can enable float64 without
touching the caller. A case (:class:`.cases.Spec`) is plain data; both
sides build the same arrays from it (:func:`.cases.arrays`).
"""

from __future__ import annotations

from .cases import VARIANTS, Spec, arrays, random_spec, worker_groups, worker_variant
from .suite import CaseResult, Worker, check, compare, run_nagref

__all__ = [
    "VARIANTS",
    "CaseResult",
    "Spec",
    "Worker",
    "arrays",
    "check",
    "compare",
    "random_spec",
    "run_nagref",
    "worker_groups",
    "worker_variant",
]
