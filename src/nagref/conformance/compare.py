"""Bitwise comparison and ULP distance of NumPy floating arrays.

NaN is compared as NaN: two NaNs are equal whatever their payloads, and a
NaN against a number is infinitely far. +0 and −0 are 0 ULP apart but are
*not* bitwise equal. A complex element matches only if both its parts do,
and its distance is the larger of its parts' distances.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["bitwise_equal", "ulp_distance"]

_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}
_INT = {2: np.int16, 4: np.int32, 8: np.int64}


def _parts(x: npt.NDArray[np.inexact]) -> list[npt.NDArray[np.floating]]:
    if np.iscomplexobj(x):
        return [np.ascontiguousarray(x.real), np.ascontiguousarray(x.imag)]
    return [np.ascontiguousarray(x)]


def bitwise_equal(a: npt.NDArray[np.inexact], b: npt.NDArray[np.inexact]) -> npt.NDArray[np.bool_]:
    """Elementwise: same bits, or both NaN."""
    _check(a, b)
    result = np.ones(a.shape, dtype=bool)
    for pa, pb in zip(_parts(a), _parts(b), strict=True):
        same = pa.view(_UINT[pa.itemsize]) == pb.view(_UINT[pb.itemsize])
        result &= same | (np.isnan(pa) & np.isnan(pb))
    return result


def ulp_distance(a: npt.NDArray[np.inexact], b: npt.NDArray[np.inexact]) -> npt.NDArray[np.float64]:
    """Elementwise number of representable values between ``a`` and ``b``."""
    _check(a, b)
    result = np.zeros(a.shape, dtype=np.float64)
    for pa, pb in zip(_parts(a), _parts(b), strict=True):
        distance = np.abs(_ordered(pa) - _ordered(pb))
        nan_a, nan_b = np.isnan(pa), np.isnan(pb)
        distance[nan_a & nan_b] = 0.0
        distance[nan_a ^ nan_b] = np.inf
        result = np.maximum(result, distance)
    return result


def _ordered(x: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Map floats to integers (held as float64) that count representable values."""
    bits = x.view(_INT[x.itemsize]).astype(np.int64)
    magnitude = bits & np.int64(np.iinfo(_INT[x.itemsize]).max)
    ordered: npt.NDArray[np.float64] = np.where(bits < 0, -magnitude, magnitude).astype(np.float64)
    return ordered


def _check(a: npt.NDArray[np.inexact], b: npt.NDArray[np.inexact]) -> None:
    if a.dtype != b.dtype or a.shape != b.shape:
        raise ValueError(
            f"cannot compare arrays of dtype {a.dtype} and shape {a.shape} "
            f"with dtype {b.dtype} and shape {b.shape}"
        )
