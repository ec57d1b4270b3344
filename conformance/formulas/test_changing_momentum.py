"""Every rule, formulation and convention takes a momentum that changes each step.

With dyadic data (short significands) every operation below is exact, so a
fused multiply-add and two roundings agree, and each implementation must
equal its published formula evaluated in rational arithmetic, step by step,
with the momentum of that step in the right place.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import nagref
from nagref import formulations
from nagref.conventions import keras, optax, pytorch, tensorflow
from nagref.report import published

LAMBDA = [Fraction(1), Fraction(1, 2), Fraction(1, 4), Fraction(3, 4)]
X0 = [Fraction(1), Fraction(-2), Fraction(3, 2), Fraction(5, 4)]
LR = Fraction(1, 8)
MUS = [
    Fraction(1, 2),
    Fraction(3, 4),
    Fraction(1, 4),
    Fraction(7, 8),
    Fraction(5, 8),
    Fraction(1, 2),
]
STEPS = len(MUS) - 1


def grad(x: list[Any]) -> list[Any]:
    return [lam * xi for lam, xi in zip(LAMBDA, x, strict=True)]


def _exact(step: Callable[..., tuple[Any, Any]], x: list[Any], s: list[Any], **h: Any) -> Any:
    pairs = [step(*args, **h) for args in zip(x, grad(x), s, strict=True)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _np(x: list[Fraction]) -> np.ndarray:
    return np.array([float(v) for v in x])


def _equal(ours: np.ndarray, exact: list[Fraction]) -> None:
    assert [Fraction(float(v)) for v in ours] == exact


@pytest.mark.parametrize("nesterov", [False, True])
def test_the_frameworks_take_each_steps_momentum(nesterov: bool) -> None:
    zero = [Fraction(0)] * len(X0)
    runs: dict[str, Any] = {
        name: (_np(X0), None if name == "pytorch" else np.zeros(len(X0)))
        for name in ("pytorch", "keras", "optax", "tensorflow")
    }
    exact = {"pytorch": (X0, [None] * len(X0)), "keras": (X0, zero), "optax": (X0, zero)}
    for mu in MUS[:STEPS]:
        p, b = runs["pytorch"]
        runs["pytorch"] = pytorch.sgd(
            p,
            _np(grad(list(map(Fraction, p)))),
            b,
            lr=float(LR),
            momentum=float(mu),
            nesterov=nesterov,
        )
        p, v = runs["keras"]
        runs["keras"] = keras.sgd(
            p,
            _np(grad(list(map(Fraction, p)))),
            v,
            learning_rate=float(LR),
            momentum=float(mu),
            nesterov=nesterov,
        )
        p, t = runs["optax"]
        runs["optax"] = optax.sgd(
            p,
            _np(grad(list(map(Fraction, p)))),
            t,
            learning_rate=float(LR),
            momentum=float(mu),
            nesterov=nesterov,
        )
        p, a = runs["tensorflow"]
        runs["tensorflow"] = tensorflow.apply_momentum(
            p,
            a,
            _np(grad(list(map(Fraction, p)))),
            lr=float(LR),
            momentum=float(mu),
            use_nesterov=nesterov,
        )
        for name, form in (
            ("pytorch", published.pytorch),
            ("keras", published.keras),
            ("optax", published.optax),
        ):
            x, s = exact[name]
            exact[name] = _exact(form, x, s, lr=LR, mu=mu, nesterov=nesterov)
        for name in ("pytorch", "keras", "optax"):
            _equal(runs[name][0], exact[name][0])
            _equal(runs[name][1], exact[name][1])
        # TensorFlow's accumulator is PyTorch's buffer, from a zero start
        _equal(runs["tensorflow"][0], exact["pytorch"][0])


def test_the_rules_and_formulations_take_each_steps_momentum() -> None:
    zero = [Fraction(0)] * len(X0)
    w, big_v = _np(X0), np.zeros(len(X0))
    theta, v = _np(X0), np.zeros(len(X0))
    big, bv = _np(X0), np.zeros(len(X0))
    ex_w, ex_v = X0, zero
    ex_big, ex_bv = X0, zero
    for t in range(STEPS):
        mu, mu_next = MUS[t], MUS[t + 1]
        point = nagref.lookahead(w, big_v, momentum=float(mu))
        w, big_v = nagref.nag(
            w, _np(grad(list(map(Fraction, point)))), big_v, lr=float(LR), momentum=float(mu)
        )
        look = formulations.sutskever_lookahead(theta, v, mu=float(mu))
        theta, v = formulations.sutskever_nag(
            theta, _np(grad(list(map(Fraction, look)))), v, epsilon=float(LR), mu=float(mu)
        )
        big, bv = formulations.bengio(
            big,
            _np(grad(list(map(Fraction, big)))),
            bv,
            epsilon=float(LR),
            mu=float(mu),
            mu_next=float(mu_next),
        )
        ahead = [published.ruder_lookahead(a, b, gamma=mu) for a, b in zip(ex_w, ex_v, strict=True)]
        pairs = [
            published.ruder(a, g, b, eta=LR, gamma=mu)
            for a, g, b in zip(ex_w, grad(ahead), ex_v, strict=True)
        ]
        ex_w, ex_v = [p[0] for p in pairs], [p[1] for p in pairs]
        ex_big, ex_bv = _exact(published.bengio, ex_big, ex_bv, eps=LR, mu=mu, mu_next=mu_next)
        _equal(w, ex_w)
        _equal(big_v, ex_v)
        _equal(theta, ex_w)  # Sutskever's θ is the lecture W
        _equal(-v, ex_v)
        _equal(big, ex_big)  # Bengio's Θ: the look-ahead with the next step's μ
        _equal(
            big,
            [
                published.sutskever_lookahead(a, -b, mu=mu_next)
                for a, b in zip(ex_w, ex_v, strict=True)
            ],
        )
