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


def _fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a·b + c rounded once, for float32 (exact in float64, then one rounding)."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(a.dtype)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("folded", [False, True])
def test_jit_compile_is_xlas_kernel_contracted(nesterov: bool, folded: bool) -> None:
    """float32: a' = fma(a, mu, g); var - fma(g, lr, fl(fl(a' mu) lr)) (folded: fl(a' fl(mu lr)))
    or fma(-a', lr, var). The float64 sums in _fma are exact for these magnitudes."""
    rng = np.random.default_rng(4)
    var, accum, grad = (rng.uniform(0.5, 1.0, 4000).astype(np.float32) for _ in range(3))
    lr, mu = np.float32(0.0123457), np.float32(0.9)
    new_var, new_accum = tensorflow.apply_momentum(
        var, accum, grad, lr=float(lr), momentum=float(mu), use_nesterov=nesterov,
        jit_compile=True, folded=folded, native_float16=True,
    )  # fmt: skip
    a = _fma(accum, np.full_like(accum, mu), grad)
    assert new_accum.tobytes() == a.tobytes()
    if nesterov:
        scaled = a * (mu * lr) if folded else (a * mu) * lr
        want = var - _fma(grad, np.full_like(grad, lr), scaled)
    else:
        want = _fma(-a, np.full_like(a, lr), var)
    assert new_var.tobytes() == want.tobytes()
    eager, _ = tensorflow.apply_momentum(
        var, accum, grad, lr=float(lr), momentum=float(mu), use_nesterov=nesterov
    )
    assert eager.tobytes() != new_var.tobytes()  # the eager kernel rounds every operation


def test_jit_compile_keeps_bfloat16_and_non_native_float16_rounding() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(5)
    for dtype, native in ((ml_dtypes.bfloat16, True), (np.float16, False)):
        var, accum, grad = (rng.standard_normal(500).astype(dtype) for _ in range(3))
        keywords = {"lr": 0.05, "momentum": 0.9, "use_nesterov": False}
        jit, _ = tensorflow.apply_momentum(
            var, accum, grad, jit_compile=True, native_float16=native, **keywords
        )
        eager, _ = tensorflow.apply_momentum(var, accum, grad, **keywords)
        assert jit.tobytes() == eager.tobytes()  # each operation rounded to 16 bits, alike
    native, _ = tensorflow.apply_momentum(
        var, accum, grad, jit_compile=True, native_float16=True, **keywords
    )
    assert native.tobytes() != jit.tobytes()  # AVX512-FP16: float16 FMAs


def test_jit_compile_refuses_what_it_does_not_model() -> None:
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="folded=True needs jit_compile=True"):
        tensorflow.apply_momentum(x, x, x, lr=0.1, momentum=0.9, folded=True)
    with pytest.raises(NotImplementedError, match="jit_compile=True with v1_optimizer=True"):
        tensorflow.apply_momentum(x, x, x, lr=0.1, momentum=0.9, jit_compile=True,
                                  v1_optimizer=True)  # fmt: skip
    with pytest.raises(TypeError, match="jit_compile must be a bool, got 1"):
        tensorflow.apply_momentum(x, x, x, lr=0.1, momentum=0.9, jit_compile=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="native_float16 must be a bool or None, got 'yes'"):
        tensorflow.apply_momentum(x, x, x, lr=0.1, momentum=0.9, native_float16="yes")  # type: ignore[arg-type]
