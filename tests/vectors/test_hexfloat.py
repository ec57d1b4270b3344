"""The one hex-float codec: exact for every float16, float32 and float64 value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nagref._compare import bitwise_equal
from nagref.vectors import schema
from nagref.vectors.hexfloat import HEX_PATTERN, array_from_hex, array_to_hex, from_hex, to_hex

_UINT = {"float16": np.uint16, "float32": np.uint32, "float64": np.uint64}


def _every_kind(dtype: str) -> np.ndarray:
    """Every float16; for the wider types, random bit patterns and the edges."""
    if dtype == "float16":
        return np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    bits = np.random.default_rng(7).integers(0, 2 ** (8 * np.dtype(dtype).itemsize), 20_000, "u8")
    info = np.finfo(dtype)
    edges = [0.0, -0.0, info.smallest_subnormal, -info.smallest_subnormal, info.tiny, info.max]
    edges += [-info.max, info.eps, np.inf, -np.inf, np.nan]
    return np.concatenate([bits.astype(_UINT[dtype]).view(dtype), np.array(edges, dtype)])


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_every_value_round_trips_bit_for_bit(dtype: str) -> None:
    values = _every_kind(dtype)
    words = array_to_hex(values)
    assert all(
        w in ("nan", "inf", "-inf") or w == float(v).hex()
        for w, v in zip(words, values, strict=True)
    )
    back = array_from_hex(words, dtype)
    assert back.dtype == np.dtype(dtype)
    assert bitwise_equal(back, values).all()
    assert np.array_equal(np.signbit(back[back == 0]), np.signbit(values[values == 0]))


def test_specials_and_zeros_are_spelled_out() -> None:
    assert [to_hex(v) for v in (math.nan, math.inf, -math.inf, 0.0, -0.0)] == [
        "nan",
        "inf",
        "-inf",
        "0x0.0p+0",
        "-0x0.0p+0",
    ]
    assert to_hex(np.float16(1.5)) == "0x1.8000000000000p+0"
    assert to_hex(5e-324) == "0x0.0000000000001p-1022"
    assert math.isnan(from_hex("nan"))
    assert math.copysign(1.0, from_hex("-0x0.0p+0")) == -1.0


def test_a_hand_written_exact_value_is_read() -> None:
    assert from_hex("0x1.8p-1") == 0.75
    assert from_hex("0x1.0p-1074") == 5e-324  # the smallest subnormal, written normalized


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.5", "not a hex float"),
        ("0x1.8p-1 ", "not a hex float"),
        ("0X1.8P-1", "not a hex float"),
        ("0x1p-1", "not a hex float"),
        ("NaN", "not a hex float"),
        ("0x1.00000000000008p+0", "not a hex float"),  # 14 digits: more than float64 has
        ("0x1.0p+1024", "too large for float64"),
        ("0x1.0p-1075", "would be rounded"),  # half the smallest subnormal
        ("0x1.8p-1074", "would be rounded"),
    ],
)
def test_a_malformed_or_inexact_hex_float_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_hex(text)


def test_a_value_outside_the_dtype_is_refused() -> None:
    with pytest.raises(ValueError, match=r"element 1: '0x1\.0000000000001p\+0' is not a float32"):
        array_from_hex(["0x1.0p+0", "0x1.0000000000001p+0"], "float32")
    with pytest.raises(ValueError, match=r"element 0: .* is not a float16"):
        array_from_hex(["0x1.0p+16"], "float16")  # overflows float16
    with pytest.raises(ValueError, match="element 2: not a hex float"):
        array_from_hex(["nan", "inf", "0.5"], "float64")
    with pytest.raises(ValueError, match="expected a hex float string"):
        from_hex(0.5)  # type: ignore[arg-type]


def test_the_schema_holds_the_codecs_pattern() -> None:
    assert schema()["$defs"]["hex"]["pattern"] == HEX_PATTERN
