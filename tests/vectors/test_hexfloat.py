"""The one hex-float codec: exact for every float16, float32, float64 and bfloat16 value.

And for bfloat16, its bit patterns, its shortest decimals and rounding into it once.
"""

from __future__ import annotations

import decimal
import math

import ml_dtypes
import numpy as np
import pytest

from nagref import _dtypes
from nagref._compare import bitwise_equal
from nagref.vectors import schema
from nagref.vectors.hexfloat import (
    BITS_DTYPES,
    BITS_PATTERN,
    HEX_PATTERN,
    array_from_bits,
    array_from_hex,
    array_to_bits,
    array_to_hex,
    from_hex,
    narrow,
    numpy_dtype,
    reads_back,
    shortest_decimal,
    to_hex,
)

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


# -- bfloat16: bit patterns, rounding once, shortest decimals ------------------------------

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
EVERY_BFLOAT16 = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
# name: (bits, hex, decimal)
SPECIAL = {
    "+0": (0x0000, "0x0.0p+0", "0e+00"),
    "-0": (0x8000, "-0x0.0p+0", "-0e+00"),
    "one": (0x3F80, "0x1.0000000000000p+0", "1e+00"),
    "1/3": (0x3EAB, "0x1.5600000000000p-2", "3.34e-01"),
    "smallest subnormal": (0x0001, "0x1.0000000000000p-133", "9e-41"),
    "-smallest subnormal": (0x8001, "-0x1.0000000000000p-133", "-9e-41"),
    "largest subnormal": (0x007F, "0x1.fc00000000000p-127", "1.17e-38"),
    "smallest normal": (0x0080, "0x1.0000000000000p-126", "1.18e-38"),
    "max": (0x7F7F, "0x1.fe00000000000p+127", "3.39e+38"),
    "-max": (0xFF7F, "-0x1.fe00000000000p+127", "-3.39e+38"),
    "inf": (0x7F80, "inf", "inf"),
    "-inf": (0xFF80, "-inf", "-inf"),
    "nan": (0x7FC0, "nan", "nan"),
    "-nan with a payload": (0xFFC1, "nan", "nan"),
    "signalling nan": (0x7F81, "nan", "nan"),
}


def test_bfloat16_is_the_dtype_with_bits_and_two_bytes_wide() -> None:
    assert BITS_DTYPES == ("bfloat16",)
    assert numpy_dtype("bfloat16") == BFLOAT16
    assert numpy_dtype("float16") == np.dtype(np.float16)
    assert schema()["$defs"]["bits"]["pattern"] == BITS_PATTERN


def test_every_bfloat16_round_trips_through_hex_and_through_bits() -> None:
    values = EVERY_BFLOAT16.view(BFLOAT16)
    words = array_to_hex(values)
    back = array_from_hex(words, "bfloat16")
    assert back.dtype == BFLOAT16
    with np.errstate(invalid="ignore"):  # the signalling NaNs
        assert bitwise_equal(back, values).all()  # NaN as NaN; zeros keep their signs
    patterns = array_to_bits(values)
    assert patterns[:2] == ["0x0000", "0x0001"]
    assert patterns[-1] == "0xffff"
    exact = array_from_bits(patterns, "bfloat16")
    assert exact.dtype == BFLOAT16
    assert exact.view(np.uint16).tobytes() == EVERY_BFLOAT16.tobytes()  # NaN payloads too


@pytest.mark.parametrize("name", list(SPECIAL))
def test_each_special_bfloat16_has_its_three_spellings(name: str) -> None:
    bits, hex_, decimal = SPECIAL[name]
    value = np.array([bits], np.uint16).view(BFLOAT16)
    assert array_to_bits(value) == [f"0x{bits:04x}"]
    assert array_to_hex(value) == [hex_]
    assert shortest_decimal(float(value[0]), "bfloat16") == decimal
    assert reads_back(decimal, float(value[0]), "bfloat16")
    assert array_from_bits([f"0x{bits:04x}"], BFLOAT16).view(np.uint16)[0] == bits


def test_every_bfloat16_decimal_is_shortest_and_reads_back_once_rounded() -> None:
    with np.errstate(invalid="ignore"):
        values = EVERY_BFLOAT16[::7].view(BFLOAT16).astype(np.float64)  # every exponent
    for value in values[np.isfinite(values)].tolist():
        text = shortest_decimal(value, "bfloat16")
        assert reads_back(text, value, "bfloat16"), (value, text)
        # the same through a float64, then rounded once, as a JavaScript reader would
        assert _dtypes.round_to(float(text), "bfloat16") == value, (value, text)
        assert math.copysign(1.0, float(text)) == math.copysign(1.0, value)
        digits = len(text.split("e")[0].replace("-", "").replace(".", ""))
        if digits > 1:  # no decimal of fewer digits reads back: the nearest, and its neighbours
            lead, _, power = f"{value:.{digits - 2}e}".partition("e")
            units, exponent = int(lead.replace(".", "")), int(power) - (digits - 2)
            for u in (units - 1, units, units + 1):
                assert not reads_back(f"{u}e{exponent}", value, "bfloat16"), (value, text, u)


