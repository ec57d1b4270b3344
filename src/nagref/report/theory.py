r"""nagref's rules against the theory on quadratics f(x) = ½ xᵀ diag(λ) x.

Three checks, each printing the measured value beside the theoretical one:

* **Linear rates** with the tuned constants (:func:`nagref.schedules.tuned`),
  on a spectrum spanning [1/κ, 1] (L = 1): gradient descent (κ−1)/(κ+1),
  heavy ball (√κ−1)/(√κ+1), NAG 1 − 1/√κ. Each rate is computed twice: as
  the largest spectral radius of the per-eigenvalue iteration matrices, and
  from nagref's own iterates, as (‖x_N‖ / ‖x_{N/2}‖)^{2/N} (N up to 12000).
* **Stability edges** in h = lr·λ: gradient descent 2, heavy ball 2 + 2β,
  NAG (2 + 2β)/(1 + 2β) (from the characteristic polynomials by the Jury
  test). Just inside an edge (h = edge·0.99) the spectral radius and the
  measured rate of nagref's iterates are below 1; just outside (edge·1.01),
  both exceed 1.
* **O(1/k²)** for k <= 2000 on a convex quadratic (λ_i = (i/n)², so the
  smallest curvature is 1/n²): Nesterov 1983, f(x_k) − f* <= 4L‖x_0 − x*‖²/(k+2)²;
  FISTA, <= 2L‖x_0 − x*‖²/(k+1)² (Beck and Teboulle 2009, Thm. 4.4); and
  (k−1)/(k+2), <= 2‖x_0 − x*‖²/(s(k+1)²) (Su, Boyd and Candès 2016).

References: Polyak (1964); Nesterov (1983; 2004, section 2.2); Lessard,
Recht and Packard (2016), Proposition 1; Goh, "Why momentum really works",
Distill 2017 (the iteration matrices).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .. import formulations, rules, schedules
from .._tables import aligned
from ..schedules import Method

__all__ = [
    "BoundRow",
    "EdgeRow",
    "RateRow",
    "bounds",
    "edges",
    "format_theory",
    "rates",
    "spectral_radius",
    "verdict",
]

Vector = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RateRow:
    """A method's linear rate on a quadratic of condition number κ."""

    method: str
    kappa: float
    theory: float
    matrix: float  # the largest spectral radius of the iteration matrices
    measured: float  # from nagref's iterates


@dataclass(frozen=True)
class EdgeRow:
    """A method's stability edge in h = lr·λ, for one momentum."""

    method: str
    momentum: float
    edge: float
    radius_inside: float  # spectral radius at h = edge·(1 − δ)
    radius_outside: float  # at h = edge·(1 + δ)
    measured_inside: float  # the rate of nagref's iterates there
    measured_outside: float


@dataclass(frozen=True)
class BoundRow:
    """A schedule's worst ratio of f(x_k) − f* to its O(1/k²) bound."""

    schedule: str
    bound: str
    steps: int
    worst_ratio: float  # max over k of (f(x_k) − f*) / bound(k); <= 1 holds the bound


def spectral_radius(method: Method, lr: float, momentum: float, lam: float) -> float:
    """The spectral radius of one eigendirection's iteration matrix (Goh 2017).

    Gradient descent: 1 − h. Heavy ball, on (x_k, x_{k−1}): [[1 + β − h, −β],
    [1, 0]]. NAG: [[(1 + β)(1 − h), −β(1 − h)], [1, 0]]. Here h = lr·λ.
    """
    h = lr * lam
    if method == "gd":
        return abs(1.0 - h)
    if method == "heavy_ball":
        matrix = [[1.0 + momentum - h, -momentum], [1.0, 0.0]]
    else:
        matrix = [[(1.0 + momentum) * (1.0 - h), -momentum * (1.0 - h)], [1.0, 0.0]]
    return float(np.max(np.abs(np.linalg.eigvals(np.array(matrix)))))


