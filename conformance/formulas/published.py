"""The published update rules, element by element, in plain Python numbers.

Written from the papers (and, for the frameworks, from their documented
formulas) without nagref: every function takes and returns Python numbers,
so the same code runs in float64 (to compare with nagref bit for bit) and in
exact rational arithmetic (``fractions.Fraction``, to show where the
formulations coincide exactly). Each expression is the printed one, left to
right.
"""

from __future__ import annotations

import math
from typing import Any

#: A float or a fractions.Fraction: the functions are generic in the number type.
N = Any


# -- the papers -------------------------------------------------------------------


def polyak(x: N, g: N, x_prev: N, *, alpha: N, beta: N) -> tuple[N, N]:
    """Polyak 1964: x_{k+1} = x_k − α∇f(x_k) + β(x_k − x_{k−1})."""
    return x - alpha * g + beta * (x - x_prev), x


def nesterov_1983(y: N, g: N, x_prev: N, *, alpha: N, beta: N) -> tuple[N, N]:
    """Nesterov 1983: x_k = y_k − α∇f(y_k); y_{k+1} = x_k + β_k(x_k − x_{k−1})."""
    x = y - alpha * g
    return x + beta * (x - x_prev), x


def sutskever(theta: N, g: N, v: N, *, eps: N, mu: N) -> tuple[N, N]:
    """Sutskever et al. 2013, eqs. (1)-(4): v' = μv − ε∇f; θ' = θ + v'."""
    v_new = mu * v - eps * g
    return theta + v_new, v_new


def sutskever_lookahead(theta: N, v: N, *, mu: N) -> N:
    """Sutskever et al. 2013, eq. (3): the gradient point θ + μv of NAG."""
    return theta + mu * v


def bengio(big_theta: N, g: N, v: N, *, eps: N, mu: N, mu_next: N) -> tuple[N, N]:
    """Bengio et al. 2012: v_t = μ_{t−1}v_{t−1} − ε∇f(Θ_{t−1});
    Θ_t = Θ_{t−1} + μ_tμ_{t−1}v_{t−1} − (1 + μ_t)ε∇f(Θ_{t−1})."""
    v_new = mu * v - eps * g
    return big_theta + mu_next * mu * v - (1 + mu_next) * eps * g, v_new


def dozat(theta: N, g: N, m: N, *, eta: N, mu: N, mu_next: N) -> tuple[N, N]:
    """Dozat 2016: m_t = μ_t m_{t−1} + g_t; θ_t = θ_{t−1} − η(μ_{t+1} m_t + g_t)."""
    m_new = mu * m + g
    return theta - eta * (mu_next * m_new + g), m_new


def ruder(w: N, g: N, big_v: N, *, eta: N, gamma: N) -> tuple[N, N]:
    """Ruder 2016, sections 4.1-4.2 (the seeds' lecture form): v_t = γv_{t−1} + η∇J;
    θ = θ − v_t, with ∇J at θ − γv_{t−1} for NAG."""
    v_new = gamma * big_v + eta * g
    return w - v_new, v_new


# -- the frameworks' documented forms ------------------------------------------------


def pytorch(p: N, g: N, b: N | None, *, lr: N, mu: N, nesterov: bool) -> tuple[N, N]:
    """torch.optim.SGD docs: b_1 = g; b_t = μb_{t−1} + g; d = g + μb (nesterov) or b."""
    b_new = g if b is None else mu * b + g
    d = g + mu * b_new if nesterov else b_new
    return p - lr * d, b_new


def keras(p: N, g: N, v: N, *, lr: N, mu: N, nesterov: bool) -> tuple[N, N]:
    """keras.optimizers.SGD docs: v = μv − lr·g; w = w + μv − lr·g (nesterov) or w + v."""
    v_new = mu * v - lr * g
    return (p + mu * v_new - lr * g if nesterov else p + v_new), v_new


def optax(p: N, g: N, t: N, *, lr: N, mu: N, nesterov: bool) -> tuple[N, N]:
    """optax.trace + scale(−lr): t = g + μt; d = g + μt (nesterov) or t; p = p − lr·d."""
    t_new = g + mu * t
    d = g + mu * t_new if nesterov else t_new
    return p - lr * d, t_new


# -- the schedules --------------------------------------------------------------------


def nesterov_a(k: int) -> float:
    """Nesterov 1983: a_0 = 1, a_{k+1} = (1 + √(4a_k² + 1))/2."""
    a = 1.0
    for _ in range(k):
        a = (1 + math.sqrt(4 * a**2 + 1)) / 2
    return a


def fista_t(k: int) -> float:
    """Beck and Teboulle 2009: t_1 = 1, t_{k+1} = (1 + √(1 + 4t_k²))/2."""
    t = 1.0
    for _ in range(k - 1):
        t = (1 + math.sqrt(1 + 4 * t**2)) / 2
    return t


def sutskever_schedule(t: int, mu_max: float) -> float:
    """Sutskever et al. 2013, eq. (5), as printed: min(1 − 2^(−1−log₂(⌊t/250⌋+1)), μ_max)."""
    return min(1 - 2 ** (-1 - math.log2(t // 250 + 1)), mu_max)
