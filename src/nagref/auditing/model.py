"""The whole-model audit: every candidate replayed per tensor, one verdict for the run.

Each tensor of a ``.trajectory`` file is replayed on its own (its own
length, layout, group and steps, as the frameworks update it), and the
results combine: a candidate matches the run only where it matches every
tensor. Candidates differ per tensor only in their settings (PyTorch's
thread count and tensor layout), so a run-level candidate is a family
(``"pytorch foreach, nesterov"``), a layout and a thread count, and on each
tensor stands for the setting of that family that count and layout give.
"""

from __future__ import annotations

import math
import os
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._tables import aligned
from .candidates import Array, candidates
from .evidence import uninformative
from .infer import Inference, infer_hypers, replayed_with
from .model_trajectory import ModelTrajectory, TensorEntry, open_model
from .report import (
    ORDER,
    Divergence,
    Match,
    Ranked,
    Status,
    bitwise_verdict,
    json_ready,
    outcome,
    replay,
    tolerance_of,
)

__all__ = ["ModelMatch", "ModelReport", "TensorAudit", "TensorTrajectory", "audit_model",
           "format_model_report", "tensor_trajectories"]  # fmt: skip


@dataclass(frozen=True)
class _Lazy:
    """A tensor's gradients or parameters, step by step, each read when indexed."""

    model: ModelTrajectory
    entry: TensorEntry
    offsets: array[int]

    def __getitem__(self, t: int) -> Array:
        return self.model.read(self.entry, self.offsets[t])


@dataclass(frozen=True)
class TensorTrajectory:
    """One tensor of a recorded run, read lazily: the steps that updated it, its group's
    hyperparameters at them."""

    model: ModelTrajectory
    entry: TensorEntry
    lr: tuple[float, ...]
    momentum: tuple[float, ...]
    nesterov: bool | None
    dampening: float
    weight_decay: float
    maximize: bool
    threads: int | None

    @property
    def steps(self) -> int:
        return len(self.lr)

    @property
    def source(self) -> str:
        return f"{self.model.source}: {self.entry.name}"

    @property
    def dtype(self) -> str:
        return self.entry.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self.entry.shape

    @property
    def initial(self) -> Array:
        return self.model.read(self.entry, self.entry.initial_at)

    @property
    def grads(self) -> _Lazy:
        return _Lazy(self.model, self.entry, self.entry.grad_at)

    @property
    def params(self) -> _Lazy:
        return _Lazy(self.model, self.entry, self.entry.param_at)


def tensor_trajectories(model: ModelTrajectory) -> list[TensorTrajectory]:
    """Each recorded tensor that some step updated, with its group's hyperparameters."""
    threads = model.run.get("threads")
    out = []
    for entry in model.tensors:
        if not entry.steps:
            continue
        group = model.groups[entry.group]
        fixed: dict[str, Any] = group.fixed
        at = [s - 1 for s in entry.steps]
        out.append(TensorTrajectory(
            model, entry, tuple(group.lr[i] for i in at), tuple(group.momentum[i] for i in at),
            fixed["nesterov"], float(fixed["dampening"]), float(fixed["weight_decay"]),
            bool(fixed["maximize"]), threads if isinstance(threads, int) else None,
        ))  # fmt: skip
    return out


@dataclass(frozen=True)
class TensorAudit:
    """One tensor's replays, and how many run-level candidates it matched bit for bit."""

    name: str
    group: int
    dtype: str
    shape: tuple[int, ...]
    updates: int
    bitwise: int  # run-level candidates that reproduce it bit for bit
    candidates: int  # run-level candidates replayed on it
    #: where it tells none apart, what in its values left nothing to part on
    #: (:func:`nagref.auditing.evidence.uninformative`); empty otherwise
    why: tuple[str, ...] = ()

    @property
    def tells_apart(self) -> bool:
        """Whether it rules out some candidate (one that matched no tensor counts too)."""
        return self.bitwise < self.candidates


