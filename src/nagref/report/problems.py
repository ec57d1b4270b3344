"""Built-in optimisation problems for ``nagref conformance``.

Each problem gives a starting point and a gradient. The gradient is computed
in binary64 from Python numbers and then rounded to the working dtype, and
both sides of a comparison use the same gradient. So any difference comes
from the update rules alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["PROBLEMS", "Problem"]

Number = complex  # a float is a complex with zero imaginary part, for typing
Gradient = Callable[[Sequence[Number], int], list[Number]]


@dataclass(frozen=True)
class Problem:
    """A deterministic problem: where to start, the gradient, and the step sizes."""

    name: str
    description: str
    start: tuple[Number, ...]
    gradient: Gradient
    lr: Callable[[int], float]
    momentum: Callable[[int], float]
    complex_valued: bool = False


def _curvatures(n: int, kappa: float) -> list[float]:
    return [kappa ** (-i / (n - 1)) for i in range(n)]


_N = 37  # odd, so that vectorised kernels also run their scalar tails
_A = _curvatures(_N, 100.0)


def _quadratic(x: Sequence[Number], t: int) -> list[Number]:
    """∇ of ½ Σ a_i |x_i|² (for complex x, the conjugate-Wirtinger gradient a_i x_i)."""
    return [a * xi for a, xi in zip(_A, x, strict=True)]


def _rosenbrock(x: Sequence[Number], t: int) -> list[Number]:
    """∇ of the chained Rosenbrock function Σ (1 − x_i)² + 100 (x_{i+1} − x_i²)²."""
    xs = [float(xi.real) for xi in x]
    g = [0.0] * len(xs)
    for i in range(len(xs) - 1):
        r = xs[i + 1] - xs[i] * xs[i]
        g[i] += -2.0 * (1.0 - xs[i]) - 400.0 * xs[i] * r
        g[i + 1] += 200.0 * r
    return list(g)


def _noisy_quadratic(x: Sequence[Number], t: int) -> list[Number]:
    """A stochastic gradient: the quadratic's gradient plus deterministic noise."""
    return [
        a * xi + 0.05 * math.sin(12.9898 * (i + 1) + 78.233 * t)
        for i, (a, xi) in enumerate(zip(_A, x, strict=True))
    ]


_START = tuple((-1.0) ** i * (1.0 + i / 7.0) for i in range(_N))

PROBLEMS: tuple[Problem, ...] = (
    Problem("quadratic", "½ Σ a_i x_i², κ = 100", _START, _quadratic, lambda t: 0.9, lambda t: 0.9),
    Problem(
        "rosenbrock",
        "chained Rosenbrock, 8 variables",
        tuple(-1.2 if i % 2 == 0 else 1.0 for i in range(8)),
        _rosenbrock,
        lambda t: 1e-3,
        lambda t: 0.9,
    ),
    Problem(
        "noisy-schedule",
        "noisy quadratic, lr and momentum change every step",
        _START,
        _noisy_quadratic,
        lambda t: 0.5 / (1.0 + t / 10.0),
        lambda t: min(0.95, 1.0 - 3.0 / (t + 5.0)),
    ),
    Problem(
        "complex-quadratic",
        "½ Σ a_i |z_i|²",
        tuple(complex(s, -s / 3.0) for s in _START),
        _quadratic,
        lambda t: 0.9,
        lambda t: 0.9,
        complex_valued=True,
    ),
)
