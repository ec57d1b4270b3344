"""``nagref.audit``: one entry for a trajectory of one array and for a whole run.

A ``.trajectory`` file (a whole run, :mod:`nagref.record`) is audited tensor
by tensor with one verdict (:func:`~nagref.auditing.model.audit_model`,
a :class:`~nagref.auditing.model.ModelReport`); a :class:`Trajectory`, an
``.npz`` or a vector ``.json`` file as one array
(:func:`~nagref.auditing.report.audit_array`, an
:class:`~nagref.auditing.report.AuditReport`). Both reports rank their
candidates alike and give ``verdict``, ``bitwise``, ``exit_code`` and
``to_json()``; :func:`format_report` prints either.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .model import ModelReport, audit_model, format_model_report
from .model_trajectory import SUFFIX
from .report import AuditReport, audit_array, format_array_report
from .trajectory import Trajectory

__all__ = ["audit", "format_report"]


def audit(
    trajectory: Trajectory | str | os.PathLike[str],
    *,
    tolerance_ulps: float = 4.0,
    infer: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> AuditReport | ModelReport:
    """Whose update is this? Replay every rule, formulation and convention nagref knows.

    Args:
        trajectory: a ``.trajectory`` file's path (a whole run: every tensor,
            one verdict), or a :class:`Trajectory`, or the path of a ``.npz``
            trajectory or a test-vector ``.json`` file (one array).
        tolerance_ulps: the distance at which a candidate counts as a near
            match ("within k ULP").
        infer: infer lr and momentum from the first two steps even where the
            file records them (:mod:`~nagref.auditing.infer`).
        progress: for a whole run, called as ``progress(done, total, tensor)``
            before each tensor.

    Returns:
        A :class:`ModelReport` for a ``.trajectory`` file, an
        :class:`AuditReport` otherwise; candidates ranked best first.

    Raises:
        TrajectoryError: the file cannot be read or is inconsistent, or the lr
            and momentum it lacks cannot be inferred.
        TypeError, ValueError: an argument of the wrong type or value, named.
    """
    if isinstance(trajectory, (str, os.PathLike)) and Path(trajectory).suffix == SUFFIX:
        return audit_model(trajectory, tolerance_ulps=tolerance_ulps, progress=progress,
                           infer=infer)  # fmt: skip
    return audit_array(trajectory, tolerance_ulps=tolerance_ulps, infer=infer)


def format_report(report: AuditReport | ModelReport) -> str:
    """Either report as text: what was audited, the ranking, the verdict."""
    if isinstance(report, ModelReport):
        return format_model_report(report)
    return format_array_report(report)
