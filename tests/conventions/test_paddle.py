"""nagref.conventions.paddle: the kernel's operations, casts, refusals, purity.

Its live checks are in conformance/.
"""

from __future__ import annotations

import numpy as np
import pytest

from nagref.conventions import REGISTRY, paddle


def _arrays(dtype: type, n: int = 300, seed: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(n).astype(dtype) for _ in range(3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("decay", [None, 0.0123])
def test_each_eigen_operation_rounds_in_the_dtype(
    dtype: type, nesterov: bool, decay: float | None
) -> None:
    """v' = v*mu + g'; p - (g' + v'*mu)*lr or p - lr*v'; g' = p*coeff + g: NumPy's own rounding
    of each operation, mu and coeff through float32, lr rounded once to the dtype."""
    p, g, v = _arrays(dtype)
    lr, mu = 0.0123456789, 0.9
    new_p, new_v = paddle.momentum(
        p, g, v, learning_rate=lr, momentum=mu, use_nesterov=nesterov, weight_decay=decay
    )
    m, eta = dtype(np.float32(mu)), dtype(lr)
    h = g if decay is None else p * dtype(np.float32(decay)) + g
    want_v = v * m + h
    want_p = p - (h + want_v * m) * eta if nesterov else p - eta * want_v
    assert new_v.tobytes() == want_v.tobytes()
    assert new_p.tobytes() == want_p.tobytes()


def test_float64_sees_momentum_and_decay_as_float32_attributes_and_lr_unrounded() -> None:
    p, g, v = _arrays(np.float64)
    new_p, new_v = paddle.momentum(p, g, v, learning_rate=0.1, momentum=0.9, weight_decay=0.01)
    h = p * float(np.float32(0.01)) + g
    assert new_v.tobytes() == (v * float(np.float32(0.9)) + h).tobytes()
    assert new_p.tobytes() == (p - 0.1 * new_v).tobytes()
    direct = (v * 0.9 + (p * 0.01 + g)).tobytes()  # mu and coeff not through float32
    assert new_v.tobytes() != direct


def test_a_decay_by_zero_is_not_no_decay() -> None:
    p = np.array([np.inf, -1.0, 2.0], np.float32)
    g = np.array([1.0, 1.0, -0.0], np.float32)
    v = np.zeros(3, np.float32)
    _, none = paddle.momentum(p, g, v, learning_rate=0.1, momentum=0.9)
    _, zero = paddle.momentum(p, g, v, learning_rate=0.1, momentum=0.9, weight_decay=0.0)
    assert none.tolist() == [1.0, 1.0, 0.0]
    assert np.isnan(zero[0])  # inf * 0 is NaN
    assert zero[1:].tolist() == [1.0, 0.0]


def test_the_first_step_from_zeros_keeps_no_negative_zero_and_nothing_flushes() -> None:
    tiny = np.float32(1e-45)  # the smallest float32 subnormal
    p = np.array([1.0, tiny], np.float32)
    g = np.array([-0.0, tiny], np.float32)
    new_p, new_v = paddle.momentum(p, g, np.zeros(2, np.float32), learning_rate=1.0)
    assert new_v[0] == 0
    assert not np.signbit(new_v[0])  # +0 * mu + -0 = +0
    assert new_v[1] == tiny  # a subnormal kept, not flushed
    assert new_p[1] == 0


def test_rescale_grad_and_multi_precision_change_nothing_on_cpu() -> None:
    p, g, v = _arrays(np.float32)
    plain = paddle.momentum(p, g, v, learning_rate=0.05, use_nesterov=True, weight_decay=0.1)
    other = paddle.momentum(
        p, g, v, learning_rate=0.05, use_nesterov=True, weight_decay=0.1,
        rescale_grad=0.5, multi_precision=True,
    )  # fmt: skip
    for a, b in zip(plain, other, strict=True):
        assert a.tobytes() == b.tobytes()
    scaled = paddle.momentum(p, g * 0.5, v, learning_rate=0.05, use_nesterov=True,
                             weight_decay=0.1)  # fmt: skip
    assert scaled[0].tobytes() != other[0].tobytes()  # the gradient was not rescaled


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_parameters_are_refused_as_paddle_has_no_cpu_kernel(dtype: str) -> None:
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        x = np.ones(3, ml_dtypes.bfloat16)
    else:
        x = np.ones(3, np.float16)
    with pytest.raises(TypeError, match=rf"param has dtype {dtype}; Paddle's CPU momentum kernel"):
        paddle.momentum(x, x, x, learning_rate=0.1, multi_precision=True)


def test_inputs_are_kept_and_out_steps_in_place_with_the_same_bits() -> None:
    p, g, v = _arrays(np.float64, n=50)
    keep = p.copy(), g.copy(), v.copy()
    new_p, new_v = paddle.momentum(p, g, v, learning_rate=0.3, momentum=0.5, use_nesterov=True)
    for a, b in zip((p, g, v), keep, strict=True):
        assert a.tobytes() == b.tobytes()
    same_p, same_v = paddle.momentum(
        p, g, v, learning_rate=0.3, momentum=0.5, use_nesterov=True, out=(p, v)
    )
    assert same_p is p
    assert same_v is v
    assert p.tobytes() == new_p.tobytes()
    assert v.tobytes() == new_v.tobytes()


def test_bad_arguments_name_themselves() -> None:
    x = np.ones(3, np.float32)
    with pytest.raises(TypeError, match="learning_rate must be a real number, got str 'x'"):
        paddle.momentum(x, x, x, learning_rate="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="weight_decay must be a real number"):
        paddle.momentum(x, x, x, learning_rate=0.1, weight_decay="l2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rescale_grad must be a real number"):
        paddle.momentum(x, x, x, learning_rate=0.1, rescale_grad=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="use_nesterov must be a bool, got int 1"):
        paddle.momentum(x, x, x, learning_rate=0.1, use_nesterov=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="multi_precision must be a bool, got str 'yes'"):
        paddle.momentum(x, x, x, learning_rate=0.1, multi_precision="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"out must be a pair \(param_out, velocity_out\)"):
        paddle.momentum(x, x, x, learning_rate=0.1, out=x)  # type: ignore[arg-type]


def test_the_record_names_paddles_own_arguments() -> None:
    record = REGISTRY["paddle"]
    assert (record.state, record.stores) == ("velocity", "b")
    assert [v.dtypes for v in record.variants] == [("float32", "float64")]
    assert record.capabilities.weight_decay
    assert record.capabilities.changing_lr
    assert record.requirement == "paddlepaddle"
