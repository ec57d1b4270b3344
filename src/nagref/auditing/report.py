"""Replay every candidate on a trajectory and rank them: ``nagref.audit``."""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import dataclass, fields, is_dataclass
from importlib import resources
from typing import Any

import numpy as np

from .._tables import aligned
from .candidates import candidates
from .infer import Inference, infer_hypers, replayed_with, with_hypers
from .replaying import Divergence, Match, Source, Status, replay
from .trajectory import Trajectory, load

__all__ = ["AuditReport", "Divergence", "Match", "Ranked", "Source", "Status", "audit_array",
           "bitwise_verdict", "describe", "format_array_report", "json_ready", "outcome", "rank",
           "replay", "schema", "tolerance_of"]  # fmt: skip


def schema() -> dict[str, Any]:
    """The JSON Schema of both reports' ``to_json()`` (``report.schema.json`` here)."""
    text = resources.files(__package__).joinpath("report.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def bitwise_verdict(names: list[str], what: str) -> str:
    """The verdict where ``names`` reproduce ``what`` bit for bit: one, or indistinguishable."""
    if len(names) == 1:
        return f"VERDICT: bitwise: {names[0]}"
    return (f"VERDICT: indistinguishable: {len(names)} candidates reproduce {what} bit for "
            f"bit ({'; '.join(names)}); it does not tell them apart (where their arithmetic "
            "differs, more steps, larger tensors or gradients that reach rounding ties, "
            "subnormals or infinities can)")  # fmt: skip


class Ranked:
    """What a report's ranked matches say: who matched bit for bit, and the exit code."""

    matches: tuple[Match, ...] | tuple[Any, ...]

    @property
    def bitwise(self) -> list[str]:
        return [m.candidate for m in self.matches if m.status == "bitwise"]

    @property
    def exit_code(self) -> int:
        """0 when some candidate matches bit for bit (on every tensor), else 1."""
        return 0 if self.bitwise else 1


@dataclass(frozen=True)
class AuditReport(Ranked):
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
    #: the lr and momentum inferred from the first steps (where not recorded, or --infer)
    inference: Inference | None = None

    @property
    def verdict(self) -> str:
        note = "" if self.inference is None else self.inference.note(self.bitwise)
        return self._verdict() + note

    def _verdict(self) -> str:
        best = self.matches[0] if self.matches else None
        if self.bitwise:
            return bitwise_verdict(self.bitwise, "the recording")
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
        """A JSON-ready dict of the whole report: numbers and nulls (:func:`schema`).

        A value JSON cannot hold (inf, NaN) is null, and each divergence also
        gives its two values as text (``"inf"``, ``"nan"``, ``"0.1"``).
        """
        out = json_ready(self)
        out |= {"verdict": self.verdict, "bitwise": self.bitwise, "exit_code": self.exit_code}
        return dict(out)


def audit_array(
    trajectory: Trajectory | str | os.PathLike[str],
    *,
    tolerance_ulps: float = 4.0,
    infer: bool = False,
) -> AuditReport:
    """Whose update is this? Replay every rule, formulation and convention on one array's run.

    :func:`nagref.audit` calls this for a trajectory of one array, and
    :func:`~nagref.auditing.model.audit_model` for a whole run.

    Args:
        trajectory: a :class:`~nagref.auditing.trajectory.Trajectory`, or the
            path of a ``.npz`` trajectory or a test-vector ``.json`` file.
        tolerance_ulps: the distance at which a candidate counts as a near
            match ("within k ULP").
        infer: infer lr and momentum from the first two steps even where the
            file records them (an lr or momentum it lacks is always inferred):
            :mod:`~nagref.auditing.infer`, in the report's ``inference``.

    Returns:
        An :class:`AuditReport`, candidates ranked best first.

    Raises:
        TrajectoryError: the file cannot be read or is inconsistent, or the lr and
            momentum it lacks cannot be inferred (the message says why).
        TypeError: ``trajectory``, ``tolerance_ulps`` or ``infer`` is of the wrong type.
        ValueError: ``tolerance_ulps`` is negative, NaN, infinite or too large for a float.
    """
    tolerance = tolerance_of(tolerance_ulps)
    if not isinstance(infer, bool):
        raise TypeError(f"infer must be True or False, got {type(infer).__name__} {_short(infer)}")
    if isinstance(trajectory, Trajectory):
        tr = trajectory
    elif isinstance(trajectory, (str, os.PathLike)):
        tr = load(trajectory)
    else:
        raise TypeError(
            "trajectory must be a Trajectory or the path of a .npz or .json file (a str or "
            f"os.PathLike), got {type(trajectory).__name__} {_short(trajectory)}"
        )
    inference = None
    if infer or tr.lr is None or tr.momentum is None:
        lr, mu = infer or tr.lr is None, infer or tr.momentum is None
        inference = infer_hypers([tr], lr=lr, momentum=mu)
        replayed = replayed_with(tr, inference, (tr.lr, tr.momentum), tolerance)
        matches = [m for _, m in replayed]
    else:
        found = list(candidates(with_hypers(tr, tr.lr, tr.momentum)))
        matches = [m for _, m in replay(found, tr, tolerance)]
    matches.sort(key=rank)
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
        inference,
    )


