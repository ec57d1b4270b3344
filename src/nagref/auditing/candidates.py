"""Every implementation nagref knows, replayed on a recorded trajectory's gradients."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .. import formulations, rules
from .._dtypes import numpy_dtype
from ..conventions import REGISTRY, Convention, Variant
from ..conventions import Hypers as StepHypers

__all__ = ["Candidate", "Described", "Replayable", "candidates"]

Array = npt.NDArray[Any]
#: (param, grad, state, step index) -> (param, state)
Step = Callable[[Array, Array, Any, int], tuple[Array, Any]]


class Described(Protocol):
    """A run of one tensor beyond its arrays, lr and momentum: the fixed hyperparameters,
    dtype, shape and threads."""

    @property
    def nesterov(self) -> bool | None: ...  # None: not recorded, try both
    @property
    def dampening(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def maximize(self) -> bool: ...
    @property
    def steps(self) -> int: ...
    @property
    def dtype(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def threads(self) -> int | None: ...  # the run's thread count, where it was recorded


class Replayable(Described, Protocol):
    """What the candidates read of a run of one tensor: its hyperparameters, dtype and shape."""

    @property
    def lr(self) -> Sequence[float]: ...  # one per step
    @property
    def momentum(self) -> Sequence[float]: ...


@dataclass(frozen=True)
class Candidate:
    """One implementation: a name, and how to replay it.

    ``family`` is the name without the setting (``"pytorch single-tensor,
    nesterov"``), ``layout`` the setting's layout part (``", channels_last"``
    or ``""``) and ``threads`` its thread count: what a whole-model audit
    combines a model's tensors by.
    """

    name: str  # e.g. "pytorch single-tensor, nesterov, 2 threads"
    step: Step
    initial_state: Callable[[Array], Any]
    family: str = ""  # "": the name
    layout: str = ""
    threads: int = 1

    def __post_init__(self) -> None:
        if not self.family:
            object.__setattr__(self, "family", self.name)


@dataclass(frozen=True)
class _Hypers:
    """A trajectory's hyperparameters, step by step."""

    tr: Replayable

    def lr(self, t: int) -> float:
        return self.tr.lr[t]

    def mu(self, t: int) -> float:
        return self.tr.momentum[t]

    def mu_next(self, t: int) -> float:
        return self.tr.momentum[min(t + 1, self.tr.steps - 1)]


_ZEROS: Callable[[Array], Any] = np.zeros_like
_COPY: Callable[[Array], Any] = np.copy


def candidates(trajectory: Replayable) -> Iterator[Candidate]:
    """The candidates that apply: both Nesterov settings where the file does not say.

    The rules and the published formulations take part where the trajectory
    has no weight decay, dampening or maximize; every registered convention where
    it can express the trajectory's (its capabilities) and models its dtype,
    each variant also under the settings that change its bits on a run of
    this shape and dtype (``Convention.settings_for``: PyTorch's thread counts
    and tensor layouts), named after it (``"pytorch single-tensor, 2 threads"``).
    Where the run recorded its thread count, only the count whose chunks it
    cut takes part.
    """
    tr = trajectory
    h = _Hypers(tr)
    settings = (False, True) if tr.nesterov is None else (tr.nesterov,)
    plain = tr.weight_decay == 0.0 and tr.dampening == 0.0 and not tr.maximize
    if plain:
        sgd: Step = lambda p, g, s, t: (rules.sgd(p, g, lr=h.lr(t)), s)  # noqa: E731
        yield Candidate("nagref.sgd", sgd, _ZEROS)
    for nesterov in settings:
        tag = ", nesterov" if nesterov else ""
        if plain:
            yield from _plain_forms(h, nesterov)
        for convention in REGISTRY.values():
            for variant in convention.variants:
                can = convention.can(variant)  # a variant may express less (tf-keras's legacy)
                if (
                    tr.dtype not in variant.dtypes
                    or (tr.dampening and not can.dampening)
                    or (tr.weight_decay and not can.weight_decay)
                    or (tr.maximize and not can.maximize)
                ):
                    continue
                state_dtype = convention.state_dtype(variant.options, tr.dtype)
                initial = _initial(convention, state_dtype)
                family = f"{convention.name} {variant.name}{tag}"
                laid = [("", {}), *convention.settings_for(variant, tr.shape, tr.dtype)]
                for label, extra in _run_threads(laid, tr.threads):
                    step = _convention(h, convention, variant, nesterov, extra)
                    threads = int(extra.get("threads", 1))  # type: ignore[call-overload]
                    layout = _THREADS.sub("", label)
                    yield Candidate(family + label, step, initial, family, layout, threads)


