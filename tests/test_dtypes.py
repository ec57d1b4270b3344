"""nagref._dtypes: every row's facts agree with NumPy's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nagref import _dtypes
from nagref._dtypes import COMPLEX, NAMES, REAL, TABLE, DType, by_buffer_format, lookup

ROWS = list(TABLE.values())


def _ids(row: DType) -> str:
    return row.name


@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_the_row_is_keyed_by_its_name(row: DType) -> None:
    assert TABLE[row.name] is row
    assert np.dtype(row.name).name == row.name


@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_precision_and_exponent_range_agree_with_numpy_finfo(row: DType) -> None:
    info = np.finfo(row.name)  # of the real part, for a complex dtype
    assert row.precision == info.nmant + 1
    assert row.min_exponent == info.minexp
    assert row.max_exponent == info.maxexp
    assert 2.0**row.min_exponent == float(info.smallest_normal)
    assert _dtypes.smallest_normal(row.name) == float(info.smallest_normal)
    # every finite number is below 2**max_exponent: the largest is (1 - 2**-precision)·2**max
    assert float(info.max) == math.ldexp(1 - 2.0**-row.precision, row.max_exponent)


@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_kind_and_real_part_agree_with_numpy(row: DType) -> None:
    dtype = np.dtype(row.name)
    complex_ = np.issubdtype(dtype, np.complexfloating)
    assert row.kind == ("complex floating" if complex_ else "real floating")
    assert row.real in REAL
    assert row.real == np.zeros(1, dtype).real.dtype.name


@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_opmath_is_float32_exactly_for_the_16_bit_formats(row: DType) -> None:
    if np.dtype(row.name).itemsize == 2:
        assert row.opmath == "float32"
    else:
        assert row.opmath == row.name


@pytest.mark.parametrize("row", ROWS, ids=_ids)
def test_buffer_format_is_numpys_dtype_char(row: DType) -> None:
    assert row.buffer_format == np.dtype(row.name).char
    assert by_buffer_format(np.dtype(row.name).char) is row
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
    assert NAMES == ("float16", "float32", "float64", "complex64", "complex128")
    assert REAL == ("float16", "float32", "float64")
    assert COMPLEX == ("complex64", "complex128")


def test_lookup_names_what_there_is() -> None:
    assert lookup("float32") is TABLE["float32"]
    with pytest.raises(KeyError, match=r"unknown dtype 'bfloat16'; nagref knows float16, "):
        lookup("bfloat16")


def test_largest_is_the_largest_finite_number_numpy_knows() -> None:
    for name in NAMES:
        real = np.dtype(TABLE[name].real)
        assert _dtypes.largest(name) == float(np.finfo(real).max), name
    assert _dtypes.largest("float16") == 65504.0