def tolerance_of(value: object) -> float:
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


#: The statuses' order in a ranking.
ORDER: dict[Status, int] = {"bitwise": 0, "within": 1, "diverges": 2, "cannot run": 3}


def rank(m: Match) -> tuple[int, float, int, int, int]:
    """The report's order: bitwise, within (closest first), diverged (the longest kept first)."""
    order = ORDER[m.status]
    step = -m.first.step if m.first is not None else 0  # later divergence ranks higher
    ulp = m.max_ulp if m.status == "within" and m.max_ulp is not None else 0.0
    return order, ulp, -m.steps_replayed, step, m.elements_differing or 0


def format_array_report(report: AuditReport) -> str:
    """One array's report as text: what was audited, the ranking, the verdict."""
    nesterov = "not recorded (both tried)" if report.nesterov is None else str(report.nesterov)
    lines = [
        f"audit of {report.source}: {report.steps} steps, {report.dtype}, shape "
        f"{report.shape}, nesterov {nesterov}"
        + "".join(f", {k} {v!r}" for k, v in _recorded(report))
        + ("" if report.inference is None else f"; {report.inference.summary()}"),
        "",
    ]
    header: tuple[str, ...] = ("rank", "candidate", "result", "max ulp",
                               "first divergence: replayed vs recorded")  # fmt: skip
    if report.inference is not None:
        header = (*header[:2], "lr, momentum", *header[2:])
    rows: list[tuple[str, ...]] = []
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
        result = describe(m, report.tolerance_ulps)
        ulp = "-" if m.max_ulp is None else f"{m.max_ulp:g}"
        row: tuple[str, ...] = (str(i), m.candidate, result, ulp, where)
        if report.inference is not None:
            v = report.inference.of(m.candidate)
            hypers = "-" if v is None else f"{v.lr!r}, {v.momentum!r}"
            row = (*row[:2], hypers + ("" if v is None or v.exact else " (estimate)"), *row[2:])
        rows.append(row)
    lines += [*aligned(header, rows), "", report.verdict]
    return "\n".join(lines)


def outcome(status: Status, tolerance: float) -> str:
    """A status in words: a near match is the same formula with another rounding."""
    if status == "within":
        return f"same formula, other rounding (<= {tolerance:g} ULP)"
    return status


def describe(m: Match, tolerance: float) -> str:
    """A match's result column: its :func:`outcome`, and where it was dropped."""
    if m.status == "diverges":
        return f"{outcome(m.status, tolerance)} (dropped at step {m.steps_replayed})"
    return outcome(m.status, tolerance)


def _recorded(report: AuditReport) -> list[tuple[str, object]]:
    """The dampening, weight decay and maximize a run recorded, where not the default."""
    given = ("dampening", report.dampening), ("weight_decay", report.weight_decay)
    return [*((k, v) for k, v in given if v), *((("maximize", True),) if report.maximize else ())]


def json_ready(value: Any) -> Any:
    """``value`` (dataclasses as dicts of their fields) with inf and NaN as null, and each
    :class:`Divergence`'s two values also as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if is_dataclass(value) and not isinstance(value, type):
        out = {f.name: json_ready(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, Divergence):
            out |= {f"{k}_text": repr(getattr(value, k)) for k in ("recorded", "replayed")}
        return out
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value