_THREADS = re.compile(r", \d+\+? threads$")
Setting = tuple[str, Mapping[str, object]]


def _run_threads(settings: list[Setting], threads: int | None) -> list[Setting]:
    """``settings``, or where the run's thread count is known, those of the count it cut."""
    if threads is None:
        return settings
    counts = {int(extra.get("threads", 1)) for _, extra in settings}  # type: ignore[call-overload]
    cut = max(c for c in counts if c <= threads)
    return [(label, extra) for label, extra in settings if extra.get("threads", 1) == cut]


def _initial(convention: Convention, state_dtype: str) -> Callable[[Array], Any]:
    """The state before the first step: None (PyTorch) or zeros of the state's dtype.

    One function per state dtype, so that the replay can give the candidates
    that start alike the same zeros (and run their identical steps once).
    """
    if convention.first_state == "none":
        return _none
    return _zeros(state_dtype)


@functools.cache
def _zeros(state_dtype: str) -> Callable[[Array], Any]:
    return lambda p: np.zeros(p.shape, numpy_dtype(state_dtype))


def _none(p: Array) -> None:
    return None  # PyTorch has no buffer before its first step


def _plain_forms(h: _Hypers, nesterov: bool) -> Iterator[Candidate]:
    if nesterov:
        yield Candidate(
            "nagref.nag (lecture form)",
            lambda p, g, s, t: rules.nag(p, g, s, lr=h.lr(t), momentum=h.mu(t)),
            _ZEROS,
        )
        yield Candidate(
            "formulations.sutskever_nag",
            lambda p, g, s, t: formulations.sutskever_nag(p, g, s, epsilon=h.lr(t), mu=h.mu(t)),
            _ZEROS,
        )
        yield Candidate(
            "formulations.bengio",
            lambda p, g, s, t: formulations.bengio(
                p, g, s, epsilon=h.lr(t), mu=h.mu(t), mu_next=h.mu_next(t)
            ),
            _ZEROS,
        )
        yield Candidate(
            "formulations.dozat",
            lambda p, g, s, t: formulations.dozat(
                p, g, s, eta=h.lr(t), mu=h.mu(t), mu_next=h.mu_next(t)
            ),
            _ZEROS,
        )
        yield Candidate(
            "formulations.nesterov_1983",
            lambda p, g, s, t: formulations.nesterov_1983(p, g, s, alpha=h.lr(t), beta=h.mu(t)),
            _COPY,
        )
    else:
        yield Candidate(
            "nagref.momentum (lecture form)",
            lambda p, g, s, t: rules.momentum(p, g, s, lr=h.lr(t), momentum=h.mu(t)),
            _ZEROS,
        )
        yield Candidate(
            "formulations.sutskever_cm",
            lambda p, g, s, t: formulations.sutskever_cm(p, g, s, epsilon=h.lr(t), mu=h.mu(t)),
            _ZEROS,
        )
        yield Candidate(
            "formulations.polyak",
            lambda p, g, s, t: formulations.polyak(p, g, s, alpha=h.lr(t), beta=h.mu(t)),
            _COPY,
        )


def _convention(
    h: _Hypers,
    convention: Convention,
    variant: Variant,
    nesterov: bool,
    extra: Mapping[str, object],
) -> Step:
    def step(p: Array, g: Array, s: Any, t: int) -> tuple[Array, Any]:
        hypers = StepHypers(
            lr=h.lr(t),
            momentum=h.mu(t),
            nesterov=nesterov,
            dampening=h.tr.dampening,
            weight_decay=h.tr.weight_decay or None,
            maximize=h.tr.maximize,
        )
        return convention.step(p, g, s, hypers, variant=variant, extra=extra)

    return step
