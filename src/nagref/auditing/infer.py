"""Unknown hyperparameters: a constant lr and momentum, inferred exactly from the first steps.

Every candidate's first two steps are linear in the gradients: from a
state at rest, step 1 moves the parameters by ``-lr * A(mu) * g1`` and step
2 by ``-lr * (B(mu) * g2 + C(mu) * g1)``, where ``A``, ``B`` and ``C`` are the
candidate's recipe (``A = 1, C = mu`` for heavy-ball momentum; ``A = 1 + mu``
and ``C = mu**2`` for PyTorch's or Keras's Nesterov; dampening changes
them). The recipes are read off each candidate itself, by replaying it on
unit gradients at three momenta (exact in every dtype), so no candidate's
algebra is written down twice. The recording's first two steps, fitted in
float64 by least squares over every finite element, give ``a = lr * A`` and
``c = lr * C``; ``c / a`` fixes ``mu`` and then ``a`` fixes ``lr``, each with
an interval from the recording's rounding. The exact values are the shortest
decimals in those intervals (what a user types: ``0.05``, ``0.0123``) that,
replayed, reproduce the steps read bit for bit; the audit then replays the
whole run with them. A learning rate or momentum that changes during the run
is not inferred: the replay leaves the recording where it changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, cast

import numpy as np

from .candidates import Array, Candidate, Described, Replayable, candidates
from .estimate import PAIRS, PROBES, Fit
from .replaying import Match, replay
from .trajectory import TrajectoryError

__all__ = ["Inference", "Inferred", "Run", "infer_hypers", "replayed_with", "run_candidates",
           "with_hypers"]  # fmt: skip

_SAMPLE = 4096  # the elements a guess is checked on


class Run(Described, Protocol):
    """A recording of one tensor, as inference reads it (its first steps)."""

    @property
    def initial(self) -> Array: ...
    @property
    def grads(self) -> Any: ...  # grads[t], params[t]: step t + 1
    @property
    def params(self) -> Any: ...


@dataclass(frozen=True)
class Inferred:
    """A constant lr and momentum, and the candidates (families) replayed with them."""

    lr: float
    momentum: float
    exact: bool  # they reproduce the steps read bit for bit; else the float64 estimate
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class Inference:
    """What was inferred (``"lr"``, ``"momentum"``), from which steps, and the values."""

    inferred: tuple[str, ...]
    steps: tuple[int, ...]  # 1-based
    values: tuple[Inferred, ...]
    unresolved: tuple[str, ...]  # families whose recipe no lr and momentum fit
    group: int | None = None  # a whole run's parameter group

    @property
    def exact(self) -> bool:
        """Whether some candidate's values reproduce the steps read bit for bit."""
        return any(v.exact for v in self.values)

    def of(self, name: str) -> Inferred | None:
        """The values candidate ``name`` (a family, or a family and its setting) replayed."""
        known: list[tuple[str, Inferred | None]] = [
            (f, v) for v in self.values for f in v.candidates
        ]
        known += [(f, None) for f in self.unresolved]
        found = [(len(f), v) for f, v in known if name == f or name.startswith(f + ", ")]
        return max(found, key=lambda x: x[0])[1] if found else None

    def note(self, names: Sequence[str]) -> str:
        """What the verdict adds: the values ``names`` reproduced the run with, or that none
        reproduced the first steps."""
        steps = "step 1" if len(self.steps) == 1 else f"steps 1-{self.steps[-1]}"
        if not self.exact:
            return (f"; no lr and momentum reproduce {steps} bit for bit: record them in the "
                    "file (or check that it records an SGD, momentum or NAG run)")  # fmt: skip
        shown = dict.fromkeys(_values(v) for n in names if (v := self.of(n)) is not None)
        group = f"group {self.group}: " if self.group is not None else ""
        return f" ({group}{'; '.join(shown)}: inferred from {steps})" if shown else ""

    def summary(self) -> str:
        """One line: what was inferred from which steps, and the values found."""
        what = " and ".join(self.inferred)
        steps = "step 1" if len(self.steps) == 1 else f"steps 1-{self.steps[-1]}"
        group = f" of group {self.group}" if self.group is not None else ""
        exact = [v for v in self.values if v.exact]
        if not exact:
            how = "replayed with the float64 estimates" if self.values else "no recipe fits them"
            return (f"{what}{group} inferred from {steps}, but no value reproduces {steps} bit "
                    f"for bit under any candidate's recipe ({how}; record them, or check the "
                    "recording)")  # fmt: skip
        found = "; ".join(f"{_values(v)} ({len(v.candidates)} candidates)" for v in exact)
        return f"{what}{group} inferred from {steps} (constant values assumed): {found}"


