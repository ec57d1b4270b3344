"""nagref.conventions.optax: validation, states, purity (its live checks: conformance/)."""

from __future__ import annotations

import numpy as np

from nagref.conventions import optax


def _arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal(20).astype("float32"), rng.standard_normal(20).astype("float32")


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
