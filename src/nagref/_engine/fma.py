"""A correctly rounded fused multiply-add built from array-API operations.

``fma(a, b, c)`` returns a·b + c rounded *once* to the dtype of the
operands (float32 or float64), as IEEE 754 ``fusedMultiplyAdd`` does. The
array API standard has no FMA, so it is built from operations the standard
has, each of them correctly rounded:

* float32 (and float16, which is handled the same way): the product of two
  float32 numbers is exact in float64. The sum is rounded to float64 *to
  odd* and then to float32 to nearest; because float64 carries more than two
  extra bits, RN32(RO64(x)) = RN32(x) (Boldo and Melquiond 2008, Thm. 3).
* float64: Dekker's TwoProduct (with Veltkamp's split) and Knuth's TwoSum
  give the product and the partial sum as exact pairs, and

      (uh, ul) = TwoProduct(a, b);  (th, tl) = TwoSum(c, uh)
      fma(a, b, c) = RN(th + RO(tl + ul))

  (Boldo and Melquiond 2008, Algorithm 5.4 and Theorem 6). Those error-free
  transformations need the product away from the bottom and the top of the
  exponent range, so tiny operands are scaled up by 2^537 each (and the
  result down by 2^-1074, one exact or correctly rounded multiply) and huge
  ones down by 2^-64.

Round-to-odd addition: s = RN(x + y) and its exact error e (TwoSum); where
e ≠ 0 and the last bit of s is even, s moves one step towards x + y.

Requirements: IEEE binary arithmetic with gradual underflow, evaluated one
operation at a time. A backend that flushes subnormals to zero (JAX on CPU)
or that contracts a·b + c into a hardware FMA behind the code's back
(``jax.jit``) breaks the error-free transformations; see docs/conventions.md.

References:
    S. Boldo and G. Melquiond, "Emulation of FMA and correctly rounded sums:
    proved algorithms using rounding to odd", IEEE Trans. Computers 57(4),
    2008, pp. 462-471.
    T. J. Dekker, "A floating-point technique for extending the available
    precision", Numer. Math. 18, 1971, pp. 224-242.
    D. E. Knuth, The Art of Computer Programming, vol. 2, 3rd ed., 4.2.2.
"""

from __future__ import annotations

from typing import Any

from .._compat import array_namespace, is_lazy_array
from .._dtypes import lookup
from .._typing import Namespace

__all__ = ["add_round_to_odd", "fma", "round_to_odd_float32"]

