"""nagref's formulations against the papers, and the papers against each other.

:mod:`nagref.report.published` holds each update as printed, in plain Python
numbers. In float64 nagref must equal it bit for bit; in exact rational
arithmetic the formulations must coincide wherever the literature says they do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import nagref
from nagref import formulations, schedules
from nagref.report import published

# a diagonal quadratic f(x) = Σ ½λ_i x_i² − b_i x_i: ∇f = λx − b, in any number type
LAMBDA = [0.5, 1.0, 0.25, 0.03125, 0.875, 0.0625]
B = [0.25, -0.5, 1.0, 0.0, -0.125, 2.0]
X0 = [1.0, -2.0, 0.5, 3.0, -0.75, 0.125]
STEPS = 60


def grad(x: list[Any]) -> list[Any]:
    exact = isinstance(x[0], Fraction)
    lam, b = ([Fraction(c) for c in LAMBDA], [Fraction(c) for c in B]) if exact else (LAMBDA, B)
    return [li * xi - bi for li, xi, bi in zip(lam, x, b, strict=True)]


def _mu(t: int) -> float:  # a changing momentum: Nesterov's schedule
    return schedules.nesterov(t)


def _elementwise(fn: Callable[..., tuple[Any, Any]], *columns: list[Any], **scalars: Any) -> Any:
    pairs = [fn(*args, **scalars) for args in zip(*columns, strict=True)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _np(x: list[float]) -> np.ndarray:
    return np.array(x, dtype=np.float64)


def _same(ours: Any, theirs: list[float]) -> None:
    assert np.asarray(ours).tobytes() == _np(theirs).tobytes()


# -- nagref equals the printed formulas, bit for bit, in float64 -------------------------


def test_polyak() -> None:
    x, x_prev = X0, X0
    ours, ours_prev = _np(X0), _np(X0)
    for t in range(STEPS):
        beta = _mu(t)
        x, x_prev = _elementwise(published.polyak, x, grad(x), x_prev, alpha=0.5, beta=beta)
        ours, ours_prev = formulations.polyak(
            ours, _np(grad(list(ours))), ours_prev, alpha=0.5, beta=beta
        )
        _same(ours, x)
        _same(ours_prev, x_prev)


def test_nesterov_1983() -> None:
    y, x_prev = X0, X0
    ours, ours_prev = _np(X0), _np(X0)
    for k in range(STEPS):
        beta = schedules.nesterov(k)
        y, x_prev = _elementwise(published.nesterov_1983, y, grad(y), x_prev, alpha=1.0, beta=beta)
        ours, ours_prev = formulations.nesterov_1983(
            ours, _np(grad(list(ours))), ours_prev, alpha=1.0, beta=beta
        )
        _same(ours, y)
        _same(ours_prev, x_prev)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sutskever(nesterov: bool) -> None:
    theta, v = X0, [0.0] * len(X0)
    ours, ours_v = _np(X0), _np(v)
    step = formulations.sutskever_nag if nesterov else formulations.sutskever_cm
    for t in range(STEPS):
        mu = _mu(t)
        point = [published.sutskever_lookahead(a, b, mu=mu) for a, b in zip(theta, v, strict=True)]
        theta, v = _elementwise(
            published.sutskever, theta, grad(point if nesterov else theta), v, eps=0.5, mu=mu
        )
        at = formulations.sutskever_lookahead(ours, ours_v, mu=mu) if nesterov else ours
        ours, ours_v = step(ours, _np(grad(list(at))), ours_v, epsilon=0.5, mu=mu)
        _same(ours, theta)
        _same(ours_v, v)


def test_bengio() -> None:
    big, v = X0, [0.0] * len(X0)
    ours, ours_v = _np(X0), _np(v)
    for t in range(STEPS):
        mu, mu_next = _mu(t), _mu(t + 1)
        big, v = _elementwise(published.bengio, big, grad(big), v, eps=0.5, mu=mu, mu_next=mu_next)
        ours, ours_v = formulations.bengio(
            ours, _np(grad(list(ours))), ours_v, epsilon=0.5, mu=mu, mu_next=mu_next
        )
        _same(ours, big)
        _same(ours_v, v)


def test_dozat() -> None:
    theta, m = X0, [0.0] * len(X0)
    ours, ours_m = _np(X0), _np(m)
    for t in range(STEPS):
        mu, mu_next = _mu(t), _mu(t + 1)
        theta, m = _elementwise(
            published.dozat, theta, grad(theta), m, eta=0.5, mu=mu, mu_next=mu_next
        )
        ours, ours_m = formulations.dozat(
            ours, _np(grad(list(ours))), ours_m, eta=0.5, mu=mu, mu_next=mu_next
        )
        _same(ours, theta)
        _same(ours_m, m)


def test_ruder_is_the_core_rules() -> None:
    w, big_v = X0, [0.0] * len(X0)
    ours, ours_v = _np(X0), _np(big_v)
    for t in range(STEPS):
        gamma = _mu(t)
        point = [
            published.ruder_lookahead(a, b, gamma=gamma) for a, b in zip(w, big_v, strict=True)
        ]
        w, big_v = _elementwise(published.ruder, w, grad(point), big_v, eta=0.5, gamma=gamma)
        at = nagref.lookahead(ours, ours_v, momentum=gamma)
        ours, ours_v = nagref.nag(ours, _np(grad(list(at))), ours_v, lr=0.5, momentum=gamma)
        _same(ours, w)
        _same(ours_v, big_v)


# -- where the literature says they coincide, they do, exactly ---------------------------


def _fractions(x: list[float]) -> list[Fraction]:
    return [Fraction(v) for v in x]


def _exact_trajectories(eps: Fraction, mus: list[Fraction]) -> dict[str, list[list[Fraction]]]:
    """Every form's stored point after each step, from a zero state, exactly."""
    x0 = _fractions(X0)
    zero = [Fraction(0)] * len(x0)
    out: dict[str, list[list[Fraction]]] = {
        k: [] for k in ("sutskever", "bengio", "nesterov", "dozat", "ruder", "look")
    }
    theta, v = x0, zero
    big, bv = x0, zero
    y, x_prev = x0, x0
    th_d, m = x0, zero
    w, big_v = x0, zero
    for t in range(len(mus) - 1):
        mu, mu_next = mus[t], mus[t + 1]
        look = [published.sutskever_lookahead(a, b, mu=mu) for a, b in zip(theta, v, strict=True)]
        theta, v = _elementwise(published.sutskever, theta, grad(look), v, eps=eps, mu=mu)
        big, bv = _elementwise(
            published.bengio, big, grad(big), bv, eps=eps, mu=mu, mu_next=mu_next
        )
        y, x_prev = _elementwise(
            published.nesterov_1983, y, grad(y), x_prev, alpha=eps, beta=mu_next
        )
        th_d, m = _elementwise(
            published.dozat, th_d, grad(th_d), m, eta=eps, mu=mu, mu_next=mu_next
        )
        ahead = [published.ruder_lookahead(a, b, gamma=mu) for a, b in zip(w, big_v, strict=True)]
        w, big_v = _elementwise(published.ruder, w, grad(ahead), big_v, eta=eps, gamma=mu)
        out["sutskever"].append(theta)
        out["look"].append(
            [published.sutskever_lookahead(a, b, mu=mu_next) for a, b in zip(theta, v, strict=True)]
        )
        out["bengio"].append(big)
        out["nesterov"].append(x_prev)  # x_k, the gradient-step point
        out["dozat"].append(th_d)
        out["ruder"].append(w)
    return out


