"""Bitwise equality and ULP distance."""

from __future__ import annotations

import numpy as np
import pytest

from nagref._compare import _sign_magnitude, all_bitwise_equal, bitwise_equal, ulp_distance
from nagref._dtypes import numpy_dtype


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_neighbours_are_one_ulp_apart(dtype: str) -> None:
    x = np.asarray([1.0, -1.0, 0.0, 1e-3, np.finfo(dtype).max], dtype=dtype)
    up = np.nextafter(x, np.asarray(np.inf, dtype=dtype))
    # +inf is the next value above the largest finite one
    np.testing.assert_array_equal(ulp_distance(x, up), [1, 1, 1, 1, 1])
    assert not bitwise_equal(x, up).any()
    # across zero: the smallest subnormals either side are 2 apart
    tiny = np.asarray([np.nextafter(np.asarray(0, dtype), np.asarray(1, dtype))], dtype=dtype)
    assert ulp_distance(tiny, -tiny)[0] == 2


def test_signed_zeros_and_nans() -> None:
    a = np.asarray([0.0, np.nan, np.nan, 1.0, np.inf], dtype="float32")
    b = np.asarray([-0.0, -np.nan, 1.0, np.nan, np.inf], dtype="float32")
    np.testing.assert_array_equal(bitwise_equal(a, b), [False, True, False, False, True])
    np.testing.assert_array_equal(ulp_distance(a, b), [0, 0, np.inf, np.inf, 0])


def test_complex_takes_the_worse_part() -> None:
    a = np.asarray([1 + 1j, 1 + 1j], dtype="complex64")
    b = np.asarray([1 + 1j, np.nextafter(np.float32(1), np.float32(2)) + 1j], dtype="complex64")
    np.testing.assert_array_equal(bitwise_equal(a, b), [True, False])
    np.testing.assert_array_equal(ulp_distance(a, b), [0, 1])


def test_zero_dimensional_arrays_stay_zero_dimensional() -> None:
    a, b = np.asarray(1.0), np.asarray(np.nextafter(1.0, 2.0))
    assert bitwise_equal(a, a).shape == ()
    assert ulp_distance(a, b).shape == ()
    assert ulp_distance(a, b) == 1


def test_mismatched_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot compare arrays of dtype float32 and shape"):
        ulp_distance(np.zeros(2, "float32"), np.zeros(2, "float64"))
    with pytest.raises(ValueError, match=r"shape \(2,\) with dtype float32 and shape \(3,\)"):
        bitwise_equal(np.zeros(2, "float32"), np.zeros(3, "float32"))


@pytest.mark.parametrize("dtype", ["float16", "float32", "bfloat16"])
def test_the_ordinal_distance_is_the_sign_magnitude_distance(dtype: str) -> None:
    """16- and 32-bit floats are counted through their ordinals: the same numbers."""
    kind = numpy_dtype(dtype)
    unsigned = {2: np.uint16, 4: np.uint32}[kind.itemsize]
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2 ** (8 * kind.itemsize), 100_000, dtype=np.uint64).astype(unsigned)
    b = np.roll(a, 1)
    b[:50] = a[:50] ^ (unsigned(1) << unsigned(8 * kind.itemsize - 1))  # -x against x, ±0
    x, y = a.view(kind), b.view(kind)
    (na, ma), (nb, mb) = _sign_magnitude(x), _sign_magnitude(y)
    expected = np.where(na != nb, ma + mb, np.maximum(ma, mb) - np.minimum(ma, mb)).astype(float)
    nan_x, nan_y = np.isnan(x), np.isnan(y)
    expected[nan_x & nan_y] = 0.0
    expected[nan_x ^ nan_y] = np.inf
    assert np.array_equal(ulp_distance(x, y), expected)
    assert all_bitwise_equal(x, x.copy())
    assert not all_bitwise_equal(x, y)
    nan_payloads = np.array([np.nan, -np.nan], dtype=np.float32)
    assert all_bitwise_equal(nan_payloads, nan_payloads[::-1].copy())  # NaN is NaN
