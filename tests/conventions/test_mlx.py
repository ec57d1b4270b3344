"""nagref.conventions.mlx: the recurrence, casts, first step, validation, purity (its live
checks: conformance/frameworks/test_live.py and test_mlx_live.py)."""

from __future__ import annotations

import numpy as np
import pytest

from nagref._dtypes import round_to
from nagref.conventions import mlx


def _arrays(dtype: str = "float32", n: int = 300) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(11)
    return tuple(rng.standard_normal(n).astype(dtype) for _ in range(3))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("momentum", "weight_decay", "dampening", "nesterov"),
    [
        (0.9, 0.0, 0.0, False),
        (0.9, 0.01, 0.0, True),
        (0.5, 0.03, 0.25, False),
        (0.0, 0.01, 0.0, False),
    ],
)
def test_each_operation_rounds_in_the_dtype(
    dtype: str, momentum: float, weight_decay: float, dampening: float, nesterov: bool
) -> None:
    p, g, v = _arrays(dtype)
    new_p, new_v = mlx.sgd(
        p, g, v, learning_rate=0.0123, momentum=momentum, weight_decay=weight_decay,
        dampening=dampening, nesterov=nesterov,
    )  # fmt: skip
    # apply_single, written with NumPy operations in the dtype (each rounded on its own)
    s = np.dtype(dtype).type
    lr = s(np.float32(0.0123))  # mx.array(lr) is float32, cast to the dtype
    if weight_decay:
        g = g + s(weight_decay) * p
    want_v = v
    if momentum > 0:
        want_v = s(momentum) * v
        want_v = want_v + s(1 - dampening) * g if dampening > 0 else want_v + g
        update = g + s(momentum) * want_v if nesterov else want_v
    else:
        update = g
    assert new_v.tobytes() == want_v.tobytes()
    assert new_p.tobytes() == (p - lr * update).tobytes()
    assert new_v is not v  # a new array, even where MLX leaves the state as it was


def test_the_learning_rate_is_a_float32_number_even_for_float64() -> None:
    p, g = np.array([1.0]), np.array([1.0])
    new_p, _ = mlx.sgd(p, g, None, learning_rate=0.1)
    assert new_p[0] == 1.0 - float(np.float32(0.1))
    assert new_p[0] != 1.0 - 0.1


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_hyperparameters_are_rounded_through_float32(dtype: str) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    kind = np.float16 if dtype == "float16" else ml_dtypes.bfloat16
    bits = 0x3B34 if dtype == "float16" else 0x3F66  # near 0.9, even
    lo, hi = (float(np.array([b], np.uint16).view(kind)[0]) for b in (bits, bits + 1))
    mu = (lo + hi) / 2 * (1 + 2.0**-40)  # once: hi; through float32: the tie, lo
    assert round_to(mu, dtype) == hi
    p, v = np.zeros(1, kind), np.ones(1, kind)
    for name in ("momentum", "learning_rate"):
        keywords = {"learning_rate": 1.0, "momentum": 0.5, name: mu}
        new_p, new_v = mlx.sgd(p, np.zeros(1, kind), v, **keywords)
        # v = mu * 1 + 0 (momentum), or p = 0 - lr * (0.5 * 1) (learning rate)
        got = float(new_v[0]) if name == "momentum" else -2 * float(new_p[0])
        assert got == lo, name


def test_the_velocity_starts_at_zeros_so_minus_zero_gradients_give_plus_zero() -> None:
    p = np.ones(3, np.float32)
    g = np.array([-0.0, 0.0, -1.0], np.float32)
    new_p, new_v = mlx.sgd(p, g, None, learning_rate=0.5, momentum=0.9)
    assert not np.signbit(new_v[0])  # 0.9 * 0 + (-0) = +0; a copy of g would be -0
    same = mlx.sgd(p, g, np.zeros(3, np.float32), learning_rate=0.5, momentum=0.9)
    assert same[0].tobytes() == new_p.tobytes()
    assert same[1].tobytes() == new_v.tobytes()
    _, unused = mlx.sgd(p, g, None, learning_rate=0.5)  # momentum 0: zeros, untouched
    assert unused.tolist() == [0.0, 0.0, 0.0]


def test_subnormals_are_not_flushed() -> None:
    tiny = np.float32(1e-40)  # subnormal
    new_p, new_v = mlx.sgd(
        np.array([tiny]), np.array([tiny]), None, learning_rate=0.0, momentum=0.9
    )
    assert new_v[0] == tiny
    assert new_p[0] == tiny


def test_negative_momentum_is_plain_sgd_and_negative_dampening_none() -> None:
    p, g, v = _arrays()
    plain = mlx.sgd(p, g, v, learning_rate=0.1, momentum=-0.5)
    assert plain[1].tobytes() == v.tobytes()
    assert plain[0].tobytes() == mlx.sgd(p, g, v, learning_rate=0.1)[0].tobytes()
    assert (
        mlx.sgd(p, g, v, learning_rate=0.1, momentum=0.9, dampening=-0.5)[1].tobytes()
        == mlx.sgd(p, g, v, learning_rate=0.1, momentum=0.9)[1].tobytes()
    )  # apply_single dampens only for dampening > 0


def test_compiled_gives_the_eager_bits() -> None:
    p, g, v = _arrays("float16")
    keywords = {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}
    eager = mlx.sgd(p, g, v, **keywords)
    compiled = mlx.sgd(p, g, v, compiled=True, **keywords)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(eager, compiled, strict=True))


def test_pure_and_in_place() -> None:
    p, g, v = _arrays()
    before = [a.copy() for a in (p, g, v)]
    new_p, new_v = mlx.sgd(p, g, v, learning_rate=0.1, momentum=0.9)
    assert all(a.tobytes() == b.tobytes() for a, b in zip((p, g, v), before, strict=True))
    got = mlx.sgd(p, g, v, learning_rate=0.1, momentum=0.9, out=(p, v))
    assert got[0] is p
    assert got[1] is v
    assert p.tobytes() == new_p.tobytes()
    assert v.tobytes() == new_v.tobytes()


def test_bad_arguments_are_named() -> None:
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero damp"):
        mlx.sgd(x, x, x, learning_rate=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"momentum=0\.0"):
        mlx.sgd(x, x, x, learning_rate=0.1, nesterov=True)
    with pytest.raises(TypeError, match="learning_rate must be a real number, got str 'fast'"):
        mlx.sgd(x, x, x, learning_rate="fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dampening must be a real number"):
        mlx.sgd(x, x, x, learning_rate=0.1, dampening=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="compiled must be a bool, got int 1"):
        mlx.sgd(x, x, x, learning_rate=0.1, compiled=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out must be a pair"):
        mlx.sgd(x, x, x, learning_rate=0.1, out=x)  # type: ignore[arg-type]