def test_the_shortest_decimals_algorithm_is_numpys_for_its_own_dtypes() -> None:
    halves = np.arange(0, 2**16, 7, dtype=np.uint32).astype(np.uint16).view(np.float16)
    rng = np.random.default_rng(3)
    singles = rng.integers(0, 2**32, 3000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    for values, dtype in ((halves, "float16"), (singles, "float32")):
        for v in values[np.isfinite(values)]:
            want = np.format_float_scientific(v, unique=True, trim="-")
            assert shortest_decimal(float(v), dtype) == want


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("1.00390625e+00", 1.0, True),  # a tie: to the even 1.0
        ("1.01171875e+00", 1.015625, True),  # a tie: to the even 1.015625 (0x3f82)
        ("1.01171875e+00", 1.0078125, False),
        ("1.0039062500000000000000000001e+00", 1.0078125, True),  # a hair above the tie
        ("1.0039062499999999999999999999e+00", 1.0, True),
        ("1." + "0" * 5000 + "1e+00", 1.0, True),  # long, and exact
        ("1e-99999", 0.0, True),
        ("-1e-99999", 0.0, False),  # the sign of zero matters
        ("-1e-99999", -0.0, True),
        (str(decimal.Decimal(2.0**-134)), 0.0, True),  # half the smallest subnormal: to 0
        (str(decimal.Decimal(2.0**-134)).replace("E-41", "1E-41"), 0.0, False),
        (str(decimal.Decimal(2.0**-134)).replace("E-41", "1E-41"), 2.0**-133, True),
        ("1e+99999", 3.3895313892515355e38, False),
        ("3.3961e+38", 3.3895313892515355e38, True),
        ("3.3962e+38", 3.3895313892515355e38, False),  # past the midpoint to 2**128: inf
        ("nan", math.nan, True),
        ("inf", math.nan, False),
        ("1.5", 1.5, True),
        ("x", 1.5, False),
    ],
)
def test_a_decimal_reads_back_rounded_once(text: str, value: float, expected: bool) -> None:
    assert reads_back(text, value, "bfloat16") is expected


def test_narrow_rounds_once_where_ml_dtypes_rounds_twice() -> None:
    x = np.array([1 + 2**-8 + 2**-40, 1 + 2**-8, -(1 + 2**-8 + 2**-40), 2.0**-134 * 1.5, 1e39])
    once = narrow(x, "bfloat16")
    assert once.dtype == BFLOAT16
    assert once.astype(np.float64).tolist() == [1 + 2**-7, 1.0, -(1 + 2**-7), 2.0**-133, math.inf]
    # ml_dtypes 0.6, through float32: twice, and wrong (0.7: once)
    twice = _dtypes.host_via("bfloat16") == "float32"
    assert float(x[:1].astype(BFLOAT16)[0]) == (1.0 if twice else 1 + 2**-7)
    rng = np.random.default_rng(5)
    wide = rng.standard_normal(20_000) * 10.0 ** rng.integers(-44, 39, 20_000)
    want = [_dtypes.round_to(v, "bfloat16") for v in wide.tolist()]
    assert narrow(wide, "bfloat16").astype(np.float64).tolist() == want
    with np.errstate(over="ignore"):
        assert narrow(wide, "float16").tobytes() == wide.astype(np.float16).tobytes()


@pytest.mark.parametrize("word", ["0x3F80", "0x3f8", "3f80", "0x3f800", " 0x3f80", "0x-3f8"])
def test_a_malformed_bit_pattern_is_refused(word: str) -> None:
    with pytest.raises(ValueError, match=r"element 1: not a bit pattern like 0x3fc0"):
        array_from_bits(["0x3f80", word], "bfloat16")


def test_bits_are_only_for_bfloat16() -> None:
    with pytest.raises(ValueError, match="bit patterns are written for bfloat16, not float16"):
        array_to_bits(np.zeros(2, np.float16))
    with pytest.raises(ValueError, match="bit patterns are written for bfloat16, not float32"):
        array_from_bits(["0x3f80"], "float32")
