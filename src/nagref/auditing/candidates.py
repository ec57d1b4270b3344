"""Every implementation nagref knows, replayed on a recorded trajectory's gradients."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import formulations, rules
from .._dtypes import numpy_dtype
from ..conventions import REGISTRY, Convention, Variant
from ..conventions import Hypers as StepHypers
from .trajectory import Trajectory

__all__ = ["Candidate", "candidates"]

Array = npt.NDArray[Any]
#: (param, grad, state, step index) -> (param, state)
Step = Callable[[Array, Array, Any, int], tuple[Array, Any]]


@dataclass(frozen=True)
class Candidate:
    """One implementation: a name, and how to replay it."""

    name: str  # e.g. "pytorch single-tensor, nesterov"
    step: Step
    initial_state: Callable[[Array], Any]


@dataclass(frozen=True)
class _Hypers:
    """A trajectory's hyperparameters, step by step."""

    tr: Trajectory

    def lr(self, t: int) -> float:
        return self.tr.lr[t]

    def mu(self, t: int) -> float:
        return self.tr.momentum[t]

    def mu_next(self, t: int) -> float:
        return self.tr.momentum[min(t + 1, self.tr.steps - 1)]


_ZEROS: Callable[[Array], Any] = np.zeros_like
_COPY: Callable[[Array], Any] = np.copy


def candidates(trajectory: Trajectory) -> Iterator[Candidate]:
    """The candidates that apply: both Nesterov settings where the file does not say.

    The rules and the published formulations take part where the trajectory
    has no weight decay, dampening or maximize; every registered convention where
    it can express the trajectory's (its capabilities) and models its dtype,
    each variant also under the settings that change its bits on a run of
    this shape and dtype (``Convention.settings_for``: PyTorch's thread counts
    and tensor layouts), named after it (``"pytorch single-tensor, 2 threads"``).
    """
    tr = trajectory
    h = _Hypers(tr)
    settings = (False, True) if tr.nesterov is None else (tr.nesterov,)
    plain = tr.weight_decay == 0.0 and tr.dampening == 0.0 and not tr.maximize
    if plain:
        yield Candidate("nagref.sgd", lambda p, g, s, t: (rules.sgd(p, g, lr=h.lr(t)), s), _ZEROS)
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
                shape = tuple(tr.initial.shape)
                for label, extra in (("", {}), *convention.settings_for(variant, shape, tr.dtype)):
                    step = _convention(h, convention, variant, nesterov, extra)
                    name = f"{convention.name} {variant.name}{tag}{label}"
                    yield Candidate(name, step, initial)


def _initial(convention: Convention, state_dtype: str) -> Callable[[Array], Any]:
    """The state before the first step: None (PyTorch) or zeros of the state's dtype."""
    if convention.first_state == "none":
        return _none
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