def _values(v: Inferred) -> str:
    return f"lr {v.lr!r}, momentum {v.momentum!r}"


def infer_hypers(
    runs: Sequence[Run], *, lr: bool, momentum: bool, group: int | None = None
) -> Inference:
    """Infer the ``lr`` and/or ``momentum`` (those True) shared by ``runs`` (one
    tensor's, or a group's), per candidate family. A value not inferred is the
    recording's, read through :func:`run_candidates`' ``known``.

    Raises:
        TrajectoryError: the first steps cannot fix them (no finite, nonzero gradient,
            parameters that did not move, proportional gradients, weight decay).
    """
    where = getattr(runs[0], "source", "the recording")
    first = runs[0]
    if first.weight_decay:
        raise TrajectoryError(f"{where}: cannot infer lr or momentum with weight decay "
                              f"{first.weight_decay!r}: record them")  # fmt: skip
    k = 2 if momentum else 1
    usable = [r for r in runs if r.steps >= k]
    if not usable:
        raise TrajectoryError(f"{where}: inferring momentum needs 2 steps, the recording has 1")
    fit = Fit.of(usable, k, where)
    families: dict[str, Candidate] = {}
    recipes: dict[str, list[tuple[float, float, float]]] = {}
    for m in PROBES:
        for c, abc in {c.family: (c, abc) for c, abc in reversed(_probe(first, m))}.values():
            families.setdefault(c.family, c)  # a family's first setting stands for it
            recipes.setdefault(c.family, []).append(abc)
    known_mu = _known(first, "momentum") if not momentum else None
    guesses: dict[str, list[tuple[float, float]]] = {}
    estimates: dict[str, tuple[float, float]] = {}
    for family, probed in recipes.items():
        if len(probed) != len(PROBES):
            continue
        solved = fit.solve(np.array(probed), known_mu, None if lr else _known(first, "lr"))
        if solved is not None:
            estimates[family], guesses[family] = solved
    resolved = _search(usable, k, guesses, lr=lr, momentum=momentum)
    values: dict[tuple[float, float, bool], list[str]] = {}
    for family, (lr_est, mu_est) in estimates.items():
        exact = family in resolved
        lr_v, mu_v = resolved[family] if exact else (lr_est, mu_est)
        values.setdefault((lr_v, mu_v, exact), []).append(family)
    ordered = sorted(values.items(), key=lambda kv: (not kv[0][2], -len(kv[1])))
    return Inference(
        tuple(n for n, on in (("lr", lr), ("momentum", momentum)) if on),
        tuple(range(1, k + 1)),
        tuple(Inferred(lr_v, mu_v, exact, tuple(f)) for (lr_v, mu_v, exact), f in ordered),
        tuple(f for f in families if f not in estimates),
        group,
    )


def _known(run: Run, key: str) -> float:
    return float(getattr(run, key)[0])


@dataclass(frozen=True)
class _Sample:
    """The first k steps of a run (or of its first elements), with guessed hyperparameters."""

    initial: Array
    grads: Array
    params: Array
    lr: tuple[float, ...]
    momentum: tuple[float, ...]
    nesterov: bool | None
    dampening: float
    weight_decay: float
    maximize: bool
    threads: int | None
    source: str = "sample"

    @property
    def steps(self) -> int:
        return len(self.lr)

    @property
    def dtype(self) -> str:
        return str(self.initial.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.initial.shape)


def _sample(run: Run, k: int) -> _Sample:
    arrays = [run.initial, *(run.grads[t] for t in range(k)), *(run.params[t] for t in range(k))]
    threads = run.threads
    if math.prod(run.shape) > _SAMPLE:  # the first elements, as a vector of them
        arrays, threads = [np.ascontiguousarray(a.reshape(-1)[:_SAMPLE]) for a in arrays], None
    return _Sample(arrays[0], np.stack(arrays[1 : 1 + k]), np.stack(arrays[1 + k :]),
                   (0.0,) * k, (0.0,) * k, run.nesterov, run.dampening, 0.0, run.maximize,
                   threads)  # fmt: skip


