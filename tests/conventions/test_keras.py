"""nagref.conventions.keras: validation, states, purity (its live checks: conformance/)."""

from __future__ import annotations

import numpy as np
import pytest

from nagref.conventions import keras


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


def test_a_float64_learning_rate_reaches_float64_variables_unrounded() -> None:
    lr = 0.9000000000000001  # not a float32 number
    var, grad = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    for backend in ("jax", "torch"):
        wide, _ = keras.sgd(var, grad, None, learning_rate=lr, backend=backend,
                            learning_rate_dtype="float64")  # fmt: skip
        narrow, _ = keras.sgd(var, grad, None, learning_rate=lr, backend=backend)
        assert wide.tobytes() == (var - grad * lr).tobytes()
        assert narrow.tobytes() == (var - grad * float(np.float32(lr))).tobytes()
    # float16 on JAX: the Python float rounded once, as jnp converts it on the host
    half = np.array([1.0], np.float16)
    twice_lr = 0.288696291246982  # rounds to float16 differently through float32
    new, _ = keras.sgd(half, half, None, learning_rate=twice_lr, backend="jax",
                       learning_rate_dtype="float64")  # fmt: skip
    assert new[0] == half[0] - half[0] * np.float16(twice_lr)
    with pytest.raises(ValueError, match="learning_rate_dtype must be one of float32, float64"):
        keras.sgd(var, grad, None, learning_rate=lr, learning_rate_dtype="bfloat16")
