"""Replay every candidate on a trajectory and rank them: ``nagref.audit``."""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from .._compare import bitwise_equal, ulp_distance
from .._tables import aligned
from .candidates import Candidate, candidates
from .trajectory import Trajectory, load

__all__ = ["AuditReport", "Divergence", "Match", "audit", "format_report"]

Status = Literal["bitwise", "within", "diverges", "cannot run"]


@dataclass(frozen=True)
class Divergence:
    """Where a candidate first leaves the recorded trajectory."""

    step: int  # 1-based
    index: tuple[int, ...]  # the first differing element
    recorded: float
    replayed: float
    ulps: float  # at that element; inf against NaN


@dataclass(frozen=True)
class Match:
    """One candidate's replay against the recording."""

    candidate: str
    status: Status
    max_ulp: float  # over every element of every step
    elements_differing: int  # not bitwise equal, over every step
    first: Divergence | None
    reason: str | None = None  # why it could not run


@dataclass(frozen=True)
class AuditReport:
    """The ranked replays of every candidate, best first."""

    source: str
    steps: int
    dtype: str
    shape: tuple[int, ...]
    nesterov: bool | None
    tolerance_ulps: float
    matches: tuple[Match, ...]
    #: the recorded dampening, weight decay and maximize: candidates replay them
    dampening: float = 0.0
    weight_decay: float = 0.0
    maximize: bool = False

    @property
    def bitwise(self) -> list[str]:
        return [m.candidate for m in self.matches if m.status == "bitwise"]

    @property
    def exit_code(self) -> int:
        """0 when some candidate matches bit for bit, else 1."""
        return 0 if self.bitwise else 1

    @property
    def verdict(self) -> str:
        best = self.matches[0] if self.matches else None
        if self.bitwise:
            return "VERDICT: bitwise: " + "; ".join(self.bitwise)
        if best is not None and best.status == "within":
            within = [m for m in self.matches if m.status == "within"]
            names = "; ".join(f"{m.candidate} ({m.max_ulp:g} ULP)" for m in within)
            return f"VERDICT: no bitwise match; within {self.tolerance_ulps:g} ULP: {names}"
        if best is None or best.first is None:
            return "VERDICT: no candidate could replay this trajectory"
        d = best.first
        return (
            f"VERDICT: no match; closest: {best.candidate}, which leaves the recording at "
            f"step {d.step}, element {list(d.index)}: {d.replayed!r} where {d.recorded!r} was "
            f"recorded ({d.ulps:g} ULP)"
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole report (``inf`` written as a string)."""
        out = asdict(self)
        out["verdict"] = self.verdict
        out["bitwise"] = self.bitwise
        return dict(_finite(out))


def audit(
    trajectory: Trajectory | str | os.PathLike[str], *, tolerance_ulps: float = 4.0
) -> AuditReport:
    """Whose update is this? Replay every rule, formulation and convention.

    Args:
        trajectory: a :class:`~nagref.auditing.trajectory.Trajectory`, or the
            path of a ``.npz`` trajectory or a test-vector ``.json`` file.
        tolerance_ulps: the distance at which a candidate counts as a near
            match ("within k ULP").

    Returns:
        An :class:`AuditReport`, candidates ranked best first.

    Raises:
        TrajectoryError: the file cannot be read or is inconsistent.
        TypeError: ``trajectory`` or ``tolerance_ulps`` is of the wrong type.
        ValueError: ``tolerance_ulps`` is negative, NaN, infinite or too large for a float.
    """
    tolerance = _tolerance(tolerance_ulps)
    if isinstance(trajectory, Trajectory):
        tr = trajectory
    elif isinstance(trajectory, (str, os.PathLike)):
        tr = load(trajectory)
    else:
        raise TypeError(
            "trajectory must be a Trajectory or the path of a .npz or .json file (a str or "
            f"os.PathLike), got {type(trajectory).__name__} {_short(trajectory)}"
        )
    matches = [_replay(c, tr, tolerance) for c in candidates(tr)]
    matches.sort(key=_rank)
    return AuditReport(
        tr.source,
        tr.steps,
        tr.dtype,
        tuple(tr.initial.shape),
        tr.nesterov,
        tolerance,
        tuple(matches),
        tr.dampening,
        tr.weight_decay,
        tr.maximize,
    )


def _tolerance(value: object) -> float:
    """``tolerance_ulps`` as a float, or a TypeError or ValueError that names it."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"tolerance_ulps must be a real number, got {type(value).__name__} {_short(value)}"
        )
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(
            "tolerance_ulps must be a finite number >= 0, got an integer too large for a float"
        ) from None
    if not (number >= 0 and math.isfinite(number)):
        raise ValueError(f"tolerance_ulps must be a finite number >= 0, got {_short(value)}")
    return number