def theoretical_rate(method: Method, kappa: float) -> float:
    """The published linear rate with the tuned constants."""
    root = math.sqrt(kappa)
    return {
        "gd": (kappa - 1.0) / (kappa + 1.0),
        "heavy_ball": (root - 1.0) / (root + 1.0),
        "nag": 1.0 - 1.0 / root,
    }[method]


def rates(kappas: tuple[float, ...] = (10.0, 100.0, 1000.0)) -> list[RateRow]:
    """Theory, iteration matrices and measured iterates, per method and κ."""
    rows = []
    for kappa in kappas:
        spectrum = np.geomspace(1.0 / kappa, 1.0, 33)
        for method in schedules.METHODS:
            lr, mu = schedules.tuned(kappa, method)
            matrix = max(spectral_radius(method, lr, mu, float(lam)) for lam in spectrum)
            theory = theoretical_rate(method, kappa)
            steps = int(min(12000, 150 / -math.log10(theory)))
            measured = _run(method, spectrum, lr=lr, mu=mu, steps=steps)
            rows.append(RateRow(method, kappa, theory, matrix, measured))
    return rows


def edges(momenta: tuple[float, ...] = (0.5, 0.9), delta: float = 0.01) -> list[EdgeRow]:
    """The stability edges, probed at h = edge·(1 ∓ δ) with λ = 1."""
    cases: list[tuple[Method, float, float]] = [("gd", 0.0, 2.0)]
    for mu in momenta:
        cases += [
            ("heavy_ball", mu, 2.0 + 2.0 * mu),
            ("nag", mu, (2.0 + 2.0 * mu) / (1.0 + 2.0 * mu)),
        ]
    rows = []
    steps = 4000
    for method, mu, edge in cases:
        radii, measured = [], []
        for h in (edge * (1.0 - delta), edge * (1.0 + delta)):
            radii.append(spectral_radius(method, h, mu, 1.0))
            measured.append(_run(method, np.ones(1), lr=h, mu=mu, steps=steps))
        rows.append(EdgeRow(method, mu, edge, radii[0], radii[1], measured[0], measured[1]))
    return rows


def bounds(steps: int = 2000, n: int = 100) -> list[BoundRow]:
    """The worst ratio to each O(1/k²) bound, for k <= ``steps``."""
    lam = (np.arange(1, n + 1) / n) ** 2  # L = 1, convex, κ = n²
    x0 = np.ones(n)
    r0 = float(x0 @ x0)  # ‖x_0 − x*‖², x* = 0

    def f(x: Vector) -> float:
        return float(0.5 * np.sum(lam * x * x))

    schedules_and_bounds: list[tuple[str, str, Callable[[int], float], Callable[[int], float]]] = [
        ("nesterov", "4L‖x0−x*‖²/(k+2)²", schedules.nesterov, lambda k: 4 * r0 / (k + 2) ** 2),
        (
            "fista",
            "2L‖x0−x*‖²/(k+1)²",
            lambda k: schedules.fista(k + 1),
            lambda k: 2 * r0 / (k + 2) ** 2,
        ),
        (
            "k_over_k3",
            "2‖x0−x*‖²/(s(k+1)²)",
            lambda k: schedules.k_over_k3(k + 1),
            lambda k: 2 * r0 / (k + 2) ** 2,
        ),
    ]
    rows = []
    for name, text, beta, bound in schedules_and_bounds:
        y, x_prev = x0.copy(), x0.copy()
        worst = 0.0
        for k in range(steps + 1):
            # step k computes x_k = y_k − ∇f(y_k) (FISTA and (k−1)/(k+2) count from 1)
            y, x_prev = formulations.nesterov_1983(y, lam * y, x_prev, alpha=1.0, beta=beta(k))
            worst = max(worst, f(x_prev) / bound(k))
        rows.append(BoundRow(name, text, steps, worst))
    return rows


