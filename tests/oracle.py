"""Test oracles for the rules' arithmetic contract.

``in_documented_order`` evaluates a rule with NumPy in a *wider* precision
and rounds to the working dtype after every operation. For float16 and float32
(and complex64) that is an independent route to the correctly rounded result.
For float64 it is the definition itself. ``flush=True`` models XLA on CPU:
subnormal inputs and results become zero.

``error_bound`` is a rigorous first-order bound on how far a rule's
rounded result can be from the exact real-number result.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import Any

import ml_dtypes
import numpy as np

from nagref import _dtypes
from nagref.report.published import Rounded, gradient_descent, ruder, ruder_lookahead

#: the widest dtype of each kind, in which the oracle computes before rounding
_WIDE = {
    name: "complex128" if row.kind == "complex floating" else "float64"
    for name, row in _dtypes.TABLE.items()
}
#: a dtype's real part (itself for a real dtype), from the dtype table
_REAL = {name: row.real for name, row in _dtypes.TABLE.items()}


numpy_dtype = _dtypes.numpy_dtype  # NumPy's dtype of that name, or ml_dtypes' (bfloat16)


def finfo(name: str) -> Any:
    """``np.finfo`` of a dtype, ``ml_dtypes``' included."""
    return ml_dtypes.finfo(numpy_dtype(name))


def round_array(x: Any, dtype: str) -> Any:
    """A float64 (or complex128) array rounded once to ``dtype`` (to nearest, ties to even).

    NumPy rounds once to its own dtypes; ``ml_dtypes`` converts float64 to
    bfloat16 through float32, rounding twice, so bfloat16 is reached here
    through float32 rounded to odd (Boldo and Melquiond 2008), which leaves
    the last rounding the only one.
    """
    x = np.asarray(x)
    if _dtypes.TABLE[dtype].library is None:
        return x.astype(dtype)
    x = x.astype(np.float64)
    nearest = x.astype(np.float32)
    inexact = np.isfinite(x) & (nearest.astype(np.float64) != x)
    even = (nearest.view(np.uint32) & 1) == 0
    towards = np.where(nearest.astype(np.float64) > x, -np.inf, np.inf).astype(np.float32)
    odd = np.where(inexact & even, np.nextafter(nearest, towards), nearest)
    return odd.astype(numpy_dtype(dtype))


def unit_roundoff(dtype: str) -> float:
    real = _REAL[dtype]
    return float(finfo(real).eps) / 2


def in_documented_order(
    rule: str, dtype: str, *, flush: bool = False, **values: Any
) -> tuple[Any, ...]:
    """W' (and V') per the documented operation order, as NumPy arrays of ``dtype``.

    That order is Ruder's (2016) form (gradient descent for ``sgd``), so this
    evaluates the oracle's formulas on arrays whose every operation is
    rounded to ``dtype``. η and β are rounded to ``dtype`` but never flushed.
    """
    wide = _WIDE[dtype]
    tiny = finfo(_REAL[dtype]).tiny

    def rnd(x: Any) -> Any:
        with np.errstate(over="ignore", invalid="ignore"):
            y = round_array(x, dtype)
        if flush:
            y = _flush(y, tiny)
        return y.astype(wide)

    def array(name: str) -> Rounded:
        return Rounded(rnd(values[name]), rnd)

    def hyper(name: str) -> Rounded:
        return Rounded(np.asarray(round_array(values[name], dtype), dtype=wide), rnd)

    out: tuple[Rounded, ...]
    with np.errstate(over="ignore", invalid="ignore"):
        if rule == "sgd":
            out = (gradient_descent(array("w"), array("g"), eps=hyper("lr")),)
        elif rule == "lookahead":
            out = (ruder_lookahead(array("w"), array("v"), gamma=hyper("momentum")),)
        else:
            out = ruder(
                array("w"), array("g"), array("v"), eta=hyper("lr"), gamma=hyper("momentum")
            )
    return tuple(round_array(o.value, dtype) for o in out)


