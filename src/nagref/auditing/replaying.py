"""The replay: every candidate stepped on a recording, one step at a time, and compared."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from .._apply import sharing
from .._compare import all_bitwise_equal, bitwise_equal, ulp_distance
from .candidates import Array, Candidate, Replayable

__all__ = ["Divergence", "Match", "Recorded", "Source", "Status", "Steps", "replay"]

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


class Recorded(Protocol):
    """What the replay reads of a recording: its arrays by step."""

    @property
    def initial(self) -> Array: ...
    @property
    def grads(self) -> Steps: ...
    @property
    def params(self) -> Steps: ...
    @property
    def steps(self) -> int: ...


class Source(Recorded, Replayable, Protocol):
    """A run of one tensor, as the replay and the candidates read it."""


def replay(
    found: Iterable[Candidate], tr: Recorded, tolerance: float
) -> list[tuple[Candidate, Match]]:
    """Each candidate replayed on ``tr``'s gradients and compared with its parameters.

    All candidates advance together, one step at a time, so each step's
    gradient and parameters are read once; a candidate that leaves the
    recording by more than ``tolerance`` ULP is dropped at that step, its
    state with it, so what is held is the candidates still matching.
    Candidates whose step is one computation on the same arrays run it once
    (:class:`nagref._apply.sharing`): they start from one copy of the
    initial parameters and, where their initial states are made alike, one
    state.
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
            # id(param) -> (the param, weakly: a dropped candidate's goes at once; same bits)
            compared: dict[int, tuple[weakref.ref[Array], bool]] = {}
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
                seen = compared.get(id(r.param))
                if seen is None or seen[0]() is not r.param:
                    seen = (weakref.ref(r.param), all_bitwise_equal(r.param, recorded))
                    compared[id(r.param)] = seen
                if seen[1]:
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
