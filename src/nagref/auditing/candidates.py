"""Every implementation nagref knows, replayed on a recorded trajectory's gradients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import formulations, rules
from ..conventions import keras, optax, pytorch, tensorflow
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
    """The candidates that apply: both Nesterov settings where the file does not say."""
    tr = trajectory
    h = _Hypers(tr)
    settings = (False, True) if tr.nesterov is None else (tr.nesterov,)
    plain = tr.weight_decay == 0.0 and tr.dampening == 0.0  # forms without either
    if plain:
        yield Candidate("nagref.sgd", lambda p, g, s, t: (rules.sgd(p, g, lr=h.lr(t)), s), _ZEROS)
    for nesterov in settings:
        tag = ", nesterov" if nesterov else ""
        if plain:
            yield from _plain_forms(h, nesterov)
        for variant in ("single-tensor", "foreach", "fused"):
            if variant == "fused" and tr.dtype == "float16":
                continue
            yield Candidate(f"pytorch {variant}{tag}", _pytorch(h, variant, nesterov), _none)
        if tr.dampening == 0.0:
            for backend in keras.BACKENDS:
                yield Candidate(f"keras {backend}{tag}", _keras(h, backend, nesterov), _ZEROS)
        if plain:
            for jit in (False, True):
                name = f"optax {'jit' if jit else 'eager'}{tag}"
                yield Candidate(name, _optax(h, jit, nesterov), _ZEROS)
            yield Candidate(f"tensorflow apply_momentum{tag}", _tensorflow(h, nesterov), _ZEROS)


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


def _pytorch(h: _Hypers, variant: str, nesterov: bool) -> Step:
    def step(p: Array, g: Array, s: Any, t: int) -> tuple[Array, Any]:
        return pytorch.sgd(
            p,
            g,
            s,
            lr=h.lr(t),
            momentum=h.mu(t),
            dampening=h.tr.dampening,
            weight_decay=h.tr.weight_decay,
            nesterov=nesterov,
            foreach=variant == "foreach",
            fused=variant == "fused",
        )

    return step


def _keras(h: _Hypers, backend: str, nesterov: bool) -> Step:
    def step(p: Array, g: Array, s: Any, t: int) -> tuple[Array, Any]:
        p, v = keras.sgd(
            p,
            g,
            s,
            learning_rate=h.lr(t),
            momentum=h.mu(t),
            nesterov=nesterov,
            weight_decay=h.tr.weight_decay or None,
            backend=backend,
        )
        return p, (np.zeros_like(p) if v is None else v)

    return step


def _optax(h: _Hypers, jit: bool, nesterov: bool) -> Step:
    def step(p: Array, g: Array, s: Any, t: int) -> tuple[Array, Any]:
        return optax.sgd(
            p, g, s, learning_rate=h.lr(t), momentum=h.mu(t), nesterov=nesterov, jit=jit
        )

    return step


def _tensorflow(h: _Hypers, nesterov: bool) -> Step:
    def step(p: Array, g: Array, s: Any, t: int) -> tuple[Array, Any]:
        return tensorflow.apply_momentum(
            p, s, g, lr=h.lr(t), momentum=h.mu(t), use_nesterov=nesterov
        )

    return step
