r"""Momentum schedules and tuned hyperparameters, as pure functions of the step.

Every rule, formulation and convention in nagref takes its momentum per call,
so a schedule is used by passing ``momentum=schedule(step)`` at each step.
The values are Python floats, computed in float64 in the order written here.

=================  ===========================================  ==========================
function           coefficient                                  source
=================  ===========================================  ==========================
``sutskever``      min(1 − 2^(−1−log₂(⌊t/250⌋+1)), μ_max)       Sutskever et al. 2013, eq. (5)
``nesterov``       (a_k − 1)/a_{k+1}, a_0 = 1,                  Nesterov 1983
                   a_{k+1} = (1 + √(4a_k² + 1))/2
``fista``          (t_k − 1)/t_{k+1}, t_1 = 1,                  Beck and Teboulle 2009, §4
                   t_{k+1} = (1 + √(1 + 4t_k²))/2
``k_over_k3``      (k − 1)/(k + 2)                              Su, Boyd and Candès 2016, §1
=================  ===========================================  ==========================

The FISTA sequence is Nesterov's shifted by one (t_k = a_{k−1}), so
``fista(k) == nesterov(k - 1)`` exactly; both are computed from one sequence.

References:
    Yu. Nesterov, "A method for solving the convex programming problem with
    convergence rate O(1/k^2)", Soviet Math. Dokl. 27(2):372-376, 1983.
    A. Beck and M. Teboulle, "A fast iterative shrinkage-thresholding
    algorithm for linear inverse problems", SIAM J. Imaging Sci.
    2(1):183-202, 2009.
    I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the importance of
    initialization and momentum in deep learning", ICML 2013.
    W. Su, S. Boyd and E. J. Candès, "A differential equation for modeling
    Nesterov's accelerated gradient method", JMLR 17(153), 2016.
    B. T. Polyak, Introduction to Optimization, 1987, and L. Lessard,
    B. Recht and A. Packard, "Analysis and design of optimization algorithms
    via integral quadratic constraints", SIAM J. Optim. 26(1):57-95, 2016
    (the tuned constants).
"""

from __future__ import annotations

import math
import numbers
import threading
from fractions import Fraction
from typing import Literal

from ._checks import describe

__all__ = ["MAX_STEP", "METHODS", "fista", "k_over_k3", "nesterov", "sutskever", "tuned"]

Method = Literal["gd", "heavy_ball", "nag"]
#: The largest step :func:`nesterov` and :func:`fista` accept: their a_k is a
#: recurrence computed step by step from a_0, which takes about 8 seconds
#: for 10**8 steps the first time (later calls start from a checkpoint).
MAX_STEP = 10**8
#: The methods :func:`tuned` knows.
METHODS: tuple[Method, ...] = ("gd", "heavy_ball", "nag")


def sutskever(t: int, *, mu_max: float) -> float:
    r"""Sutskever et al.'s (2013) momentum schedule, eq. (5).

    .. math::  \mu_t = \min\left(1 - 2^{-1-\log_2(\lfloor t/250 \rfloor + 1)},\ \mu_{max}\right)

    Since 2^{−1−log₂ n} = 1/(2n), the first term is (2n − 1)/(2n) with
    n = ⌊t/250⌋ + 1, returned correctly rounded: 0.5 for t < 250, 0.75 from
    250, 5/6 from 500, and so on. The paper uses μ_max in {0.999, 0.995,
    0.99, 0.9, 0}.

    Args:
        t: the step, an integer >= 0.
        mu_max: the cap μ_max, in [0, 1).
    """
    _step("t", t, 0)
    cap = _real("mu_max", mu_max)
    if not 0.0 <= cap < 1.0:
        raise ValueError(f"mu_max must be in [0, 1), got {cap!r}")
    n = t // 250 + 1
    return min(float(Fraction(2 * n - 1, 2 * n)), cap)


def nesterov(k: int) -> float:
    r"""The momentum coefficient of Nesterov's (1983) method.

    .. math::
        a_0 = 1,\quad a_{k+1} = \frac{1 + \sqrt{4a_k^2 + 1}}{2},\qquad
        \beta_k = \frac{a_k - 1}{a_{k+1}}

    β_k is the coefficient of y_{k+1} = x_k + β_k (x_k − x_{k−1}):
    0, 0.2817..., 0.4340..., 0.5311..., tending to 1 like k/(k + 3).

    Args:
        k: the step, an integer >= 0 and at most :data:`MAX_STEP`.
    """
    _step("k", k, 0, most=MAX_STEP)
    a_k, a_next = _a(k), _a(k + 1)
    return (a_k - 1.0) / a_next


