"""The one exact spelling of floats in nagref's golden files, and its parsing.

A value is written as C99's ``%a`` and Python's :meth:`float.hex` write it,
of the value widened to float64: ``0x1.8000000000000p-1``, ``-0x0.0p+0`` for
-0, ``0x0.0000000000001p-1022`` for the smallest subnormal; ``nan``, ``inf``
and ``-inf`` are spelled out. Every float16, float32 and float64 value
round-trips bit for bit, signed zeros and subnormals included; NaN payloads
and NaN signs are not kept (a NaN reads back as NaN).

The test vectors (:mod:`nagref.vectors.encode`) and the live recordings
(:mod:`nagref.live.recordings`) both use these functions, and ``schema.json``
holds :data:`HEX_PATTERN` as its ``hex`` pattern.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from .._compare import bitwise_equal

__all__ = ["HEX_PATTERN", "array_from_hex", "array_to_hex", "from_hex", "to_hex"]

#: What a hex float may look like: at most 13 hex digits (52 bits) after the
#: point and at most 4 exponent digits, so that checking exactness is cheap.
HEX_PATTERN = r"^(nan|inf|-inf|-?0x[01]\.[0-9a-f]{1,13}p[+-][0-9]{1,4})$"

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
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        narrow = wide.astype(dtype)
    same = bitwise_equal(narrow.astype(np.float64), wide)
    if not same.all():
        i = int(np.argmin(same))
        raise ValueError(f"element {i}: {words[i]!r} is not a {np.dtype(dtype).name} value")
    return narrow
