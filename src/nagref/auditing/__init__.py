"""The trajectory audit: whose SGD, momentum or NAG produced these parameters?

:func:`audit` replays every rule, published formulation and framework
convention nagref knows on a recorded trajectory's gradients, compares each
replay with the recorded parameters bit for bit at every step, and ranks
them: bitwise matches, matches within k ULP, and for the rest the first step
and element where they leave the recording. ``nagref audit FILE`` is the
command line; ``docs/audit.md`` is a worked example. A whole run recorded
by :mod:`nagref.record` (a ``.trajectory`` file) is audited tensor by tensor
and given one verdict by :func:`audit_model`.
"""

from __future__ import annotations

from .front import audit, format_report
from .model import ModelReport, audit_model, format_model_report
from .model_trajectory import SUFFIX, open_model
from .plot import matplotlib_missing, plot
from .report import AuditReport, Divergence, Match
from .trajectory import MAX_BYTES, NPZ_KEYS, Trajectory, TrajectoryError, load

__all__ = [
    "MAX_BYTES",
    "NPZ_KEYS",
    "SUFFIX",
    "AuditReport",
    "Divergence",
    "Match",
    "ModelReport",
    "Trajectory",
    "TrajectoryError",
    "audit",
    "audit_model",
    "format_model_report",
    "format_report",
    "load",
    "matplotlib_missing",
    "open_model",
    "plot",
]