def _short(value: object) -> str:
    """``repr(value)``, at most 60 characters (an int of any size included)."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"(an integer of {value.bit_length()} bits)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _replay(candidate: Candidate, tr: Trajectory, tolerance: float) -> Match:
    p = tr.initial.copy()
    state = candidate.initial_state(p)
    worst, differing, first = 0.0, 0, None
    with np.errstate(all="ignore"):
        for t in range(tr.steps):
            try:
                p, state = candidate.step(p, tr.grads[t], state, t)
            except Exception as error:  # a candidate that refuses these hyperparameters
                return Match(candidate.name, "cannot run", math.inf, -1, None, f"{error}")
            recorded = tr.params[t]
            same = bitwise_equal(p, recorded)
            if same.all():
                continue
            ulps = ulp_distance(p, recorded)
            worst = max(worst, float(ulps.max()))
            differing += int((~same).sum())
            if first is None:
                index = tuple(int(i) for i in np.argwhere(~same)[0])
                first = Divergence(
                    t + 1, index, float(recorded[index]), float(p[index]), float(ulps[index])
                )
    status: Status = "bitwise" if first is None else "within" if worst <= tolerance else "diverges"
    return Match(candidate.name, status, worst, differing, first)


def _rank(m: Match) -> tuple[int, float, float, float]:
    order = {"bitwise": 0, "within": 1, "diverges": 2, "cannot run": 3}[m.status]
    step = -m.first.step if m.first is not None else 0.0  # later divergence ranks higher
    return order, m.max_ulp if m.status == "within" else 0.0, step, m.elements_differing


def format_report(report: AuditReport) -> str:
    """The report as text: what was audited, the ranking, the verdict."""
    nesterov = "not recorded (both tried)" if report.nesterov is None else str(report.nesterov)
    lines = [
        f"audit of {report.source}: {report.steps} steps, {report.dtype}, shape "
        f"{report.shape}, nesterov {nesterov}"
        + "".join(f", {k} {v!r}" for k, v in _recorded(report)),
        "",
    ]
    header = ("rank", "candidate", "result", "max ulp", "first divergence")
    rows = []
    for i, m in enumerate(report.matches, 1):
        if m.status == "cannot run":
            where = m.reason or ""
        elif m.first is None:
            where = "-"
        else:
            d = m.first
            where = (
                f"step {d.step}, element {list(d.index)}: {d.replayed!r} vs {d.recorded!r} "
                f"({d.ulps:g} ULP)"
            )
        result = f"within {report.tolerance_ulps:g} ULP" if m.status == "within" else m.status
        ulp = "-" if m.status == "cannot run" else f"{m.max_ulp:g}"
        rows.append((str(i), m.candidate, result, ulp, where))
    lines += [*aligned(header, rows), "", report.verdict]
    return "\n".join(lines)


def _recorded(report: AuditReport) -> list[tuple[str, object]]:
    """The dampening, weight decay and maximize a run recorded, where not the default."""
    given = ("dampening", report.dampening), ("weight_decay", report.weight_decay)
    return [*((k, v) for k, v in given if v), *((("maximize", True),) if report.maximize else ())]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