@dataclass(frozen=True)
class ModelMatch:
    """A run-level candidate: its worst tensor decides.

    ``history`` is the largest ULP distance over the tensors each step updated
    (the run's steps, 0 where none was), up to the step it left a tensor at.
    """

    candidate: str
    status: Status
    max_ulp: float | None  # over every tensor, inf where a NaN met a number
    tensors_bitwise: int
    first_tensor: str | None  # the tensor it leaves first (the earliest step)
    first: Divergence | None
    reason: str | None = None
    history: tuple[float, ...] = ()

    def rank(self) -> tuple[int, float, int, int]:
        """The report's order: bitwise, within (closest first), then the latest to diverge,
        then the most tensors bitwise."""
        ulp = self.max_ulp if self.status == "within" and self.max_ulp is not None else 0.0
        step = -self.first.step if self.first is not None else 0
        return ORDER[self.status], ulp, step, -self.tensors_bitwise


@dataclass(frozen=True)
class ModelReport(Ranked):
    """A whole run's audit: its tensors, and the run-level candidates ranked best first."""

    source: str
    run: dict[str, object]
    steps: int
    complete: bool
    tolerance_ulps: float
    tensors: tuple[TensorAudit, ...]
    matches: tuple[ModelMatch, ...]
    #: each group's inferred lr and momentum (where not recorded, or with --infer)
    inference: tuple[Inference, ...] = ()

    @property
    def verdict(self) -> str:
        return self._verdict() + "".join(i.note(self.bitwise) for i in self.inference)

    def _verdict(self) -> str:
        if self.bitwise:
            return bitwise_verdict(self.bitwise, "every tensor")
        within = [m for m in self.matches if m.status == "within"]
        if within:
            listed = "; ".join(f"{m.candidate} ({m.max_ulp:g} ULP)" for m in within)
            return (f"VERDICT: no bitwise match; the same formula with another rounding "
                    f"(within {self.tolerance_ulps:g} ULP on every tensor): {listed}")  # fmt: skip
        best = self.matches[0] if self.matches else None
        if best is None or best.first is None:
            return "VERDICT: no candidate could replay this run"
        d = best.first
        return (f"VERDICT: no match; closest: {best.candidate}, which leaves tensor "
                f"{best.first_tensor!r} at step {d.step}, element {list(d.index)}: {d.replayed!r} "
                f"replayed, {d.recorded!r} recorded ({d.ulps:g} ULP)")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: numbers and nulls, as :meth:`AuditReport.to_json`."""
        out = json_ready(self)
        out |= {"verdict": self.verdict, "bitwise": self.bitwise, "exit_code": self.exit_code}
        return dict(out)


Key = tuple[str, str, int]  # family, layout, threads


def audit_model(
    path: str | os.PathLike[str],
    *,
    tolerance_ulps: float = 4.0,
    progress: Callable[[int, int, str], None] | None = None,
    infer: bool = False,
) -> ModelReport:
    """Whose optimizer is this run's? Every candidate on every tensor, then one verdict.

    ``progress(done, total, tensor)`` is called before each tensor. A group
    whose lr or momentum the recording lacks (or every group, with ``infer``)
    has them inferred from its tensors' first two steps (:mod:`.infer`).

    Raises:
        TrajectoryError: the file is not a readable, consistent recording, or the lr and
            momentum a group lacks cannot be inferred.
    """
    tolerance = tolerance_of(tolerance_ulps)
    if not isinstance(infer, bool):
        raise TypeError(f"infer must be True or False, got {type(infer).__name__}")
    with open_model(path) as model:  # one handle for every array read, closed on the way out
        runs = tensor_trajectories(model)
        inferred = _infer_groups(runs, infer)
        tables: list[dict[Key, Match]] = []
        for i, tr in enumerate(runs):
            if progress is not None:
                progress(i, len(runs), tr.entry.name)
            if (found := inferred.get(tr.entry.group)) is not None:
                replayed = replayed_with(tr, found, (tr.lr, tr.momentum), tolerance)
            else:
                replayed = replay(list(candidates(tr)), tr, tolerance)
            tables.append({(c.family, c.layout, c.threads): m for c, m in replayed})
        keys = _run_keys(tables, runs[0].threads if runs else None)
        audits = []
        for i, tr in enumerate(runs):
            bitwise = sum(1 for _, picks in keys if (m := picks[i]) and m.status == "bitwise")
            e, size = tr.entry, math.prod(tr.entry.shape)
            # what left it nothing to part on, read again (a tensor that tells none apart)
            why = () if bitwise < len(keys) else tuple(uninformative(size, tr.grads, tr.steps))
            audits.append(
                TensorAudit(e.name, e.group, e.dtype, e.shape, tr.steps, bitwise, len(keys), why)
            )
    matches = [_combine(name, picks, runs, model.steps) for name, picks in keys]
    matches.sort(key=ModelMatch.rank)
    return ModelReport(model.source, dict(model.run), model.steps, model.complete, tolerance,
                       tuple(audits), tuple(matches), tuple(inferred.values()))  # fmt: skip


def _infer_groups(runs: list[TensorTrajectory], every: bool) -> dict[int, Inference]:
    """Each group's inferred lr and momentum, where it lacks them (every group's, ``every``);
    its largest tensors first, as they are the ones the guesses are checked on."""
    out = {}
    for group in sorted({tr.entry.group for tr in runs}):
        mine = sorted((tr for tr in runs if tr.entry.group == group), key=lambda tr: -tr.entry.size)
        lr = every or any(math.isnan(x) for tr in mine for x in tr.lr)
        mu = every or any(math.isnan(x) for tr in mine for x in tr.momentum)
        if lr or mu:
            out[group] = infer_hypers(mine, lr=lr, momentum=mu, group=group)
    return out


def _run_keys(
    tables: list[dict[Key, Match]], threads: int | None
) -> list[tuple[str, list[Match | None]]]:
    """Each run-level candidate's name, and the match standing for it on each tensor."""
    families: dict[str, set[str]] = {}
    counts: set[int] = {1} if threads is None else {threads}
    for table in tables:
        for family, layout, count in table:
            families.setdefault(family, set()).add(layout)
            if threads is None:
                counts.add(count)
    out, seen = [], set()
    for family, layouts in families.items():
        for layout in sorted(layouts):
            for count in sorted(counts):
                picks = [_pick(table, family, layout, count) for table in tables]
                signature = (family, tuple(id(p) for p in picks))
                if signature in seen:
                    continue  # this many threads cut no tensor differently from fewer
                seen.add(signature)
                cut = max((k[2] for t, p in zip(tables, picks, strict=True) if p is not None
                           for k, m in t.items() if m is p), default=1)  # fmt: skip
                out.append((family + layout + (f", {count} threads" if cut > 1 else ""), picks))
    return out


