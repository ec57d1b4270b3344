"""The published update rules, evaluated element by element in Python floats.

This module is deliberately independent of :mod:`nagref.rules`. It never
calls them and uses neither their variables nor their sign convention.
It writes each rule the way its paper does, one scalar at a time:

* gradient descent: θ' = θ − ε·g;
* classical momentum, Sutskever et al. (2013) eqs. (1)-(2):
  v' = μ·v − ε·g(θ), θ' = θ + v';
* Nesterov's accelerated gradient, Sutskever et al. (2013) eqs. (3)-(4):
  v' = μ·v − ε·g(θ + μ·v), θ' = θ + v';
* momentum and NAG as Ruder (2016) sections 4.1-4.2 write them, with the
  velocity along the gradient: v' = γ·v + η·g, θ' = θ − v'.

Every operation is rounded once to the working dtype (:class:`Arithmetic`).
Python floats are IEEE binary64. A product or sum of two float32 (or
float16) numbers, computed in binary64 and then rounded to the narrower
format, is correctly rounded: 53 >= 2·24 + 2, so the double rounding is
innocuous. So the results are exactly what an IEEE machine computes
operation by operation in that dtype.

Ruder's (θ, v) are the seeds' (W, V), so nagref must match them bit for bit.
Sutskever's (θ, v) are (W, −V). Rounding to nearest is symmetric, so the
two forms agree bit for bit *except for the sign of zero*. Where a velocity
cancels exactly, a + b = +0 in the seeds' form while (−a) − b = +0 in
Sutskever's, so −v = −0 where V = +0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Arithmetic",
    "gd_step",
    "ruder_lookahead",
    "ruder_step",
    "sutskever_lookahead",
    "sutskever_step",
]

_NUMPY_DTYPES: dict[str, type[np.floating[Any]]] = {
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
}


@dataclass(frozen=True)
class Arithmetic:
    """Scalar IEEE arithmetic in one floating dtype, one rounding per operation.

    Attributes:
        dtype: ``"float16"``, ``"float32"`` or ``"float64"``.
        flush: flush subnormal inputs and results to (signed) zero, as
            XLA on CPU does (denormals-are-zero plus flush-to-zero).
    """

    dtype: str
    flush: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in _NUMPY_DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_NUMPY_DTYPES)}, got {self.dtype!r}")

    @property
    def tiny(self) -> float:
        """The smallest positive normal number of the dtype."""
        return float(np.finfo(_NUMPY_DTYPES[self.dtype]).tiny)

    def round(self, x: float) -> float:
        """Round a binary64 value to the dtype (to nearest, ties to even)."""
        with np.errstate(over="ignore"):
            y = float(_NUMPY_DTYPES[self.dtype](x))
        if self.flush and y != 0.0 and abs(y) < self.tiny:
            return math.copysign(0.0, y)
        return y

    def mul(self, a: float, b: float) -> float:
        return self.round(self.round(a) * self.round(b))

    def add(self, a: float, b: float) -> float:
        return self.round(self.round(a) + self.round(b))

    def sub(self, a: float, b: float) -> float:
        return self.round(self.round(a) - self.round(b))


def gd_step(ar: Arithmetic, theta: float, g: float, *, eps: float) -> float:
    """Gradient descent (Cauchy 1847; Robbins and Monro 1951): θ − ε·g."""
    return ar.sub(theta, ar.mul(eps, g))


def sutskever_lookahead(ar: Arithmetic, theta: float, v: float, *, mu: float) -> float:
    """The point of Sutskever et al. (2013) eq. (3) where NAG takes the gradient: θ + μ·v."""
    return ar.add(theta, ar.mul(mu, v))


def sutskever_step(
    ar: Arithmetic, theta: float, v: float, g: float, *, eps: float, mu: float
) -> tuple[float, float]:
    """Sutskever et al. (2013): classical momentum, eqs. (1)-(2), and NAG, eqs. (3)-(4).

    v_{t+1} = μ v_t − ε g;  θ_{t+1} = θ_t + v_{t+1}, where g is ∇f(θ_t) for
    classical momentum and ∇f(θ_t + μ v_t) (:func:`sutskever_lookahead`) for
    NAG. Returns ``(θ_{t+1}, v_{t+1})``.
    """
    v_new = ar.sub(ar.mul(mu, v), ar.mul(eps, g))
    return ar.add(theta, v_new), v_new


def ruder_lookahead(ar: Arithmetic, theta: float, v: float, *, gamma: float) -> float:
    """The look-ahead point of Ruder (2016) section 4.2: θ − γ·v_{t−1}."""
    return ar.sub(theta, ar.mul(gamma, v))


def ruder_step(
    ar: Arithmetic, theta: float, v: float, g: float, *, eta: float, gamma: float
) -> tuple[float, float]:
    """Ruder (2016): momentum (section 4.1) and NAG (section 4.2).

    v_t = γ v_{t−1} + η g;  θ = θ − v_t, where g is ∇J(θ) for momentum and
    ∇J(θ − γ v_{t−1}) (:func:`ruder_lookahead`) for NAG. The velocity points
    along the gradient, as in the seeds' lecture notes.
    Returns ``(θ_new, v_t)``.
    """
    v_new = ar.add(ar.mul(gamma, v), ar.mul(eta, g))
    return ar.sub(theta, v_new), v_new
