"""The one exact spelling of floats in nagref's golden files, and its parsing.

A value is written as C99's ``%a`` and Python's :meth:`float.hex` write it,
of the value widened to float64: ``0x1.8000000000000p-1``, ``-0x0.0p+0`` for
-0, ``0x0.0000000000001p-1022`` for the smallest subnormal; ``nan``, ``inf``
and ``-inf`` are spelled out. Every float16, float32, float64 and bfloat16
value round-trips bit for bit, signed zeros and subnormals included; NaN
payloads and NaN signs are not kept (a NaN reads back as NaN).

A dtype NumPy has no type of its own for (the dtype table's ``library`` is
set: bfloat16, held as ``ml_dtypes.bfloat16``) is written a third way too, as
its bit patterns (:func:`array_to_bits`: ``"0x3fc0"`` for 1.5, four lowercase
hex digits of the 16-bit word), which keep NaN payloads and signs as well:
:data:`BITS_DTYPES`. Its shortest decimal is computed here
(:func:`shortest_decimal`; NumPy's Dragon4 does the other dtypes), and a
decimal is read back into it rounded once, exactly (:func:`reads_back`);
:func:`narrow` rounds float64 values into any dtype once (never twice through
float32, as ``ml_dtypes`` converts).

The test vectors (:mod:`nagref.vectors.encode`) and the live recordings
(:mod:`nagref.live.recordings`) both use these functions, and ``schema.json``
holds :data:`HEX_PATTERN` and :data:`BITS_PATTERN` as its ``hex`` and
``bits`` patterns.
"""

from __future__ import annotations

import decimal
import functools
import math
import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _dtypes
from .._compare import bitwise_equal
from .._compat import array_namespace
from .._engine.fma import round_to_odd_float32

__all__ = [
    "BITS_DTYPES",
    "BITS_PATTERN",
    "HEX_PATTERN",
    "array_from_bits",
    "array_from_hex",
    "array_to_bits",
    "array_to_hex",
    "bits_rule",
    "disagreement",
    "from_hex",
    "misfit",
    "narrow",
    "numpy_dtype",
    "reads_back",
    "shortest_decimal",
    "to_hex",
]

#: What a hex float may look like: at most 13 hex digits (52 bits) after the
#: point and at most 4 exponent digits, so that checking exactness is cheap.
HEX_PATTERN = r"^(nan|inf|-inf|-?0x[01]\.[0-9a-f]{1,13}p[+-][0-9]{1,4})$"

#: What a bit pattern looks like: ``0x`` and the 16-bit word's four lowercase hex digits.
BITS_PATTERN = r"^0x[0-9a-f]{4}$"
#: The dtypes whose values are written as bit patterns too: those NumPy has no
#: type of its own for (the table's ``library``), each two bytes wide.
BITS_DTYPES: tuple[str, ...] = tuple(n for n in _dtypes.REAL if _dtypes.TABLE[n].library)

_BITS = re.compile(BITS_PATTERN[1:-1])
_SLICE = 1 << 14  # elements compared at once
_HEX = re.compile(r"(-?)0x([01])\.([0-9a-f]{1,13})p([+-][0-9]{1,4})")
_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def to_hex(value: float) -> str:
    """``value`` (a float, or a NumPy float of any width) as its exact hex string."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value.hex()


def from_hex(text: str) -> float:
    """The float64 that ``text`` (as :func:`to_hex` writes it) spells, exactly.

    Raises:
        ValueError: ``text`` is not a hex float, or names a value float64
            cannot hold exactly (it would be rounded).
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a hex float string, got {type(text).__name__}")
    if text in _SPECIAL:
        return _SPECIAL[text]
    match = _HEX.fullmatch(text)
    if match is None:
        raise ValueError(f"not a hex float: {text[:40]!r}")
    try:
        value = float.fromhex(text)
    except OverflowError:
        raise ValueError(f"too large for float64: {text!r}") from None
    if value.hex() != text:  # not float.hex's own spelling: check that nothing was rounded
        _, lead, digits, exponent = match.groups()
        exact = Fraction(int(lead + digits, 16), 16 ** len(digits)) * Fraction(2) ** int(exponent)
        if Fraction(abs(value)) != exact:
            raise ValueError(f"not exactly a float64 (it would be rounded): {text!r}")
    return value


def array_to_hex(x: npt.NDArray[Any]) -> list[str]:
    """The elements of ``x`` in row-major order, each as :func:`to_hex` writes it."""
    return [to_hex(v) for v in np.asarray(x).reshape(-1).tolist()]


def array_from_hex(words: Sequence[str], dtype: str | np.dtype[Any]) -> npt.NDArray[Any]:
    """A 1-d array of ``dtype`` from hex strings, bit for bit (NaN as NaN).

    Raises:
        ValueError: a string is not a hex float, or its value is not one of
            ``dtype``'s (the element's index says which).
    """
    values = []
    for i, word in enumerate(words):
        try:
            values.append(from_hex(word))
        except ValueError as error:
            raise ValueError(f"element {i}: {error}") from None
    wide = np.array(values, dtype=np.float64)
    kind = numpy_dtype(dtype)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        narrowed = wide.astype(kind)  # exact where the value is one of the dtype's
    same = bitwise_equal(narrowed.astype(np.float64), wide)
    if not same.all():
        i = int(np.argmin(same))
        raise ValueError(f"element {i}: {words[i]!r} is not a {kind.name} value")
    return narrowed


