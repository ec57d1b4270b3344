"""Replay every candidate on a trajectory and rank them: ``nagref.audit``."""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, is_dataclass
from importlib import resources
from typing import Any, Literal, Protocol

import numpy as np

from .._apply import sharing
from .._compare import all_bitwise_equal, bitwise_equal, ulp_distance
from .._tables import aligned
from .candidates import Array, Candidate, Replayable, candidates
from .trajectory import Trajectory, load

__all__ = ["AuditReport", "Divergence", "Match", "Ranked", "Source", "audit", "bitwise_verdict",
           "describe", "format_report", "json_ready", "outcome", "rank", "replay", "schema",
           "tolerance_of"]  # fmt: skip

Status = Literal["bitwise", "within", "diverges", "cannot run"]


def schema() -> dict[str, Any]:
    """The JSON Schema of both reports' ``to_json()`` (``report.schema.json`` here)."""
    text = resources.files(__package__).joinpath("report.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


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
    """One candidate's replay against the recording.

    A candidate is replayed until it leaves the recording by more than the
    tolerance, and dropped there: ``max_ulp`` and ``elements_differing``
    count the ``steps_replayed`` steps, the last of them the one it left at.
    ``max_ulp`` is inf where a NaN meets a number, and None (as is
    ``elements_differing``) where the candidate could not run. ``history`` is
    the largest ULP distance at each step replayed (0 where bitwise, inf
    where a NaN met a number): it ends at the step a candidate was dropped.
    """

    candidate: str
    status: Status
    max_ulp: float | None
    elements_differing: int | None  # not bitwise equal, over the steps replayed
    first: Divergence | None
    reason: str | None = None  # why it could not run
    steps_replayed: int = 0
    history: tuple[float, ...] = ()


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

    @property
    def verdict(self) -> str:
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
    tolerance = tolerance_of(tolerance_ulps)
    if isinstance(trajectory, Trajectory):
        tr = trajectory
    elif isinstance(trajectory, (str, os.PathLike)):
        tr = load(trajectory)
    else:
        raise TypeError(
            "trajectory must be a Trajectory or the path of a .npz or .json file (a str or "
            f"os.PathLike), got {type(trajectory).__name__} {_short(trajectory)}"
        )
    matches = [m for _, m in replay(candidates(tr), tr, tolerance)]
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


class Source(Replayable, Protocol):
    """A run of one tensor, as the replay reads it: ``grads[t]`` and ``params[t]`` by step."""

    @property
    def initial(self) -> Array: ...
    @property
    def grads(self) -> Steps: ...
    @property
    def params(self) -> Steps: ...


class Steps(Protocol):
    def __getitem__(self, t: int, /) -> Array: ...


@dataclass
class _Replay:
    candidate: Candidate
    param: Array | None = None
    state: Any = None
    worst: float = 0.0
    differing: int = 0
    first: Divergence | None = None
    history: list[float] = field(default_factory=list)  # the max ULP at each step

    def match(self, status: Status, steps: int) -> Match:
        c, kept = self.candidate, tuple(self.history)
        return Match(c.name, status, self.worst, self.differing, self.first, None, steps, kept)


def replay(
    found: Iterable[Candidate], tr: Source, tolerance: float
) -> list[tuple[Candidate, Match]]:
    """Each candidate replayed on ``tr``'s gradients and compared with its parameters.

    All candidates advance together, one step at a time, so each step's
    gradient and parameters are read once; a candidate that leaves the
    recording by more than ``tolerance`` ULP is dropped at that step, its
    state with it, so what is held is the candidates still matching.
    """
    done: list[tuple[Candidate, Match]] = []
    live = [_Replay(c) for c in found]
    initial = tr.initial.copy()  # one copy, given to every candidate: the steps are pure
    with np.errstate(all="ignore"):
        for t in range(tr.steps):
            grad, recorded = tr.grads[t], tr.params[t]
            kept = []
            starts: dict[Callable[[Array], Any], Any] = {}
            shared = sharing()
            compared: dict[int, tuple[Array, bool]] = {}  # id(param) -> (param, same bits)
            for r in live:
                c = r.candidate
                try:
                    if r.param is None:
                        if c.initial_state not in starts:
                            starts[c.initial_state] = c.initial_state(initial)
                        p, state = initial, starts[c.initial_state]
                    else:
                        p, state = r.param, r.state
                    with shared:  # candidates whose steps coincide compute them once
                        r.param, r.state = c.step(p, grad, state, t)
                except Exception as error:  # a candidate that refuses these hyperparameters
                    done.append((c, Match(c.name, "cannot run", None, None, None, f"{error}", t)))
                    continue
                if id(r.param) not in compared:
                    compared[id(r.param)] = (r.param, all_bitwise_equal(r.param, recorded))
                if compared[id(r.param)][1]:
                    r.history.append(0.0)
                else:
                    differ = np.flatnonzero(~bitwise_equal(r.param, recorded))
                    ulps = ulp_distance(r.param.ravel()[differ], recorded.ravel()[differ])
                    r.history.append(float(ulps.max()))
                    r.worst = max(r.worst, r.history[-1])
                    r.differing += differ.size
                    if r.first is None:
                        i = tuple(int(k) for k in np.unravel_index(differ[0], recorded.shape))
                        value = float(r.param[i])
                        r.first = Divergence(t + 1, i, float(recorded[i]), value, float(ulps[0]))
                    if r.worst > tolerance:
                        done.append((c, r.match("diverges", t + 1)))
                        r.param = r.state = None  # what it held goes now, not at the step's end
                        continue
                kept.append(r)
            live = kept
    for r in live:
        done.append((r.candidate, r.match("bitwise" if r.first is None else "within", tr.steps)))
    return done


#: The statuses' order in a ranking.
ORDER: dict[Status, int] = {"bitwise": 0, "within": 1, "diverges": 2, "cannot run": 3}


def rank(m: Match) -> tuple[int, float, int, int, int]:
    """The report's order: bitwise, within (closest first), diverged (the longest kept first)."""
    order = ORDER[m.status]
    step = -m.first.step if m.first is not None else 0  # later divergence ranks higher
    ulp = m.max_ulp if m.status == "within" and m.max_ulp is not None else 0.0
    return order, ulp, -m.steps_replayed, step, m.elements_differing or 0


def format_report(report: AuditReport) -> str:
    """The report as text: what was audited, the ranking, the verdict."""
    nesterov = "not recorded (both tried)" if report.nesterov is None else str(report.nesterov)
    lines = [
        f"audit of {report.source}: {report.steps} steps, {report.dtype}, shape "
        f"{report.shape}, nesterov {nesterov}"
        + "".join(f", {k} {v!r}" for k, v in _recorded(report)),
        "",
    ]
    header = ("rank", "candidate", "result", "max ulp", "first divergence: replayed vs recorded")
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
        result = describe(m, report.tolerance_ulps)
        ulp = "-" if m.max_ulp is None else f"{m.max_ulp:g}"
        rows.append((str(i), m.candidate, result, ulp, where))
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