def _run(method: Method, lam: Vector, *, lr: float, mu: float, steps: int) -> float:
    """The measured rate (‖x_N‖ / ‖x_{N/2}‖)^{2/N} of nagref's rules on f = ½ Σ λ x²,
    from x_0 = (1, ..., 1) and a zero velocity.

    The iteration is linear, so the state is rescaled by exact powers of two
    whenever its norm leaves [2^-300, 2^300]; the log of the norm is kept.
    """
    x, v = np.ones_like(lam), np.zeros_like(lam)
    log_norm, log_half = 0.0, 0.0
    for k in range(1, steps + 1):
        if method == "gd":
            x = rules.sgd(x, lam * x, lr=lr)
        elif method == "heavy_ball":
            x, v = rules.momentum(x, lam * x, v, lr=lr, momentum=mu)
        else:
            point = rules.lookahead(x, v, momentum=mu)
            x, v = rules.nag(x, lam * point, v, lr=lr, momentum=mu)
        norm = float(np.linalg.norm(x))
        if not 2.0**-300 <= norm <= 2.0**300:
            shift = -math.frexp(norm)[1]
            x, v = np.ldexp(x, shift), np.ldexp(v, shift)
            log_norm -= shift * math.log(2.0)
        if k == steps // 2:
            log_half = log_norm + math.log(norm)
    final = log_norm + math.log(float(np.linalg.norm(x)))
    return math.exp((final - log_half) / (steps - steps // 2))


def format_theory(
    rate_rows: list[RateRow], edge_rows: list[EdgeRow], bound_rows: list[BoundRow]
) -> str:
    """The three checks as aligned text tables."""
    out = ["linear rates on quadratics (tuned constants, L = 1)"]
    out += aligned(
        ("method", "kappa", "theory", "iteration matrix", "measured"),
        [
            (r.method, f"{r.kappa:g}", f"{r.theory:.6f}", f"{r.matrix:.6f}", f"{r.measured:.6f}")
            for r in rate_rows
        ],
    )
    out += ["", "stability edges in h = lr·λ (probed at edge·(1 ∓ 0.01))"]
    out += aligned(
        (
            "method",
            "momentum",
            "edge",
            "radius inside",
            "measured inside",
            "radius outside",
            "measured outside",
        ),
        [
            (
                r.method,
                f"{r.momentum:g}",
                f"{r.edge:.6f}",
                f"{r.radius_inside:.6f}",
                f"{r.measured_inside:.6f}",
                f"{r.radius_outside:.6f}",
                f"{r.measured_outside:.6f}",
            )
            for r in edge_rows
        ],
    )
    out += ["", "O(1/k²) bounds on a convex quadratic (worst f(x_k) − f* over the bound)"]
    out += aligned(
        ("schedule", "bound", "k <=", "worst ratio"),
        [(r.schedule, r.bound, str(r.steps), f"{r.worst_ratio:.4f}") for r in bound_rows],
    )
    return "\n".join(out)


def verdict(
    rate_rows: list[RateRow], edge_rows: list[EdgeRow], bound_rows: list[BoundRow]
) -> tuple[bool, str]:
    """Whether every check holds, and a one-line summary.

    A rate holds when the iteration matrices give the published value (to
    1e-7, eigvals's accuracy at a double root) and nagref's iterates its
    convergence exponent to 1%; an edge, when both radius and measured rate
    are below 1 inside and above 1 outside; a bound, when no k exceeds it.
    """
    rates_ok = sum(
        abs(r.matrix - r.theory) <= 1e-7 * r.theory
        and abs(math.log(r.measured) / math.log(r.theory) - 1.0) <= 0.01
        for r in rate_rows
    )
    edges_ok = sum(
        r.radius_inside < 1.0 < r.radius_outside and r.measured_inside < 1.0 < r.measured_outside
        for r in edge_rows
    )
    bounds_ok = sum(r.worst_ratio <= 1.0 for r in bound_rows)
    passed = (rates_ok, edges_ok, bounds_ok) == (len(rate_rows), len(edge_rows), len(bound_rows))
    return passed, (
        f"{'PASS' if passed else 'FAIL'}: theory: {rates_ok} of {len(rate_rows)} linear rates, "
        f"{edges_ok} of {len(edge_rows)} stability edges and {bounds_ok} of {len(bound_rows)} "
        "O(1/k²) bounds hold"
    )