@pytest.mark.parametrize("schedule", ["constant", "nesterov"])
def test_the_nag_formulations_coincide_exactly(schedule: str) -> None:
    steps = 12
    if schedule == "constant":
        mus = [Fraction(7, 8)] * (steps + 1)
    else:  # exact values of a changing momentum
        mus = [Fraction(schedules.nesterov(k)) for k in range(steps + 1)]
    runs = _exact_trajectories(Fraction(1, 2), mus)
    # Bengio's Θ_t is Sutskever's look-ahead θ_t + μ_t v_t, at every step
    assert runs["bengio"] == runs["look"]
    # Dozat's θ is Bengio's Θ (his m is lr-free: m = −v/η)
    assert runs["dozat"] == runs["bengio"]
    # the seeds' lecture form is Sutskever's with V = −v
    assert runs["ruder"] == runs["sutskever"]
    # Nesterov's gradient-step point x_k is Sutskever's θ_{k+1}, and his y_{k+1}
    # the look-ahead, when β_k is the next step's μ_{k+1}
    assert runs["nesterov"] == runs["sutskever"]


def test_polyak_is_sutskevers_classical_momentum_exactly() -> None:
    x0, zero = _fractions(X0), [Fraction(0)] * len(X0)
    theta, v, x, x_prev = x0, zero, x0, x0
    for t in range(15):
        mu = Fraction(schedules.nesterov(t))
        theta, v = _elementwise(
            published.sutskever, theta, grad(theta), v, eps=Fraction(1, 4), mu=mu
        )
        x, x_prev = _elementwise(
            published.polyak, x, grad(x), x_prev, alpha=Fraction(1, 4), beta=mu
        )
        assert x == theta