_BINARY64 = lookup("float64")
_SPLITTER = 2.0 ** ((_BINARY64.precision + 1) // 2) + 1.0  # Veltkamp's constant: 2^27 + 1
_TINY_PRODUCT = 2.0**-968  # below this TwoProduct's error may underflow
_TINY_ADDEND = 2.0**-900
_UP = 2.0**537  # applied to both factors: 2^1074 on the product
# the smallest subnormal, 2^-1074, so one multiply undoes 2^1074
_DOWN = 2.0 ** (_BINARY64.min_exponent - _BINARY64.precision + 1)
_HUGE = 2.0**995  # above this Veltkamp's split may overflow
_HUGE_SUM = 2.0**1000
_SHRINK = 2.0**-64


def fma(a: Any, b: Any, c: Any) -> Any:
    """a·b + c with a single rounding to the operands' dtype.

    Args:
        a, b, c: real floating arrays of one dtype (float16, float32 or
            float64), broadcastable together.

    Returns:
        A new array: the correctly rounded (to nearest, ties to even) value.
    """
    xp = array_namespace(a, b, c)
    if a.dtype == xp.float64:
        return _fma64(xp, a, b, c)
    wide = [xp.astype(x, xp.float64) for x in (a, b, c)]
    total = add_round_to_odd(wide[0] * wide[1], wide[2])
    if a.dtype == xp.float32:
        return xp.astype(total, a.dtype)
    # float16: round to odd once more, to float32, so that no backend's
    # float64 -> float16 conversion can round twice
    return xp.astype(round_to_odd_float32(xp, total), a.dtype)


def add_round_to_odd(x: Any, y: Any) -> Any:
    """x + y rounded to odd: exact sums stay, inexact ones get an odd last bit."""
    xp = array_namespace(x, y)
    s = x + y
    e = _two_sum_error(x, y, s)
    inexact = (e != 0) & xp.isfinite(e)
    step = xp.nextafter(s, xp.where(e > 0, xp.asarray(xp.inf, dtype=s.dtype), -xp.inf))
    return xp.where(inexact & ~_is_odd(xp, s), step, s)


def round_to_odd_float32(xp: Namespace, x: Any) -> Any:
    """float64 ``x`` rounded to float32 *to odd*: an inexact result gets an odd last bit.

    Rounding that once more, to a format at least two bits narrower
    (float16, bfloat16), rounds ``x`` once (Boldo and Melquiond 2008).
    """
    nearest = xp.astype(x, xp.float32)
    exact = xp.astype(nearest, xp.float64) == x
    up = xp.astype(nearest, xp.float64) < x
    step = xp.nextafter(nearest, xp.where(up, xp.asarray(xp.inf, dtype=xp.float32), -xp.inf))
    keep = exact | ~xp.isfinite(x) | _is_odd(xp, nearest)
    return xp.where(keep, nearest, step)


def _two_sum_error(x: Any, y: Any, s: Any) -> Any:
    # Knuth's TwoSum: x + y = s + e exactly, for any order of magnitudes
    y_virtual = s - x
    x_virtual = s - y_virtual
    return (x - x_virtual) + (y - y_virtual)


def _is_odd(xp: Namespace, s: Any) -> Any:
    """Whether the last significand bit of finite ``s`` is 1 (zero is even)."""
    magnitude = xp.abs(s)
    step = magnitude - xp.nextafter(magnitude, xp.zeros_like(magnitude))
    ones = xp.ones_like(magnitude)
    count = magnitude / xp.where(step > 0, step, ones)  # an exact integer
    return (magnitude > 0) & (xp.remainder(count, 2.0 * ones) == 1.0)


def _two_product(a: Any, b: Any) -> tuple[Any, Any]:
    # Dekker's TwoProduct with Veltkamp's split: a·b = p + e exactly
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, e


def _split(a: Any) -> tuple[Any, Any]:
    t = _SPLITTER * a
    hi = t - (t - a)
    return hi, a - hi


def _fused(xp: Namespace, a: Any, b: Any, c: Any, *, odd: bool) -> Any:
    uh, ul = _two_product(a, b)
    th = c + uh
    tl = _two_sum_error(c, uh, th)
    v = add_round_to_odd(tl, ul)
    return add_round_to_odd(th, v) if odd else th + v


def _to_integer(xp: Namespace, a: Any, b: Any, c: Any, nearest: Any) -> Any:
    """a·b + c rounded to an integer (ties to even), given nearest = RN(a·b + c).

    For |nearest| < 2^52 the float64 grid is at least as fine as a half, so
    the exact value rounds to the integer nearest to ``nearest``, unless
    ``nearest`` is itself a half-integer: then the sign of the exact
    a·b + c − nearest decides, and a zero sign is a tie.
    """
    shift = xp.where(nearest < 0, xp.asarray(-(2.0**52), dtype=nearest.dtype), 2.0**52)
    whole = (nearest + shift) - shift  # ties to even
    half = xp.abs(nearest - whole) == 0.5
    uh, ul = _two_product(a, b)
    side = _sign_of_sum(xp, [c, uh, ul, -nearest])
    whole = xp.where(half & (side > 0), nearest + 0.5, whole)
    whole = xp.where(half & (side < 0), nearest - 0.5, whole)
    # a zero keeps the sign of the exact value it was rounded from
    return xp.where(whole == 0, xp.copysign(xp.zeros_like(whole), nearest), whole)


def _sign_of_sum(xp: Namespace, terms: list[Any]) -> Any:
    """The exact sign (-1, 0 or 1) of a sum of floats, by Shewchuk's expansions.

    Grow-Expansion adds each term to a nonoverlapping expansion with TwoSum;
    the sign of the sum is the sign of its largest (last nonzero) component.
    """
    expansion = [terms[0]]
    for term in terms[1:]:
        grown = []
        carry = term
        for component in expansion:
            total = carry + component
            grown.append(_two_sum_error(carry, component, total))
            carry = total
        expansion = [*grown, carry]
    sign = xp.zeros_like(terms[0])
    one = xp.ones_like(sign)
    for component in expansion:
        sign = xp.where(component > 0, one, xp.where(component < 0, -one, sign))
    return sign


def _taken(xp: Namespace, branch: Any) -> bool:
    """Whether some element takes ``branch``, or that cannot be read cheaply.

    Skipping a branch no element takes changes no bit (its ``where`` would
    keep every element); lazy arrays (Dask, JAX) always evaluate it.
    """
    return is_lazy_array(branch) or bool(xp.any(branch))


def _fma64(xp: Namespace, a: Any, b: Any, c: Any) -> Any:
    a, b, c = xp.broadcast_arrays(a, b, c)
    product = a * b
    finite = xp.isfinite(a) & xp.isfinite(b) & xp.isfinite(c)
    zero_factor = (a == 0) | (b == 0)
    safe = [xp.where(finite & ~zero_factor, x, xp.ones_like(x)) for x in (a, b, c)]
    sa, sb, sc = safe
    big_a, big_b = xp.abs(sa) > _HUGE, xp.abs(sb) > _HUGE
    tiny = (xp.abs(sa * sb) < _TINY_PRODUCT) & (xp.abs(sc) < _TINY_ADDEND)
    huge = (big_a | big_b | (xp.abs(sa * sb) > _HUGE_SUM) | (xp.abs(sc) > _HUGE_SUM)) & ~tiny

    # the normal range: no scaling
    result = _fused(xp, sa, sb, sc, odd=False)

    # tiny: scale every operand up by 2^1074, so that the subnormal grid
    # becomes the integers, and round there (exact where the result is normal)
    if _taken(xp, tiny):
        ta, tb, tc = sa * _UP, sb * _UP, (sc * _UP) * _UP
        nearest = _fused(xp, ta, tb, tc, odd=False)
        integer = _to_integer(xp, ta, tb, tc, nearest)
        on_grid = xp.where(xp.abs(nearest) >= 2.0**52, nearest, integer)
        result = xp.where(tiny, on_grid * _DOWN, result)

    # huge: shrink the larger factor and the addend by 2^-64, keeping a
    # vanishing addend's sign as a sticky bit, then scale back (exact or inf)
    if _taken(xp, huge):
        larger_a = xp.abs(sa) >= xp.abs(sb)
        ha = xp.where(larger_a, sa * _SHRINK, sa)
        hb = xp.where(larger_a, sb, sb * _SHRINK)
        hc = sc * _SHRINK
        sticky = xp.where(sc > 0, xp.asarray(2.0**-1074, dtype=sc.dtype), -(2.0**-1074))
        hc = xp.where((hc == 0) & (sc != 0), sticky, hc)
        shrunk = _fused(xp, ha, hb, hc, odd=False)
        shrunk = xp.where(xp.isinf(ha * hb), ha * hb, shrunk)  # |a·b| >= 2^1088: overflows
        result = xp.where(huge, shrunk * (1.0 / _SHRINK), result)

    # IEEE special cases: a zero factor adds a signed zero; a finite product
    # plus an infinite addend is the addend; anything else non-finite is
    # what the separate operations give
    special = product + c
    special = xp.where(xp.isfinite(a) & xp.isfinite(b) & xp.isinf(c), c, special)
    return xp.where(finite & ~zero_factor, result, special)