def _flush(y: Any, tiny: float) -> Any:
    y = np.array(y, copy=True)
    parts = [y.real, y.imag] if np.iscomplexobj(y) else [y]
    for part in parts:
        small = (part != 0) & (np.abs(part) < tiny)
        part[small] = np.copysign(0.0, part[small])
    return y


def error_bound(rule: str, dtype: str, **v: Any) -> Any:
    """|rounded − exact| <= this, elementwise (first order, with a safety factor of 2)."""
    u = unit_roundoff(dtype)
    w = np.abs(v["w"])
    if rule == "sgd":
        scale = w + 3 * np.abs(v["lr"] * v["g"])
    elif rule == "lookahead":
        scale = w + 3 * np.abs(v["momentum"] * v["v"])
    else:
        scale = w + 4 * (np.abs(v["momentum"] * v["v"]) + np.abs(v["lr"] * v["g"]))
    real = _REAL[dtype]
    return 2 * (2 * u * scale + 4 * float(finfo(real).tiny))


def special_values(dtype: str) -> tuple[Any, Any, Any]:
    """(w, g, v): every combination of ±0, subnormals, ±max, ±inf, NaN and ordinary values."""
    real = _REAL[dtype]
    info = finfo(real)
    values = [
        0.0,
        -0.0,
        float(info.tiny) / 4,
        -float(info.tiny),
        float(info.max),
        -float(info.max),
        np.inf,
        -np.inf,
        np.nan,
        1.0,
        -0.3,
        7.5,
    ]
    w, g, v = (
        np.asarray(column, dtype=numpy_dtype(real))
        for column in zip(*itertools.product(values, repeat=3), strict=True)
    )
    if dtype.startswith("complex"):
        rng = np.random.default_rng(0)
        w, g, v = (a + 1j * rng.permutation(a) for a in (w, g, v))
    return w.astype(numpy_dtype(dtype)), g.astype(numpy_dtype(dtype)), v.astype(numpy_dtype(dtype))


# -- an exact fused multiply-add, in rational arithmetic ----------------------

#: (precision, smallest normal exponent, largest exponent) of each real dtype
_FORMATS = {
    name: (row.precision, row.min_exponent, row.max_exponent - 1)
    for name, row in _dtypes.TABLE.items()
    if row.kind == "real floating"
}


def round_rational(x: Fraction, dtype: str) -> float:
    """``x`` rounded to nearest (ties to even) in ``dtype``, subnormals and overflow included."""
    precision, emin, emax = _FORMATS[dtype]
    if x == 0:
        return 0.0
    magnitude = abs(x)
    exponent = magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
    if Fraction(2) ** exponent > magnitude:
        exponent -= 1
    quantum = Fraction(2) ** (max(exponent, emin) - precision + 1)
    whole, rest = divmod(magnitude / quantum, 1)
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1):
        whole += 1
    value = whole * quantum
    sign = -1.0 if x < 0 else 1.0
    if value >= Fraction(2) ** (emax + 1):
        return sign * math.inf
    return sign * float(value) if value else math.copysign(0.0, sign)


def exact_fma(a: float, b: float, c: float, dtype: str) -> float:
    """IEEE 754 fusedMultiplyAdd(a, b, c) in ``dtype``, computed exactly."""
    if not all(map(math.isfinite, (a, b, c))):
        if math.isfinite(a) and math.isfinite(b):
            return c  # a finite product plus an infinite or NaN addend
        with np.errstate(all="ignore"):
            product = np.asarray(a, dtype=np.float64) * b  # inf·0 = nan, inf·x = ±inf
            return float(product + c)
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    if exact != 0:
        return round_rational(exact, dtype)
    if Fraction(a) * Fraction(b) == 0 and c == 0:  # a sum of two signed zeros
        negative = math.copysign(1.0, a) * math.copysign(1.0, b) < 0 and math.copysign(1.0, c) < 0
        return -0.0 if negative else 0.0
    return 0.0  # exact cancellation rounds to +0