def _pick(table: dict[Key, Match], family: str, layout: str, threads: int) -> Match | None:
    """The setting of ``family`` a tensor ran under with ``layout`` and ``threads``."""
    for laid in (layout, ""):  # a layout that changes nothing on this tensor is the plain one
        counts = [k[2] for k in table if k[0] == family and k[1] == laid and k[2] <= threads]
        if counts:
            return table[(family, laid, max(counts))]
    return None


def _combine(
    name: str, picks: list[Match | None], runs: list[TensorTrajectory], steps: int
) -> ModelMatch:
    tensors = [tr.entry.name for tr in runs]
    missing = [t for t, p in zip(tensors, picks, strict=True) if p is None]
    if missing:
        why = f"not a candidate for tensor {missing[0]!r} (its dtype or hyperparameters)"
        return ModelMatch(name, "cannot run", None, 0, missing[0], None, why)
    found = [(t, p) for t, p in zip(tensors, picks, strict=True) if p is not None]
    for t, p in found:
        if p.status == "cannot run":
            return ModelMatch(name, "cannot run", None, 0, t, None, f"{t}: {p.reason}")
    bitwise = sum(p.status == "bitwise" for _, p in found)
    worst = max((p.max_ulp or 0.0 for _, p in found), default=0.0)
    status: Status = "bitwise"
    if any(p.status == "diverges" for _, p in found):
        status = "diverges"
    elif any(p.status == "within" for _, p in found):
        status = "within"
    left = [(p.first.step, t, p.first) for t, p in found if p.first is not None]
    first = min(left, key=lambda x: x[0]) if left else None
    return ModelMatch(name, status, worst, bitwise, first[1] if first else None,
                      first[2] if first else None, None,
                      _history(picks, runs, steps))  # fmt: skip


