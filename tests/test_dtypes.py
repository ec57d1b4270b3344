"""nagref._dtypes: every row's facts agree with NumPy's."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from oracle import round_rational

from nagref import _dtypes
from nagref._dtypes import COMPLEX, NAMES, REAL, TABLE, DType, by_buffer_format, lookup

ROWS = list(TABLE.values())


def _numpy(name: str) -> np.dtype[np.generic]:
    """NumPy's dtype of that name, or the one ``ml_dtypes`` gives NumPy (bfloat16)."""
    dtype: np.dtype[np.generic] = _dtypes.numpy_dtype(name)
    return dtype


def _ids(row: DType) -> str:
    return row.name


@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_the_row_is_keyed_by_its_name(row: DType) -> None:
    assert TABLE[row.name] is row
    assert _numpy(row.name).name == row.name


@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_precision_and_exponent_range_agree_with_numpy_finfo(row: DType) -> None:
    info = ml_dtypes.finfo(_numpy(row.real))
    assert row.precision == info.nmant + 1
    assert row.min_exponent == info.minexp
    assert row.max_exponent == info.maxexp
    assert 2.0**row.min_exponent == float(info.smallest_normal)
    assert _dtypes.smallest_normal(row.name) == float(info.smallest_normal)
    # every finite number is below 2**max_exponent: the largest is (1 - 2**-precision)·2**max
    assert float(info.max) == math.ldexp(1 - 2.0**-row.precision, row.max_exponent)


@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_kind_and_real_part_agree_with_numpy(row: DType) -> None:
    dtype = _numpy(row.name)
    complex_ = np.issubdtype(dtype, np.complexfloating)
    assert row.kind == ("complex floating" if complex_ else "real floating")
    assert row.real in REAL
    assert row.real == np.zeros(1, dtype).real.dtype.name
    # a dtype NumPy lacks comes from the library the row names
    assert (row.library is None) == hasattr(np, row.name)
    if row.library is not None:
        assert dtype.type.__module__.split(".")[0] == row.library


@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_opmath_is_float32_exactly_for_the_16_bit_formats(row: DType) -> None:
    if _numpy(row.name).itemsize == 2:
        assert row.opmath == "float32"
    else:
        assert row.opmath == row.name


@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_buffer_format_is_numpys_dtype_char(row: DType) -> None:
    assert row.buffer_format == _numpy(row.name).char
    assert by_buffer_format(_numpy(row.name).char) is row
    if row.library is not None:  # NumPy exports no PEP 3118 format for it
        with pytest.raises(ValueError, match="cannot include dtype"):
            memoryview(np.zeros(1, _numpy(row.name)))
        return
    # for a real dtype it is the PEP 3118 format a NumPy array exports (the C
    # evaluator checks it); a complex one exports Z and its real part's format
    exported = np.zeros(1, row.name).data.format
    if row.kind == "real floating":
        assert exported == row.buffer_format
    else:
        real_format = TABLE[row.real].buffer_format
        assert real_format is not None
        assert exported == "Z" + real_format


def test_unknown_buffer_formats_have_no_row() -> None:
    assert by_buffer_format("g") is None  # long double
    assert by_buffer_format("i") is None


def test_conventions_model_the_real_dtypes_and_kernels_name_their_c_types() -> None:
    assert [r.name for r in ROWS if r.conventions] == list(REAL)
    assert {r.name: r.c_type for r in ROWS} == {
        "bfloat16": None,
        "float16": "half",
        "float32": "float",
        "float64": "double",
        "complex64": None,
        "complex128": None,
    }
    assert {r.name: r.cuda_type for r in ROWS if r.cuda_type} == {
        "float32": "float",
        "float64": "double",
    }


def test_the_name_lists_follow_the_table() -> None:
    assert NAMES == ("float16", "float32", "float64", "bfloat16", "complex64", "complex128")
    assert REAL == ("float16", "float32", "float64", "bfloat16")
    assert COMPLEX == ("complex64", "complex128")


def test_lookup_names_what_there_is() -> None:
    assert lookup("float32") is TABLE["float32"]
    with pytest.raises(KeyError, match=r"unknown dtype 'float8'; nagref knows float16, "):
        lookup("float8")


def test_largest_is_the_largest_finite_number_numpy_knows() -> None:
    for name in NAMES:
        real = _numpy(TABLE[name].real)
        assert _dtypes.largest(name) == float(ml_dtypes.finfo(real).max), name
    assert _dtypes.largest("float16") == 65504.0


def _hard_values(name: str) -> list[float]:
    """Values around every rounding boundary of ``name``: ties, subnormals, overflow."""
    row = TABLE[name]
    rng = random.Random(7)
    values = [0.0, -0.0, math.inf, -math.inf, 5e-324, -5e-324, 1e308, -1e308]
    largest = _dtypes.largest(name)
    half_ulp_top = 2.0 ** (row.max_exponent - row.precision - 1)
    if name != "float64":  # float64's own overflow boundary is not a float64
        values += [largest + half_ulp_top, largest + half_ulp_top * 0.999999]
    values += [largest, -largest]
    for _ in range(3000):
        exponent = rng.randint(row.min_exponent - row.precision - 2, row.max_exponent - 2)
        # a representable number plus a fraction of its last unit: below,
        # exactly at and just above a tie, and random
        quantum = 2.0 ** (max(exponent, row.min_exponent) - row.precision + 1)
        base = math.ldexp(rng.randint(0, 2**row.precision), exponent - row.precision + 1)
        for fraction in (0.5, 0.5 - 2.0**-30, 0.5 + 2.0**-30, rng.random()):
            value = (base + fraction * quantum) * rng.choice((-1.0, 1.0))
            if math.isfinite(value):
                values.append(value)
    return values


@pytest.mark.parametrize("name", REAL)
def test_round_to_rounds_once_to_nearest_even(name: str) -> None:
    """Against exact rational rounding (tests/oracle.py), signs of zero included."""
    for value in _hard_values(name):
        exact = not math.isfinite(value) or value == 0
        want = value if exact else round_rational(Fraction(value), name)
        got = _dtypes.round_to(value, name)
        assert got == want or (math.isnan(got) and math.isnan(want)), (value, got, want)
        if got == 0:
            assert math.copysign(1.0, got) == math.copysign(1.0, value), value


def test_bfloat16_rounding_is_single_where_ml_dtypes_rounds_twice() -> None:
    """ml_dtypes 0.6 converts float64 to bfloat16 through float32 (0.7 once): round_to must
    round once, and the table's host_via says which the installed ml_dtypes does."""
    tie = 1.0 + 2.0**-8  # halfway between two bfloat16 numbers
    value = tie + 2.0**-40  # just above the tie: rounds up once, to even-down twice
    once = _dtypes.round_to(value, "bfloat16")
    host = float(np.asarray(value).astype(_numpy("bfloat16")))
    assert once == 1.0 + 2.0**-7
    through_float32 = _dtypes.host_via("bfloat16") == "float32"
    # twice: fl32 lands on the tie, which goes to even
    assert host == (1.0 if through_float32 else once)
    assert _dtypes.host_via("bfloat16") in ("float32", None)
    assert all(_dtypes.host_via(name) is None for name in _dtypes.TABLE if name != "bfloat16")
    assert _dtypes.TABLE["bfloat16"].host_via == _dtypes.ML_DTYPES
