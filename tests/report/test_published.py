"""The element-wise published formulas, checked against hand derivations."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from oracle import round_rational

from nagref.report.published import (
    Arithmetic,
    rounded_gd,
    rounded_ruder,
    rounded_ruder_lookahead,
    rounded_sutskever,
    rounded_sutskever_lookahead,
)

F64 = Arithmetic("float64")


def test_rounding_is_to_nearest_even_with_overflow_to_inf() -> None:
    f32 = Arithmetic("float32")
    assert f32.round(0.1) == float(np.float32(0.1)) != 0.1
    assert f32.round(1 + 2**-24) == 1.0  # a tie rounds to even
    assert f32.round(1 + 3 * 2**-24) == 1 + 2**-22
    assert f32.round(1e39) == math.inf
    assert Arithmetic("float16").round(65520.0) == math.inf  # the float16 overflow threshold
    assert Arithmetic("float16").round(65519.0) == 65504.0


def test_flush_to_zero_keeps_the_sign() -> None:
    f32 = Arithmetic("float32", flush=True)
    assert f32.round(1e-40) == 0.0
    assert math.copysign(1.0, f32.round(-1e-40)) == -1.0
    assert Arithmetic("float32").round(1e-40) != 0.0
    assert f32.mul(1e-20, 1e-20) == 0.0  # the result is flushed


def test_unknown_dtype() -> None:
    with pytest.raises(
        ValueError,
        match=r"dtype must be one of \['bfloat16', 'float16', 'float32', 'float64'\], got 'int8'",
    ):
        Arithmetic("int8")


def test_constant_gradient_trajectories_by_hand() -> None:
    """g = 1, μ = 0.5, ε = 0.25 (all exact in binary): classical momentum moves
    θ = -0.25, -0.625, -1.0625 (v = -0.25, -0.375, -0.4375)."""
    theta, v = 0.0, 0.0
    thetas = []
    for _ in range(3):
        theta, v = rounded_sutskever(F64, theta, v, 1.0, eps=0.25, mu=0.5)
        thetas.append(theta)
    assert thetas == [-0.25, -0.625, -1.0625]
    assert v == -0.4375
    assert rounded_gd(F64, 1.0, 2.0, eps=0.25) == 0.5


def test_ruder_and_sutskever_are_mirror_images() -> None:
    """(θ, v) in Ruder's form is (θ, −v) in Sutskever's, and the look-ahead points agree."""
    for theta, v, g in [(1.5, 0.25, -3.0), (-2.0, 1e-3, 7.0)]:
        r = rounded_ruder(F64, theta, v, g, eta=0.1, gamma=0.9)
        s = rounded_sutskever(F64, theta, -v, g, eps=0.1, mu=0.9)
        assert r == (s[0], -s[1])
        assert rounded_ruder_lookahead(F64, theta, v, gamma=0.9) == rounded_sutskever_lookahead(
            F64, theta, -v, mu=0.9
        )


def test_exact_cancellation_gives_opposite_zeros() -> None:
    """Where the velocity cancels exactly, Ruder's V' is +0 but Sutskever's −v' is −0."""
    _, v_ruder = rounded_ruder(F64, 1.0, 1.0, -1.0, eta=0.5, gamma=0.5)  # 0.5 + (−0.5)
    _, v_sutskever = rounded_sutskever(F64, 1.0, -1.0, -1.0, eps=0.5, mu=0.5)  # −0.5 − (−0.5)
    assert v_ruder == 0.0
    assert math.copysign(1.0, v_ruder) == 1.0
    assert math.copysign(1.0, -v_sutskever) == -1.0


def test_bfloat16_is_rounded_once_against_exact_rationals() -> None:
    """The report's own bfloat16 rounding, independent of nagref's, against fractions."""
    ar = Arithmetic("bfloat16")
    rng = np.random.default_rng(3)
    for _ in range(4000):
        base = float(np.float32(rng.standard_normal() * 2.0 ** rng.integers(-140, 127)))
        # around a tie of the 16 dropped bits: at it, and 2**-40 either side
        bits = int(np.array(base, dtype=np.float32).view(np.uint32)) & 0xFFFF0000 | 0x8000
        tie = float(np.array(bits, dtype=np.uint32).view(np.float32))
        for x in (base, tie, tie * (1 + 2.0**-40), tie * (1 - 2.0**-40)):
            want = round_rational(Fraction(x), "bfloat16") if x else x
            assert ar.round(x) == want, x
    assert ar.round(3.4e38) == math.inf  # beyond bfloat16's largest + half a unit
    assert ar.tiny == 2.0**-126
