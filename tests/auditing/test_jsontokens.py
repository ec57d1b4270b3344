"""nagref.auditing.jsontokens: strict tokens, bounded strings and numbers, exact hex runs."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nagref.auditing import jsontokens
from nagref.auditing.jsontokens import MAX_DEPTH, MalformedError, Tokens, parse_hex
from nagref.vectors.hexfloat import to_hex


def _hex_list(words: list[str], separator: str = ", ") -> Tokens:
    return Tokens(("[" + separator.join(f'"{w}"' for w in words) + "]").encode())


def _hex(words: list[str], dtype: str = "float64", separator: str = ", ") -> np.ndarray:
    runs = list(_hex_list(words, separator).hex_floats("x", dtype))
    return np.concatenate(runs) if runs else np.empty(0, dtype)


@given(st.lists(st.floats(width=64), max_size=50))
def test_hex_runs_read_back_every_float64_bit_for_bit(values: list[float]) -> None:
    got = _hex([to_hex(v) for v in values])
    want = np.array(values, dtype=np.float64)
    assert got.dtype == np.float64
    assert (
        got.view(np.uint64)[~np.isnan(got)].tolist()
        == want.view(np.uint64)[~np.isnan(want)].tolist()
    )
    assert np.isnan(got).tolist() == np.isnan(want).tolist()


def test_edge_values_signed_zeros_subnormals_and_non_canonical_spellings() -> None:
    words = [
        "-0x0.0p+0",
        "0x0.0000000000001p-1022",  # the smallest subnormal
        "0x1.0p-1074",  # the same value, not float.hex's spelling
        "0x1.fffffffffffffp+1023",
        "0x0.8p+1",  # 1.0
        "0x1.8p-1",
        "nan",
        "-inf",
        "inf",
    ]
    got = _hex(words, separator=" ,\n\t ")
    assert struct.pack("<d", got[0]) == struct.pack("<d", -0.0)
    assert got[1] == got[2] == 5e-324
    assert got[3] == np.finfo(np.float64).max
    assert got[4] == 1.0
    assert got[5] == 0.75
    assert math.isnan(got[6])
    assert got[7] == -math.inf
    assert got[8] == math.inf


@pytest.mark.parametrize(
    ("word", "dtype", "message"),
    [
        ("0x1.0p+9999", "float64", r"x\[1\]: '0x1.0p\+9999' is out of range for float64"),
        ("0x1.0p+1024", "float64", "out of range for float64"),
        ("0x1.0p-1075", "float64", "not exactly a float64"),  # below the smallest subnormal
        ("0x1.0000000000001p+0", "float32", "not a float32 value"),
        ("0x1.0p+128", "float32", "not a float32 value"),
        ("0x1.0p-150", "float32", "not a float32 value"),
        ("0x1.002p+0", "float16", "not a float16 value"),
    ],
)
def test_a_value_the_dtype_cannot_hold_is_named(word: str, dtype: str, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        _hex(["0x1.0p+0", word], dtype)


@pytest.mark.parametrize(
    "word",
    ["0x1p99999", "0x1.0p99", "0X1.0p+0", "0x2.0p+0", "0x1.0", "1.0", "-nan", "0x1.0p+12345"],
)
def test_a_string_that_is_not_a_hex_float_is_refused(word: str) -> None:
    with pytest.raises(MalformedError, match="expected a hex float string"):
        _hex(["0x1.0p+0", word])


def test_long_lists_go_in_runs_and_keep_their_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsontokens, "_CHUNK", 64)  # a few items per run
    values = np.random.default_rng(0).standard_normal(500).astype(np.float32)
    runs = list(_hex_list([to_hex(v) for v in values], " ,  ").hex_floats("x", "float32"))
    assert len(runs) > 50
    assert np.concatenate(runs).tobytes() == values.tobytes()
    decimals = Tokens(b'["1.5e+00" ,\n "nan", "-2e-01"]')
    assert decimals.decimals("d") == 3
    with pytest.raises(MalformedError, match="expected a decimal string"):
        Tokens(b'["1.5", "nan"]').decimals("d")


def test_strings_keys_and_their_limits() -> None:
    assert Tokens(b'"a\\n\\u00e9\\"b"').string("s") == 'a\né"b'
    assert Tokens('"caf\u00e9"'.encode()).string("s") == "caf\u00e9"
    with pytest.raises(MalformedError, match="longer than the limit of 8 bytes"):
        Tokens(b'"' + b"a" * 10_000 + b'"').string("s", 8)
    with pytest.raises(MalformedError, match="a control character or a bad escape"):
        Tokens(b'"a\nb"').string("s")
    with pytest.raises(MalformedError, match="a control character or a bad escape"):
        Tokens(b'"a\\xb"').string("s")
    with pytest.raises(MalformedError, match="a control character or a bad escape"):
        Tokens(b'"abc').string("s")
    with pytest.raises(MalformedError, match="not UTF-8"):
        Tokens(b'"\xff"').string("s")
    with pytest.raises(MalformedError, match="expected a string at byte 1, got '1'"):
        Tokens(b" 1").string("s")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"1" * 5000, "too long or out of range"),
        (b"1e99999", "too long or out of range"),
        (b"-1", "expected a non-negative integer"),
        (b"1.0", "expected an integer of at most 18 digits, got 1.0"),
        (b"1e3", "got 1e3"),
        (b'"1"', "expected a non-negative integer"),
        (b"true", "expected a non-negative integer"),
        (b"1" * 19, "at most 18 digits"),
    ],
)
def test_integers_are_json_integers_of_bounded_size(text: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        Tokens(text).integer("n")


def test_objects_refuse_unknown_repeated_and_missing_keys() -> None:
    t = Tokens(b'{"a": 1, "b": 2}')
    assert [(k, t.integer(k)) for k in t.members("o", frozenset("ab"), ("a",))] == [
        ("a", 1),
        ("b", 2),
    ]
    t = Tokens(b'{"a": 1, "a": 2}')
    keys = t.members("o", None)
    t.integer(next(keys))
    with pytest.raises(MalformedError, match="o: the key 'a' appears twice"):
        next(keys)
    with pytest.raises(MalformedError, match="o: unknown key 'c'"):
        list(Tokens(b'{"c": [1, 2, 3]}').members("o", frozenset("ab")))
    with pytest.raises(MalformedError, match="o: missing key 'b'"):
        list(Tokens(b"{}").members("o", frozenset("ab"), ("b",)))
    with pytest.raises(MalformedError, match="expected an object at byte 0"):
        list(Tokens(b"[]").members("o", None))


def test_skip_checks_a_free_value_bounded_in_depth_and_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t = Tokens(b'{"a": [1, -2.5e-3, "x", true, null, {}, []], "b": {"c": {"d": false}}} tail')
    t.skip("v")
    assert t.data[t.pos :].strip() == b"tail"
    deep = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    with pytest.raises(MalformedError, match=f"nested more than {MAX_DEPTH} deep"):
        Tokens(deep).skip("v")
    with pytest.raises(MalformedError, match=f"nested more than {MAX_DEPTH} deep"):
        Tokens(b"[" * 1_000_000).skip("v")  # no RecursionError, however deep
    with pytest.raises(MalformedError, match="the key 'a' appears twice"):
        Tokens(b'[{"a": 1, "a": 2}]').skip("v")
    with pytest.raises(MalformedError, match="expected ',' or the container's end"):
        Tokens(b"[1 2]").skip("v")
    monkeypatch.setattr(jsontokens, "MAX_VALUES", 1000)
    Tokens(b"[" + b"0," * 998 + b"0]").skip("v")  # 1000 values with the list itself
    with pytest.raises(MalformedError, match="more than 1000 values"):
        Tokens(b"[" + b"0," * 999 + b"0]").skip("v")


def test_parse_hex_alone_on_a_run() -> None:
    run = b'"0x1.0p+0", "-0x1.8p+1","inf"'
    assert parse_hex(run).tolist() == [1.0, -3.0, math.inf]