def _history(
    picks: list[Match | None], runs: list[TensorTrajectory], steps: int
) -> tuple[float, ...]:
    """The largest ULP distance at each of the run's steps, over the tensors it updated, up
    to the first step a tensor's replay was dropped at."""
    worst, end = [0.0] * steps, steps
    for p, tr in zip(picks, runs, strict=True):
        if p is None:
            continue
        for k, ulps in enumerate(p.history):
            at = tr.entry.steps[k] - 1
            worst[at] = max(worst[at], ulps)
        if len(p.history) < tr.steps:  # dropped at its last step replayed
            end = min(end, tr.entry.steps[len(p.history) - 1] if p.history else 0)
    return tuple(worst[:end])


def format_model_report(report: ModelReport) -> str:
    """The run's audit as text: what was recorded, each tensor, the ranking, the verdict."""
    run = report.run
    threads = run.get("threads")
    made = f"{run.get('framework') or 'an unnamed framework'} {run.get('version') or ''}".strip()
    optimizer = f" {run['optimizer']}" if run.get("optimizer") else ""
    cut = "" if report.complete else " (the recording stops there: it was not closed)"
    lines = [
        f"audit of {report.source}: {made}{optimizer}, "
        f"{_threads(threads)}, {report.steps} steps{cut}, "
        f"{len(report.tensors)} tensors" + "".join(f"; {i.summary()}" for i in report.inference),
        "",
    ]
    rows = [
        (t.name, t.dtype, str(t.shape), str(t.updates),
         f"{t.bitwise} of {t.candidates}"
         + ("" if t.tells_apart else ": tells none apart" + (f" ({'; '.join(t.why)})"
                                                             if t.why else "")))
        for t in report.tensors
    ]  # fmt: skip
    lines += [*aligned(("tensor", "dtype", "shape", "updates", "bitwise candidates"), rows), ""]
    header = ("rank", "candidate", "result", "tensors bitwise", "max ulp",
              "first divergence: replayed vs recorded")  # fmt: skip
    ranked: list[tuple[str, ...]] = []
    total = len(report.tensors)
    for i, m in enumerate(report.matches, 1):
        where = m.reason or "-"
        if m.first is not None:
            d = m.first
            where = (f"{m.first_tensor}, step {d.step}, element {list(d.index)}: "
                     f"{d.replayed!r} vs {d.recorded!r} ({d.ulps:g} ULP)")  # fmt: skip
        result = outcome(m.status, report.tolerance_ulps)
        ulp = "-" if m.max_ulp is None else f"{m.max_ulp:g}"
        ranked.append((str(i), m.candidate, result, f"{m.tensors_bitwise} of {total}", ulp, where))
    lines += [*aligned(header, ranked), "", report.verdict]
    return "\n".join(lines)


def _threads(threads: object) -> str:
    if not isinstance(threads, int):
        return "threads not recorded"
    return f"{threads} thread" + ("s" if threads != 1 else "")
