"""nagref.conventions.keras, .optax and .tensorflow: validation, states, purity."""

from __future__ import annotations

import numpy as np
import pytest

from nagref.conventions import keras, optax, tensorflow


def _arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal(20).astype("float32"), rng.standard_normal(20).astype("float32")


@pytest.mark.parametrize("momentum", [1, -0.1, 1.5])
def test_keras_validates_momentum_like_keras(momentum: object) -> None:
    p, g = _arrays()
    with pytest.raises(ValueError, match=r"^`momentum` must be a float between \[0, 1\]\.$"):
        keras.sgd(p, g, None, learning_rate=0.1, momentum=momentum)  # type: ignore[arg-type]


def test_keras_names_a_bad_backend_and_learning_rate() -> None:
    p, g = _arrays()
    with pytest.raises(ValueError, match=r"backend must be one of .* got 'jaxx'"):
        keras.sgd(p, g, None, learning_rate=0.1, backend="jaxx")
    with pytest.raises(ValueError, match="Received instead: learning_rate=fast"):
        keras.sgd(p, g, None, learning_rate="fast")  # type: ignore[arg-type]


def test_keras_velocity_starts_at_zero_so_the_first_step_is_plain_sgd() -> None:
    p, g = _arrays()
    lr32 = np.float32(0.1)
    for backend in keras.BACKENDS:
        new, velocity = keras.sgd(p, g, None, learning_rate=0.1, momentum=0.9, backend=backend)
        assert velocity is not None
        plain, none = keras.sgd(p, g, None, learning_rate=0.1, backend=backend)
        assert none is None
        assert new.tobytes() == plain.tobytes(), backend
        assert np.array_equal(velocity, -(g * lr32)) or backend == "torch"


def test_optax_momentum_none_has_no_trace_but_zero_keeps_one() -> None:
    p, g = _arrays()
    assert optax.sgd(p, g, None, learning_rate=0.1)[1] is None
    _, trace = optax.sgd(p, g, None, learning_rate=0.1, momentum=0.0)
    assert trace is not None
    assert trace.tobytes() == (g + np.float32(0)).tobytes()


def test_optax_jit_contracts_where_eager_rounds_twice() -> None:
    p, g = _arrays()
    rng = np.random.default_rng(2)
    p, g = rng.standard_normal(1000).astype("float32"), rng.standard_normal(1000).astype("float32")
    eager, _ = optax.sgd(p, g, None, learning_rate=0.1)
    jitted, _ = optax.sgd(p, g, None, learning_rate=0.1, jit=True)
    assert eager.tobytes() == (p + np.float32(-0.1) * g).tobytes()
    assert eager.tobytes() != jitted.tobytes()


def test_tensorflow_flushes_float32_subnormals_and_keeps_inputs() -> None:
    var = np.array([1e-40, 1.0], np.float32)
    accum = np.zeros(2, np.float32)
    grad = np.array([0.0, 1.0], np.float32)
    new_var, new_accum = tensorflow.apply_momentum(var, accum, grad, lr=0.0, momentum=0.9)
    assert new_var[0] == 0  # flushed
    assert var[0] != 0  # the input untouched
    assert new_accum.tolist() == [0.0, 1.0]
