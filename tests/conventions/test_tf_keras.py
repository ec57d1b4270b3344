"""nagref.conventions.tf_keras: its three code paths, the graph and XLA variants, validation
(its live checks: conformance/)."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import pytest

from nagref.conventions import keras, tf_keras


def _f32(x: float) -> float:
    return float(np.float32(x))


def _fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a·b + c rounded once, for float32 (exact in float64 for these magnitudes)."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(a.dtype)


def _arrays(n: int, dtype: object, seed: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(n).astype(dtype) for _ in range(3))  # type: ignore[call-overload]


@pytest.mark.parametrize("optimizer", ["sgd", "raw_op"])
def test_momentum_zero_keeps_a_velocity_and_the_sign_of_zero_turns(optimizer: str) -> None:
    """The issue's case: var = -0.0, g = 0 gives +0.0 (θ + (−0·η + 0·0)), where the legacy
    optimizer and Keras 3 (θ − gη) keep −0.0; and an inf gradient poisons the next step."""
    var, g = np.array([-0.0, 1.0], np.float32), np.array([0.0, np.inf], np.float32)
    new, m = tf_keras.sgd(var, g, None, learning_rate=0.1, optimizer=optimizer)
    assert m is not None
    assert np.signbit(new[0]) == np.False_
    assert new[0] == 0
    assert new[1] == -np.inf
    assert m[1] == -np.inf
    new2, m2 = tf_keras.sgd(new, np.ones(2, np.float32), m, learning_rate=0.1, optimizer=optimizer)
    assert np.isnan(new2[1])
    assert np.isnan(m2[1])
    legacy, state = tf_keras.sgd(var, g, None, learning_rate=0.1, optimizer="legacy")
    assert state is None
    assert np.signbit(legacy[0])
    keras3, _ = keras.sgd(var, g, None, learning_rate=0.1)
    assert keras3.tobytes() == legacy.tobytes()
    later, _ = tf_keras.sgd(legacy, np.ones(2, np.float32), None, learning_rate=0.1,
                            optimizer="legacy")  # fmt: skip
    assert later[1] == -np.inf


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("nesterov", [False, True])
def test_legacy_is_keras3_on_tensorflow_and_sgd_is_it_with_momentum(
    dtype: str, nesterov: bool
) -> None:
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype
    var, g, v = _arrays(300, np_dtype)
    common = {"learning_rate": 0.0123, "momentum": 0.9, "nesterov": nesterov}
    want = keras.sgd(var, g, v, **common)  # type: ignore[arg-type]
    for optimizer in ("legacy", "sgd"):
        got = tf_keras.sgd(var, g, v, optimizer=optimizer, **common)  # type: ignore[arg-type]
        assert got[0].tobytes() == want[0].tobytes()
        assert got[1] is not None
        assert want[1] is not None
        assert got[1].tobytes() == want[1].tobytes()
    decayed = tf_keras.sgd(var, g, v, weight_decay=0.01, **common)  # type: ignore[arg-type]
    keras_decayed = keras.sgd(var, g, v, weight_decay=0.01, **common)  # type: ignore[arg-type]
    assert decayed[0].tobytes() == keras_decayed[0].tobytes()


def test_the_raw_op_takes_float64_hyperparameters_unrounded() -> None:
    var, g, v = _arrays(200, np.float64)
    lr, mu = 0.0123, 0.9
    new, m = tf_keras.sgd(var, g, v, learning_rate=lr, momentum=mu, optimizer="raw_op")
    assert m is not None
    assert m.tobytes() == (v * mu - g * lr).tobytes()
    assert new.tobytes() == (var + m).tobytes()
    legacy, _ = tf_keras.sgd(var, g, v, learning_rate=lr, momentum=mu, optimizer="legacy")
    assert legacy.tobytes() == (var + (v * _f32(mu) - g * _f32(lr))).tobytes()
    assert legacy.tobytes() != new.tobytes()


def test_tf_function_folds_the_weight_decay_except_0d_and_one_float32_element() -> None:
    lr, wd = 0.037, 0.061
    theta = np.random.default_rng(2).uniform(-30, 30, 4000).astype(np.float32)
    folded = theta - theta * np.float32(_f32(lr) * _f32(wd))  # fl(ηλ) in float32
    eager = theta - (theta * np.float32(wd)) * np.float32(lr)
    assert folded.tobytes() != eager.tobytes()
    zero = np.zeros_like(theta)

    def step(p: Any) -> Any:
        zeros = {k: np.zeros_like(a) for k, a in p.items()} if isinstance(p, dict) else 0 * p
        new, _ = tf_keras.sgd(
            p, zeros, zeros, learning_rate=lr, momentum=0.5, weight_decay=wd, tf_function=True
        )
        return new

    assert step(theta).tobytes() == (folded + zero).tobytes()
    # a pytree of 0-d, one-element and larger leaves: each its own rule, one structure
    k = int(np.flatnonzero(folded != eager)[0])
    got = step({"s": theta[k].reshape(()), "one": theta[k : k + 1], "many": theta[k:]})
    assert got["s"].shape == ()
    assert got["s"] == eager[k]
    assert got["one"][0] == eager[k]  # float32: the learning rate needs no cast
    assert got["many"][0] == folded[k]
    wide = theta[k : k + 1].astype(np.float64)
    one64 = step(wide)
    lr64, wd64 = _f32(lr), _f32(wd)
    assert one64[0] == (wide - wide * (lr64 * wd64))[0]  # float64: folded


@pytest.mark.parametrize("nesterov", [False, True])
def test_jit_compile_contracts_and_fuses_g_lr_where_momentum_is_one(nesterov: bool) -> None:
    rng = np.random.default_rng(4)
    var, g, v = (rng.uniform(0.5, 1.0, 4000).astype(np.float32) for _ in range(3))
    lr, mu = np.float32(0.0123457), np.float32(0.9)

    def jit(p: np.ndarray, m: float, **kw: object) -> tuple[np.ndarray, np.ndarray]:
        new, vel = tf_keras.sgd(
            p, g[: p.size].reshape(p.shape), v[: p.size].reshape(p.shape),
            learning_rate=float(lr), momentum=m, nesterov=nesterov, jit_compile=True,
            native_float16=True, **kw,
        )  # type: ignore[arg-type]  # fmt: skip
        assert vel is not None
        return new, vel

    new, vel = jit(var, float(mu))
    b = -(g * lr)
    assert vel.tobytes() == _fma(v, np.full_like(v, mu), b).tobytes()
    want = var + (_fma(vel, np.full_like(vel, mu), b) if nesterov else vel)
    assert new.tobytes() == want.tobytes()
    eager, _ = tf_keras.sgd(var, g, v, learning_rate=float(lr), momentum=float(mu),
                            nesterov=nesterov)  # fmt: skip
    assert eager.tobytes() != new.tobytes()
    # μ rounds to 1: XLA drops v·1 and fuses g·η, v' = fma(−g, η, v)
    _new1, vel1 = jit(var, 0.9999999999)
    assert vel1.tobytes() == _fma(-g, np.full_like(g, lr), v).tobytes()
    rounded = v + b
    assert vel1.tobytes() != rounded.tobytes()
    # ... except the Nesterov step of a one-element variable
    _one, one_vel = jit(var[:1].reshape(()), 0.9999999999)
    assert one_vel == (rounded[0] if nesterov else vel1[0])


def test_jit_keeps_bfloat16_and_non_native_float16_eager() -> None:
    for dtype, native in ((ml_dtypes.bfloat16, True), (np.float16, False)):
        var, g, v = _arrays(100, dtype)
        args = {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True}
        jit = tf_keras.sgd(var, g, v, jit_compile=True, native_float16=native, **args)  # type: ignore[arg-type]
        eager = tf_keras.sgd(var, g, v, **args)  # type: ignore[arg-type]
        assert jit[0].tobytes() == eager[0].tobytes()


def test_out_writes_in_place_and_inputs_stay() -> None:
    var, g, v = _arrays(50, np.float32)
    keep = var.copy(), v.copy()
    fresh = tf_keras.sgd(var, g, v, learning_rate=0.1, momentum=0.9)
    assert var.tobytes() == keep[0].tobytes()
    assert v.tobytes() == keep[1].tobytes()
    result = tf_keras.sgd(var, g, v, learning_rate=0.1, momentum=0.9, out=(var, v))
    assert result[0] is var
    assert result[1] is v
    assert fresh[1] is not None
    assert var.tobytes() == fresh[0].tobytes()
    with pytest.raises(ValueError, match="out\\[1\\] must be None"):
        tf_keras.sgd(var, g, None, learning_rate=0.1, optimizer="legacy", out=(var, v))


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        ({"optimizer": "adam"}, ValueError, "optimizer must be one of sgd, legacy, raw_op"),
        ({"momentum": 1.5}, ValueError, r"`momentum` must be between \[0, 1\]"),
        ({"learning_rate": "0.1"}, TypeError, "learning_rate must be a real number"),
        ({"nesterov": 1}, TypeError, "nesterov must be a bool, got 1"),
        ({"optimizer": "legacy", "weight_decay": 0.1}, ValueError, "weight_decay is tf_keras"),
        ({"jit_compile": "yes"}, TypeError, "jit_compile must be a bool, got 'yes'"),
        ({"tf_function": 1}, TypeError, "tf_function must be a bool, got 1"),
        ({"native_float16": 1}, TypeError, "native_float16 must be a bool or None"),
        ({"optimizer": "raw_op", "jit_compile": True}, ValueError, "optimizer='raw_op'"),
        ({"jit_compile": True, "tf_function": True}, NotImplementedError, "not modelled"),
    ],
)
def test_bad_arguments_are_named(
    keywords: dict[str, object], error: type[Exception], message: str
) -> None:
    var, g, v = _arrays(4, np.float32)
    arguments: dict[str, object] = {"learning_rate": 0.1, "momentum": 0.5, **keywords}
    with pytest.raises(error, match=message):
        tf_keras.sgd(var, g, v, **arguments)  # type: ignore[arg-type]


def test_the_raw_op_takes_any_momentum() -> None:
    var, g, v = _arrays(4, np.float64)
    _, m = tf_keras.sgd(var, g, v, learning_rate=0.1, momentum=1.5, optimizer="raw_op")
    assert m is not None
    assert m.tobytes() == (v * 1.5 - g * 0.1).tobytes()


def test_a_float64_learning_rate_variable_reaches_float16_through_float32() -> None:
    """set_floatx("float64"): the new optimizer's learning rate is a float64 variable, cast at
    run time (float16 through float32, as TensorFlow's Cast does); float64 sees it unrounded."""
    lr = 0.4456787  # float16(lr) != float16(float32(lr))
    assert np.float16(lr) != np.float16(np.float32(lr))
    one = np.ones(1, np.float16)
    new, _ = tf_keras.sgd(0 * one, one, None, learning_rate=lr, learning_rate_dtype="float64")
    assert new[0] == -np.float16(np.float32(lr))
    wide, _ = tf_keras.sgd(np.zeros(1), np.ones(1), None, learning_rate=lr,
                           learning_rate_dtype="float64")  # fmt: skip
    assert wide[0] == -lr
    narrow, _ = tf_keras.sgd(np.zeros(1), np.ones(1), None, learning_rate=lr)
    assert narrow[0] == -_f32(lr)
    with pytest.raises(ValueError, match="learning_rate_dtype must be one of float32, float64"):
        tf_keras.sgd(one, one, None, learning_rate=lr, learning_rate_dtype="float16")
    with pytest.raises(ValueError, match=r"learning_rate_dtype is tf_keras\.optimizers\.SGD's"):
        tf_keras.sgd(one, one, None, learning_rate=lr, learning_rate_dtype="float64",
                     optimizer="legacy")  # fmt: skip
    with pytest.raises(NotImplementedError, match="float64 learning rate is not modelled"):
        tf_keras.sgd(one, one, None, learning_rate=lr, learning_rate_dtype="float64",
                     jit_compile=True)  # fmt: skip