def numpy_dtype(dtype: str | np.dtype[Any]) -> np.dtype[Any]:
    """The NumPy dtype of ``dtype``: a dtype as is, or a name from the dtype table.

    A dtype NumPy has no type of its own for comes from the table's
    ``library`` (``ml_dtypes.bfloat16``), whether or not that is imported yet.
    """
    if isinstance(dtype, np.dtype):
        return dtype
    kind: np.dtype[Any] = _dtypes.numpy_dtype(dtype)
    return kind


def _bits_dtype(dtype: str | np.dtype[Any]) -> np.dtype[Any]:
    kind = numpy_dtype(dtype)
    if kind.name not in BITS_DTYPES or kind.itemsize != 2:
        raise ValueError(f"bit patterns are written for {', '.join(BITS_DTYPES)}, not {kind.name}")
    return kind


def array_to_bits(x: npt.NDArray[Any]) -> list[str]:
    """The bit patterns of ``x``'s elements in row-major order: ``0x3fc0`` for bfloat16 1.5.

    Raises:
        ValueError: ``x`` is not of one of :data:`BITS_DTYPES`.
    """
    x = np.asarray(x)
    _bits_dtype(x.dtype)
    return [f"0x{w:04x}" for w in np.ascontiguousarray(x).reshape(-1).view(np.uint16).tolist()]


def array_from_bits(words: Sequence[str], dtype: str | np.dtype[Any]) -> npt.NDArray[Any]:
    """A 1-d array of ``dtype`` from its bit patterns, exactly (NaN payloads included).

    Raises:
        ValueError: a string is not a bit pattern as :func:`array_to_bits`
            writes it (the element's index says which), or ``dtype`` is not
            one of :data:`BITS_DTYPES`.
    """
    kind = _bits_dtype(dtype)
    patterns = np.empty(len(words), np.uint16)
    for i, word in enumerate(words):
        if not isinstance(word, str) or _BITS.fullmatch(word) is None:
            raise ValueError(f"element {i}: not a bit pattern like 0x3fc0: {str(word)[:40]!r}")
        patterns[i] = int(word[2:], 16)
    return patterns.view(kind)


def bits_rule(has_bits: bool, dtype: str) -> str | None:
    """Why an array of ``dtype`` with (or without) bit patterns is wrong, or None.

    Every array of a :data:`BITS_DTYPES` dtype holds them, and no other.
    """
    if has_bits and dtype not in BITS_DTYPES:
        return (
            f"unknown key 'bits' (only a {', '.join(BITS_DTYPES)} array holds bit patterns, "
            f"not a {dtype} one)"
        )
    if not has_bits and dtype in BITS_DTYPES:
        return f"missing key 'bits' (every {dtype} array of a vector holds its bit patterns)"
    return None


def disagreement(
    words: npt.NDArray[np.uint16], values: npt.NDArray[Any], dtype: str | np.dtype[Any]
) -> str | None:
    """Where the bit patterns ``words`` (of ``dtype``) first differ from the hex
    floats' ``values`` (NaN matching any NaN), as ``bits[3]: 0x3f80 is
    0x1.0000000000000p+0, but hex[3] is 0x1.8000000000000p+0``; or None."""
    kind = _bits_dtype(dtype)
    for at in range(0, words.size, _SLICE):
        with np.errstate(invalid="ignore"):  # a signalling NaN's pattern is fine
            held = words[at : at + _SLICE].view(kind).astype(np.float64)
            same = bitwise_equal(held, values[at : at + _SLICE].astype(np.float64))
        if not same.all():
            i = at + int(np.argmin(same))
            word, value, given = int(words[i]), to_hex(held[i - at]), to_hex(float(values[i]))
            return f"bits[{i}]: 0x{word:04x} is {value}, but hex[{i}] is {given}"
    return None


def misfit(values: npt.NDArray[np.float64], dtype: str | np.dtype[Any]) -> int | None:
    """The index of the first of ``values`` that is not exactly one of ``dtype``'s, or None."""
    kind = numpy_dtype(dtype)
    if kind == np.float64:
        return None
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        same = bitwise_equal(values.astype(kind).astype(np.float64), values)
    return None if same.all() else int(np.argmin(same))


# -- rounding into a dtype once, and its shortest decimals --------------------------------


