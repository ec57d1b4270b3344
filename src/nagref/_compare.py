"""Bitwise comparison and ULP distance of NumPy floating arrays.

NaN is compared as NaN: two NaNs are equal whatever their payloads, and a
NaN against a number is infinitely far. +0 and −0 are 0 ULP apart but are
*not* bitwise equal. A complex element matches only if both its parts do,
and its distance is the larger of its parts' distances.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["all_bitwise_equal", "bitwise_equal", "ulp_distance"]

_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}
_INT = {2: np.int16, 4: np.int32}


def _parts(x: npt.NDArray[np.inexact]) -> list[npt.NDArray[np.floating]]:
    # C order (a copy only where needed), keeping 0-d arrays 0-d (ascontiguousarray
    # makes them 1-d)
    if np.iscomplexobj(x):
        return [np.array(x.real, order="C"), np.array(x.imag, order="C")]
    real: npt.NDArray[np.floating] = x if x.flags.c_contiguous else np.array(x, order="C")  # type: ignore[assignment]
    return [real]


def bitwise_equal(a: npt.NDArray[np.inexact], b: npt.NDArray[np.inexact]) -> npt.NDArray[np.bool_]:
    """Elementwise: same bits, or both NaN."""
    _check(a, b)
    result = np.ones(a.shape, dtype=bool)
    for pa, pb in zip(_parts(a), _parts(b), strict=True):
        same = pa.view(_UINT[pa.itemsize]) == pb.view(_UINT[pb.itemsize])
        result &= same | (np.isnan(pa) & np.isnan(pb))
    return result


def all_bitwise_equal(a: npt.NDArray[np.inexact], b: npt.NDArray[np.inexact]) -> bool:
    """``bitwise_equal(a, b).all()``, at the cost of one comparison where the bits agree."""
    _check(a, b)
    pairs = zip(_parts(a), _parts(b), strict=True) if np.iscomplexobj(a) else [(a, b)]
    if all(np.array_equal(_bits(pa), _bits(pb)) for pa, pb in pairs):
        return True
    return bool(bitwise_equal(a, b).all())  # NaNs of other payloads are equal too


def _bits(x: npt.NDArray[np.inexact]) -> npt.NDArray[np.unsignedinteger]:
    contiguous = x if x.flags.c_contiguous else np.array(x, order="C")
    return contiguous.view(_UINT[contiguous.itemsize])


def ulp_distance(a: npt.NDArray[np.inexact], b: npt.NDArray[np.inexact]) -> npt.NDArray[np.float64]:
    """Elementwise number of representable values between ``a`` and ``b``.

    Counted exactly in unsigned 64-bit integers, then returned as float64 so
    that a NaN against a number can be ``inf``.
    """
    _check(a, b)
    result = np.zeros(a.shape, dtype=np.float64)
    for pa, pb in zip(_parts(a), _parts(b), strict=True):
        if pa.itemsize in _INT:  # the values in order as int64: their difference is exact
            apart = np.subtract(_ordinal(pa), _ordinal(pb), dtype=np.int64)
            distance = np.abs(apart, out=apart).astype(np.float64)
        else:
            (neg_a, mag_a), (neg_b, mag_b) = _sign_magnitude(pa), _sign_magnitude(pb)
            across_zero = mag_a + mag_b  # cannot overflow: each magnitude is < 2**63
            same_side = np.maximum(mag_a, mag_b) - np.minimum(mag_a, mag_b)
            distance = np.where(neg_a != neg_b, across_zero, same_side).astype(np.float64)
        nan_a, nan_b = np.isnan(pa), np.isnan(pb)
        distance[nan_a & nan_b] = 0.0
        distance[nan_a ^ nan_b] = np.inf
        result = np.maximum(result, distance)
    return result


def _ordinal(x: npt.NDArray[np.floating]) -> npt.NDArray[np.signedinteger]:
    """A 16- or 32-bit float's position among its dtype's values (−0 and +0 both at 0).

    The magnitude for a positive sign, minus it for a negative one:
    ``(bits ^ (m & magnitude_mask)) - m`` with ``m = bits >> (width - 1)``
    (−1 for a negative sign, else 0), in the float's own integer width.
    """
    bits = x.view(_INT[x.itemsize])
    m = bits >> (8 * x.itemsize - 1)
    ordinal = m & ((1 << (8 * x.itemsize - 1)) - 1)
    ordinal ^= bits
    ordinal -= m
    return ordinal


def _sign_magnitude(
    x: npt.NDArray[np.floating],
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint64]]:
    """The sign bit, and the other bits as an integer that counts representable values."""
    bits = x.view(_UINT[x.itemsize]).astype(np.uint64)
    sign = np.uint64(1) << np.uint64(8 * x.itemsize - 1)
    negative: npt.NDArray[np.bool_] = (bits & sign) != 0
    return negative, bits & (sign - np.uint64(1))


def _check(a: npt.NDArray[np.inexact], b: npt.NDArray[np.inexact]) -> None:
    if a.dtype != b.dtype or a.shape != b.shape:
        raise ValueError(
            f"cannot compare arrays of dtype {a.dtype} and shape {a.shape} "
            f"with dtype {b.dtype} and shape {b.shape}"
        )
