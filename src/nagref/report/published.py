"""The published update rules, element by element, in plain Python numbers: the oracle.

This module is deliberately independent of :mod:`nagref.rules`,
:mod:`nagref.formulations` and :mod:`nagref.conventions`. It never calls
them and uses neither their variables nor their sign convention. It writes
each update once, the way its paper (or, for a framework, its documentation)
prints it, one scalar at a time and left to right:

* gradient descent: θ' = θ − ε·g;
* Polyak (1964) and Nesterov (1983) in their own variables;
* classical momentum and NAG, Sutskever et al. (2013) eqs. (1)-(4):
  v' = μ·v − ε·g, θ' = θ + v', with g taken at θ + μ·v for NAG;
* Bengio et al. (2012) and Dozat (2016), with a changing momentum;
* momentum and NAG as Ruder (2016) sections 4.1-4.2 write them, with the
  velocity along the gradient: v' = γ·v + η·g, θ' = θ − v';
* the documented forms of ``torch.optim.SGD``, ``keras.optimizers.SGD`` and
  ``optax.sgd``, and the papers' momentum schedules.

Every function is generic in the number type. With Python floats it runs in
binary64, to compare with nagref bit for bit; with ``fractions.Fraction`` it
is exact, to show where the formulations coincide; with the numbers of an
:class:`Arithmetic` every operation is rounded once to a working dtype, which
is how ``nagref conformance`` runs it (:func:`rounded_sutskever` and the
other ``rounded_`` steps). Python floats are IEEE binary64. A product or sum
of two float32 (or float16) numbers, computed in binary64 and then rounded to
the narrower format, is correctly rounded: 53 >= 2·24 + 2, so the double
rounding is innocuous. So those results are exactly what an IEEE machine
computes operation by operation in that dtype.

Ruder's (θ, v) are the seeds' (W, V), so nagref must match them bit for bit.
Sutskever's (θ, v) are (W, −V). Rounding to nearest is symmetric, so the
two forms agree bit for bit *except for the sign of zero*. Where a velocity
cancels exactly, a + b = +0 in the seeds' form while (−a) − b = +0 in
Sutskever's, so −v = −0 where V = +0.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Arithmetic",
    "Rounded",
    "bengio",
    "dozat",
    "fista_t",
    "gradient_descent",
    "keras",
    "nesterov_1983",
    "nesterov_a",
    "optax",
    "polyak",
    "pytorch",
    "rounded_gd",
    "rounded_ruder",
    "rounded_ruder_lookahead",
    "rounded_sutskever",
    "rounded_sutskever_lookahead",
    "ruder",
    "ruder_lookahead",
    "sutskever",
    "sutskever_lookahead",
    "sutskever_schedule",
]

#: A float, a fractions.Fraction or a :class:`Rounded`: the formulas are generic.
N = Any


# -- the papers -------------------------------------------------------------------


def gradient_descent(theta: N, g: N, *, eps: N) -> N:
    """Gradient descent (Cauchy 1847; Robbins and Monro 1951): θ − ε·g."""
    return theta - eps * g


def polyak(x: N, g: N, x_prev: N, *, alpha: N, beta: N) -> tuple[N, N]:
    """Polyak 1964: x_{k+1} = x_k − α∇f(x_k) + β(x_k − x_{k−1})."""
    return x - alpha * g + beta * (x - x_prev), x


def nesterov_1983(y: N, g: N, x_prev: N, *, alpha: N, beta: N) -> tuple[N, N]:
    """Nesterov 1983: x_k = y_k − α∇f(y_k); y_{k+1} = x_k + β_k(x_k − x_{k−1})."""
    x = y - alpha * g
    return x + beta * (x - x_prev), x


def sutskever(theta: N, g: N, v: N, *, eps: N, mu: N) -> tuple[N, N]:
    """Sutskever et al. 2013, eqs. (1)-(4): v' = μv − ε∇f; θ' = θ + v'.

    ∇f is taken at θ for classical momentum, eqs. (1)-(2), and at
    :func:`sutskever_lookahead` for NAG, eqs. (3)-(4). Returns ``(θ', v')``.
    """
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
    θ = θ − v_t, with ∇J at :func:`ruder_lookahead` for NAG. The velocity points
    along the gradient. Returns ``(θ, v_t)``."""
    v_new = gamma * big_v + eta * g
    return w - v_new, v_new


def ruder_lookahead(theta: N, v: N, *, gamma: N) -> N:
    """Ruder 2016, section 4.2: the look-ahead point θ − γv_{t−1} of NAG."""
    return theta - gamma * v


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


# -- rounding: every operation rounded once to a dtype ---------------------------------


def _rounded(
    op: Callable[[Any, Any], Any], *, reflected: bool = False
) -> Callable[[Rounded, object], Rounded]:
    """The method ``self op other`` (``other op self`` if reflected), rounded once."""

    def method(self: Rounded, other: object) -> Rounded:
        b = other.value if isinstance(other, Rounded) else self.rounding(other)
        a, b = (b, self.value) if reflected else (self.value, b)
        return Rounded(self.rounding(op(a, b)), self.rounding)

    return method


class Rounded:
    """A number whose every ``+``, ``−`` and ``·`` is rounded once by ``rounding``.

    ``value`` is already rounded. An operand that is not a :class:`Rounded`
    (a hyperparameter, the 1 of :func:`bengio`) is rounded before the
    operation. The value may be anything ``rounding`` accepts, a NumPy array
    included (``__array_ufunc__ = None`` makes NumPy defer to these operators).
    """

    __slots__ = ("rounding", "value")
    __array_ufunc__ = None

    def __init__(self, value: Any, rounding: Callable[[Any], Any]) -> None:
        self.value = value
        self.rounding = rounding

    __add__ = _rounded(operator.add)
    __radd__ = _rounded(operator.add, reflected=True)
    __sub__ = _rounded(operator.sub)
    __rsub__ = _rounded(operator.sub, reflected=True)
    __mul__ = _rounded(operator.mul)
    __rmul__ = _rounded(operator.mul, reflected=True)