def narrow(values: npt.NDArray[Any], dtype: str | np.dtype[Any]) -> npt.NDArray[Any]:
    """``values`` (float64) rounded to nearest, ties to even, *once*, into ``dtype``.

    NumPy converts float64 to its own dtypes directly; ``ml_dtypes`` converts
    to bfloat16 through float32, rounding twice. For such a dtype (the
    table's ``host_via``) the float64 is first rounded to float32 *to odd*
    (:func:`nagref._engine.fma.round_to_odd_float32`, as the engine casts a
    hyperparameter), which keeps the second rounding correct: float32 holds
    at least two more bits than the dtype (24 against bfloat16's 8).
    """
    kind = numpy_dtype(dtype)
    wide = np.asarray(values, dtype=np.float64)
    row = _dtypes.TABLE.get(kind.name)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        via = None if row is None else _dtypes.host_via(row.name)
        if via is None:
            return wide.astype(kind)
        assert via == "float32"  # the engine's round to odd goes to float32
        middle = np.asarray(round_to_odd_float32(array_namespace(wide), wide))
        return middle.astype(kind)


def _interval(value: float, dtype: str) -> tuple[Fraction, Fraction, bool]:
    """The reals that round to ``value`` (finite, non-zero, of ``dtype``), and whether
    its ends do too (a tie goes to the even significand)."""
    row = _dtypes.TABLE[_dtypes.TABLE[dtype].real]
    size = abs(value)
    exponent = math.frexp(size)[1]  # 2**(exponent - 1) <= size < 2**exponent
    quantum = max(exponent, row.min_exponent + 1) - row.precision
    step = Fraction(2) ** quantum
    below = step / 2 if size == 2.0 ** (exponent - 1) and exponent - 1 > row.min_exponent else step
    exact = Fraction(size)
    units = int(exact / step)
    return exact - below / 2, exact + step / 2, units % 2 == 0


def _exact_decimal(q: Fraction) -> decimal.Decimal:
    """A dyadic rational (its denominator a power of 2) as a Decimal, exactly."""
    k = q.denominator.bit_length() - 1
    assert q.denominator == 1 << k
    return decimal.Decimal((0, tuple(map(int, str(q.numerator * 5**k))), -k))


def reads_back(text: str, value: float, dtype: str) -> bool:
    """Whether the decimal ``text``, rounded once to ``dtype``, is ``value`` (a value of it).

    Exact, for a decimal of any length: it is compared (as a ``Decimal``,
    whose comparisons never round) with the ends of the interval of reals
    that round to ``value``; ``nan``, ``inf`` and ``-inf`` by name, a zero by
    its sign too. No decimal is ever rounded to float64 on the way.
    """
    if text in ("nan", "inf", "-inf") or math.isnan(value) or math.isinf(value):
        return text == to_hex(value)
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return False
    if not number.is_finite() or number.is_signed() != (math.copysign(1.0, value) < 0):
        return False
    magnitude = number.copy_abs()  # abs() would round to the context's 28 digits
    if value == 0.0:  # up to half the smallest subnormal, which ties to the even zero
        row = _dtypes.TABLE[_dtypes.TABLE[dtype].real]
        half = Fraction(2) ** (row.min_exponent - row.precision)
        return magnitude <= _exact_decimal(half)
    low, high, ends = _interval(value, dtype)
    lo, hi = _exact_decimal(low), _exact_decimal(high)
    return lo <= magnitude <= hi if ends else lo < magnitude < hi


@functools.lru_cache(maxsize=1 << 16)
def _shortest(value: float, dtype: str) -> str:
    low, high, ends = _interval(value, dtype)
    exact = Fraction(value)
    for digits in range(1, 18):
        text = f"{value:.{digits - 1}e}"  # the nearest decimal of that many digits
        lead, _, power = text.partition("e")
        units, exponent = int(lead.replace(".", "")), int(power) - (digits - 1)
        found = []
        for u in (units, units - 1, units + 1):
            q = Fraction(u) * Fraction(10) ** exponent
            if (low < q < high) or (ends and q in (low, high)):
                found.append((abs(q - exact), q, u))
        if found:
            _, q, u = min(found, key=lambda f: f[0])
            return _scientific(u, exponent)
    raise AssertionError(f"no decimal of 17 digits reads back to {value!r}")  # pragma: no cover


def _scientific(units: int, exponent: int) -> str:
    """``units * 10**exponent`` (units > 0) as NumPy's ``format_float_scientific(trim="-")``."""
    digits = str(units).rstrip("0")
    exponent += len(str(units)) - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def shortest_decimal(value: float, dtype: str) -> str:
    """The shortest decimal that rounds (once) to ``value``, a value of ``dtype``.

    As NumPy's ``format_float_scientific(unique=True, trim="-")`` writes its
    own dtypes (``1.5e+00``, ``-0e+00``, ``nan``, ``inf``): of the shortest
    decimals in the interval of reals that round to ``value``, the nearest
    to it; an end of the interval counts where the tie goes to ``value``.
    """
    if math.isnan(value) or math.isinf(value):
        return to_hex(value)
    if value == 0.0:
        return "-0e+00" if math.copysign(1.0, value) < 0 else "0e+00"
    text = _shortest(abs(value), dtype)
    return "-" + text if value < 0 else text