def fista(k: int) -> float:
    r"""The FISTA momentum coefficient (Beck and Teboulle 2009, section 4).

    .. math::
        t_1 = 1,\quad t_{k+1} = \frac{1 + \sqrt{1 + 4t_k^2}}{2},\qquad
        \beta_k = \frac{t_k - 1}{t_{k+1}}

    for y_{k+1} = x_k + β_k (x_k − x_{k−1}). Since t_k = a_{k−1} of
    :func:`nesterov`, this is ``nesterov(k - 1)``.

    Args:
        k: the step, an integer >= 1 and at most :data:`MAX_STEP` + 1.
    """
    _step("k", k, 1, most=MAX_STEP + 1)
    return nesterov(k - 1)


def k_over_k3(k: int) -> float:
    r"""The coefficient (k − 1)/(k + 2) (Su, Boyd and Candès 2016, section 1).

    For y_k = x_k + (k − 1)/(k + 2) (x_k − x_{k−1}), k >= 1: 0, 1/4, 2/5, ...
    Sutskever et al.'s approximation 1 − 3/(t + 5) is this with k = t + 3.

    Args:
        k: the step, an integer >= 1.
    """
    _step("k", k, 1)
    return (k - 1) / (k + 2)


def tuned(kappa: float, method: Method) -> tuple[float, float]:
    r"""The tuned (lr, momentum) on a quadratic with L = 1 and condition number κ.

    ==============  =====================  =====================  ===============
    ``method``      lr                     momentum               linear rate
    ==============  =====================  =====================  ===============
    ``gd``          2/(L + μ)              0                      (κ−1)/(κ+1)
    ``heavy_ball``  4/(√L + √μ)²           ((√κ−1)/(√κ+1))²       (√κ−1)/(√κ+1)
    ``nag``         1/L                    (√κ−1)/(√κ+1)          1 − 1/√κ
    ==============  =====================  =====================  ===============

    with μ = L/κ the smallest eigenvalue. Polyak (1964, 1987) for gradient
    descent and heavy ball; Nesterov (2004), section 2.2, the constant step
    scheme, for NAG; the rates on quadratics are Lessard, Recht and Packard (2016),
    Proposition 1. The lr and momentum are those of nagref's rules
    (:func:`nagref.momentum`, :func:`nagref.nag`), which equal Polyak's α, β
    and Nesterov's 1/L, β.

    Args:
        kappa: the condition number κ = L/μ >= 1, finite.
        method: ``"gd"``, ``"heavy_ball"`` or ``"nag"``.
    """
    k = _real("kappa", kappa)
    if not 1.0 <= k < math.inf:
        raise ValueError(f"kappa must be a finite number >= 1, got {k!r}")
    mu = 1.0 / k
    root = math.sqrt(k)
    if method == "gd":
        return 2.0 / (1.0 + mu), 0.0
    if method == "heavy_ball":
        return 4.0 / (1.0 + math.sqrt(mu)) ** 2, ((root - 1.0) / (root + 1.0)) ** 2
    if method == "nag":
        return 1.0, (root - 1.0) / (root + 1.0)
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


# -- plumbing -------------------------------------------------------------------

#: Nesterov's a_k is a recurrence, so a_k is computed from a_0 step by step, in
#: the same float operations whatever the path. Only every _STRIDE-th value is
#: kept (a bounded cache: nesterov(10**7) keeps 2,442 floats), extended under a
#: lock so that threads never interleave its steps.
_STRIDE = 4096
_CHECKPOINTS = [1.0]  # a_0, a_4096, a_8192, ...
_LOCK = threading.Lock()


def _next(a: float) -> float:
    return (1.0 + math.sqrt(4.0 * a * a + 1.0)) / 2.0


def _a(k: int) -> float:
    checkpoint, rest = divmod(k, _STRIDE)
    with _LOCK:
        while len(_CHECKPOINTS) <= checkpoint:
            a = _CHECKPOINTS[-1]
            for _ in range(_STRIDE):
                a = _next(a)
            _CHECKPOINTS.append(a)
        a = _CHECKPOINTS[checkpoint]
    for _ in range(rest):
        a = _next(a)
    return a


def _step(name: str, value: object, least: int, most: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {describe(value)}")
    if value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    if most is not None and int(value) > most:
        raise ValueError(f"{name} must be an integer <= {most}, got {describe(value)}")


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    try:
        return float(value)
    except OverflowError:  # an int too large for a float
        raise ValueError(f"{name} must be a finite real number, got {describe(value)}") from None
