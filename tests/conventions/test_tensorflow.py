"""nagref.conventions.tensorflow: validation, states, purity (its live checks: conformance/)."""

from __future__ import annotations

import numpy as np

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