_NUMPY_DTYPES: dict[str, type[np.floating[Any]]] = {
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
}


def _round_bfloat16(x: float) -> float:
    """``x`` rounded once to bfloat16 (to nearest, ties to even), by its float32 bits.

    Rounded to odd in float32 first (RO then RN is RN where the intermediate
    format has at least two more bits: Boldo and Melquiond 2008), then to
    nearest even on the 16 low bits that bfloat16 drops.
    """
    with np.errstate(over="ignore"):
        f = np.float32(x)
    if math.isfinite(x) and float(f) != x and int(np.array(f).view(np.uint32)) & 1 == 0:
        f = np.nextafter(f, np.float32(-math.inf if float(f) > x else math.inf))
    bits = int(np.array(f).view(np.uint32))
    if (bits >> 23) & 0xFF == 0xFF:  # inf or nan
        return float(f)
    low, high = bits & 0xFFFF, bits >> 16
    if low > 0x8000 or (low == 0x8000 and high & 1):
        high += 1  # carries into the exponent, up to inf
    return float(np.array(high << 16, dtype=np.uint32).view(np.float32))


#: dtype -> a binary64 value rounded once to it, as a float
def _numpy_rounder(scalar: type[np.floating[Any]]) -> Callable[[float], float]:
    return lambda x: float(scalar(x))


_ROUNDERS: dict[str, Callable[[float], float]] = {
    **{name: _numpy_rounder(scalar) for name, scalar in _NUMPY_DTYPES.items()},
    "bfloat16": _round_bfloat16,
}


@dataclass(frozen=True)
class Arithmetic:
    """Scalar IEEE arithmetic in one floating dtype, one rounding per operation.

    Attributes:
        dtype: ``"float16"``, ``"float32"``, ``"float64"`` or ``"bfloat16"``.
        flush: flush subnormal inputs and results to (signed) zero, as
            XLA on CPU does (denormals-are-zero plus flush-to-zero).
    """

    dtype: str
    flush: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in _ROUNDERS:
            raise ValueError(f"dtype must be one of {sorted(_ROUNDERS)}, got {self.dtype!r}")

    @property
    def tiny(self) -> float:
        """The smallest positive normal number of the dtype."""
        if self.dtype == "bfloat16":
            return float(np.finfo(np.float32).tiny)  # float32's exponent range
        return float(np.finfo(_NUMPY_DTYPES[self.dtype]).tiny)

    def round(self, x: float) -> float:
        """Round a binary64 value to the dtype (to nearest, ties to even)."""
        with np.errstate(over="ignore"):
            y = _ROUNDERS[self.dtype](x)
        if self.flush and y != 0.0 and abs(y) < self.tiny:
            return math.copysign(0.0, y)
        return y

    def number(self, x: float) -> Rounded:
        """``x`` rounded to the dtype, as a number whose operations round to it too."""
        return Rounded(self.round(x), self.round)

    def evaluate(self, formula: Callable[..., Any], *args: float, **hyper: float) -> Any:
        """``formula`` with every argument and every operation rounded to the dtype.

        Returns a float, or a tuple of floats where the formula returns a tuple.
        """
        result = formula(*map(self.number, args), **{k: self.number(h) for k, h in hyper.items()})
        if isinstance(result, tuple):
            return tuple(r.value for r in result)
        return result.value

    def mul(self, a: float, b: float) -> float:
        return float((self.number(a) * b).value)

    def add(self, a: float, b: float) -> float:
        return float((self.number(a) + b).value)

    def sub(self, a: float, b: float) -> float:
        return float((self.number(a) - b).value)


# -- the report's steps: the formulas above, rounded by an Arithmetic --------------------


def rounded_gd(ar: Arithmetic, theta: float, g: float, *, eps: float) -> float:
    """:func:`gradient_descent`, every operation rounded by ``ar``."""
    result: float = ar.evaluate(gradient_descent, theta, g, eps=eps)
    return result


def rounded_sutskever_lookahead(ar: Arithmetic, theta: float, v: float, *, mu: float) -> float:
    """:func:`sutskever_lookahead` (Sutskever et al. 2013, eq. (3)), rounded by ``ar``."""
    result: float = ar.evaluate(sutskever_lookahead, theta, v, mu=mu)
    return result


def rounded_sutskever(
    ar: Arithmetic, theta: float, v: float, g: float, *, eps: float, mu: float
) -> tuple[float, float]:
    """:func:`sutskever` (Sutskever et al. 2013, eqs. (1)-(4)), rounded by ``ar``.

    Returns ``(θ_{t+1}, v_{t+1})``.
    """
    result: tuple[float, float] = ar.evaluate(sutskever, theta, g, v, eps=eps, mu=mu)
    return result


def rounded_ruder_lookahead(ar: Arithmetic, theta: float, v: float, *, gamma: float) -> float:
    """:func:`ruder_lookahead` (Ruder 2016, section 4.2), rounded by ``ar``."""
    result: float = ar.evaluate(ruder_lookahead, theta, v, gamma=gamma)
    return result


def rounded_ruder(
    ar: Arithmetic, theta: float, v: float, g: float, *, eta: float, gamma: float
) -> tuple[float, float]:
    """:func:`ruder` (Ruder 2016, sections 4.1-4.2), rounded by ``ar``.

    Returns ``(θ_new, v_t)``.
    """
    result: tuple[float, float] = ar.evaluate(ruder, theta, g, v, eta=eta, gamma=gamma)
    return result
