"""nagref.conventions.tensorflow: validation, states, purity (its live checks: conformance/)."""

from __future__ import annotations

import numpy as np
import pytest

from nagref.conventions import tensorflow


def _arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal(20).astype("float32"), rng.standard_normal(20).astype("float32")


def test_tensorflow_flushes_float32_subnormals_and_keeps_inputs() -> None:
    var = np.array([1e-40, 1.0], np.float32)
    accum = np.zeros(2, np.float32)
    grad = np.array([0.0, 1.0], np.float32)
    new_var, new_accum = tensorflow.apply_momentum(var, accum, grad, lr=0.0, momentum=0.9)
    assert new_var[0] == 0  # flushed
    assert var[0] != 0  # the input untouched
    assert new_accum.tolist() == [0.0, 1.0]


def test_the_v1_optimizer_rounds_lr_and_momentum_to_float32_first() -> None:
    lr, mu = 0.1, 0.9
    var, accum = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    grad = np.array([0.3, -0.7])
    new_var, new_accum = tensorflow.apply_momentum(
        var, accum, grad, lr=lr, momentum=mu, v1_optimizer=True
    )
    lr32, mu32 = float(np.float32(lr)), float(np.float32(mu))
    expected_accum = accum * mu32 + grad
    assert new_accum.tobytes() == expected_accum.tobytes()
    assert new_var.tobytes() == (var - expected_accum * lr32).tobytes()
    raw_var, _ = tensorflow.apply_momentum(var, accum, grad, lr=lr, momentum=mu)
    assert raw_var.tobytes() != new_var.tobytes()
    # float32 and float16 variables: the same bits as the raw op's tf.constant
    for dtype in (np.float32, np.float16):
        args = (var.astype(dtype), accum.astype(dtype), grad.astype(dtype))
        v1 = tensorflow.apply_momentum(*args, lr=lr, momentum=mu, v1_optimizer=True)
        raw = tensorflow.apply_momentum(*args, lr=lr, momentum=mu)
        assert v1[0].tobytes() == raw[0].tobytes()
    with pytest.raises(TypeError, match="v1_optimizer must be a bool, got 'yes'"):
        tensorflow.apply_momentum(
            var, accum, grad, lr=lr, momentum=mu, v1_optimizer="yes"  # type: ignore[arg-type]
        )