def _probe(run: Run, mu: float) -> list[tuple[Candidate, tuple[float, float, float]]]:
    """Each candidate's (A, B, C) at ``mu``: two steps from rest on unit gradients, lr 1."""
    kind = run.initial.dtype
    zero = np.zeros(2, kind)
    unit = np.array([[1, 0], [0, 1]], kind)
    tr = _Sample(zero, unit, unit, (1.0, 1.0), (mu, mu), run.nesterov, run.dampening, 0.0,
                 run.maximize, None)  # fmt: skip
    out = []
    with np.errstate(all="ignore"):
        for c in candidates(tr):
            try:
                p1, s = c.step(zero.copy(), unit[0], c.initial_state(zero), 0)
                p2, _ = c.step(p1, unit[1], s, 1)
            except Exception:  # a recipe that refuses this momentum: not probed
                continue
            p1, p2 = np.asarray(p1, np.float64), np.asarray(p2, np.float64)
            out.append((c, (-p1[0], -(p2[1] - p1[1]), -(p2[0] - p1[0]))))
    return out


def _search(
    runs: Sequence[Run], k: int, guesses: dict[str, list[tuple[float, float]]], *,
    lr: bool, momentum: bool,
) -> dict[str, tuple[float, float]]:  # fmt: skip
    """Each family's first guess whose replay reproduces the first k steps of every run
    checked (at most two) bit for bit."""
    samples = [_sample(r, k) for r in runs[:2]]
    found: dict[str, tuple[float, float]] = {}
    for i in range(PAIRS):
        tried: dict[tuple[float, float], list[str]] = {}
        for family, pairs in guesses.items():
            if family not in found and i < len(pairs):
                tried.setdefault(pairs[i], []).append(family)
        for (lr_v, mu_v), families in tried.items():
            ok = set(families)
            for s in samples:
                hyped = replace(s, lr=(lr_v,) * k, momentum=(mu_v,) * k)
                chosen = [c for c in candidates(hyped) if c.family in ok]
                ok = {c.family for c, m in replay(chosen, hyped, 0.0) if m.status == "bitwise"}
            found |= dict.fromkeys(ok, (lr_v, mu_v))
    return found


def run_candidates(tr: Any, inference: Inference, known: Any) -> list[Candidate]:
    """The candidates of ``tr`` (its settings included), each family with its inferred values
    (``known``: the recording's lr and momentum tuples, where not inferred)."""
    out: list[Candidate] = []
    for v in inference.values:
        lr = (v.lr,) * tr.steps if "lr" in inference.inferred else known[0]
        mu = (v.momentum,) * tr.steps if "momentum" in inference.inferred else known[1]
        out += [c for c in candidates(with_hypers(tr, lr, mu)) if c.family in v.candidates]
    return out


def replayed_with(
    tr: Any, inference: Inference, known: Any, tolerance: float
) -> list[tuple[Candidate, Match]]:
    """:func:`run_candidates` replayed on ``tr``, and each family no values fit, as a
    candidate that cannot run."""
    out = replay(run_candidates(tr, inference, known), tr, tolerance)
    why = "no lr and momentum of its recipe fit the first steps"
    for family in inference.unresolved:
        c = Candidate(family, _unfit, _unfit)
        out.append((c, Match(family, "cannot run", None, None, None, why)))
    return out


def _unfit(*_: object) -> Any:
    raise AssertionError("a candidate no values fit is never replayed")


def with_hypers(tr: Any, lr: Sequence[float], momentum: Sequence[float]) -> Replayable:
    """``tr`` (a recording's run) with this lr and momentum at each step."""
    return cast(Replayable, _Hyped(tr, tuple(lr), tuple(momentum)))


@dataclass(frozen=True)
class _Hyped:
    """``tr`` with the given lr and momentum."""

    tr: Any
    lr: tuple[float, ...]
    momentum: tuple[float, ...]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tr, name)