@pytest.mark.parametrize("nesterov", [False, True])
def test_the_framework_forms_agree_exactly_and_take_the_long_first_step(nesterov: bool) -> None:
    lr, mu = Fraction(1, 4), Fraction(9, 10)
    x0, zero = _fractions(X0), [Fraction(0)] * len(X0)
    p_torch, b = x0, None
    p_keras, v = x0, zero
    p_optax, tr = x0, zero
    for t in range(10):
        p_torch, b = _elementwise(
            lambda p, g, bb: published.pytorch(p, g, bb, lr=lr, mu=mu, nesterov=nesterov),
            p_torch,
            grad(p_torch),
            b if b is not None else [None] * len(x0),
        )
        p_keras, v = _elementwise(
            lambda p, g, vv: published.keras(p, g, vv, lr=lr, mu=mu, nesterov=nesterov),
            p_keras,
            grad(p_keras),
            v,
        )
        p_optax, tr = _elementwise(
            lambda p, g, tt: published.optax(p, g, tt, lr=lr, mu=mu, nesterov=nesterov),
            p_optax,
            grad(p_optax),
            tr,
        )
        assert p_torch == p_keras == p_optax
        assert b == tr
        assert v == [-lr * bb for bb in b]  # the velocity is −lr times the buffer
        if t == 0:
            factor = (1 + mu) if nesterov else 1
            first = [a - factor * lr * g for a, g in zip(x0, grad(x0), strict=True)]
            assert p_keras == first  # Θ_1 = Θ_0 − (1 + μ) lr g_0 for Nesterov


# -- the schedules, as printed --------------------------------------------------------


def test_nesterov_and_fista_sequences() -> None:
    for k in range(200):
        assert schedules.nesterov(k) == (published.nesterov_a(k) - 1) / published.nesterov_a(k + 1)
    for k in range(1, 200):
        assert schedules.fista(k) == (published.fista_t(k) - 1) / published.fista_t(k + 1)
        assert published.fista_t(k) == published.nesterov_a(k - 1)  # t_k = a_{k−1}
    assert [round(schedules.nesterov(k), 6) for k in range(8)] == [
        0.0,
        0.281754,
        0.434043,
        0.531064,
        0.598779,
        0.648923,
        0.687646,
        0.7185,
    ]


def test_sutskever_schedule_as_printed() -> None:
    for t in range(0, 200_000, 50):
        printed = published.sutskever_schedule(t, 0.999)
        ours = schedules.sutskever(t, mu_max=0.999)
        n = t // 250 + 1
        if n & (n - 1) == 0:  # a power of two: log2 is exact, so is the printed form
            assert ours == printed
        else:
            assert abs(ours - printed) <= math.ulp(ours)
        assert ours == min(float(Fraction(2 * n - 1, 2 * n)), 0.999)


def test_k_over_k3_is_sutskevers_approximation_shifted() -> None:
    for t in range(500):
        assert schedules.k_over_k3(t + 3) == pytest.approx(1 - 3 / (t + 5), abs=1e-15)
        assert Fraction(t + 2, t + 5) == 1 - Fraction(3, t + 5)
