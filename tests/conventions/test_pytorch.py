"""nagref.conventions.pytorch: validation, purity, pytrees, the first step, scalars."""

from __future__ import annotations

import numpy as np
import pytest
from oracle import exact_fma

from nagref.conventions import pytorch


def _arrays(dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal(37).astype(dtype), rng.standard_normal(37).astype(dtype)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -0.1}, "Invalid learning rate: -0.1"),
        ({"lr": 0.1, "momentum": -0.5}, "Invalid momentum value: -0.5"),
        ({"lr": 0.1, "weight_decay": -1.0}, "Invalid weight_decay value: -1.0"),
        ({"lr": 0.1, "nesterov": True}, "Nesterov momentum requires a momentum and zero dampening"),
        (
            {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True},
            "Nesterov momentum requires a momentum and zero dampening",
        ),
    ],
)
def test_validates_with_torchs_messages(kwargs: dict[str, object], message: str) -> None:
    p, g = _arrays()
    with pytest.raises(ValueError, match=f"^{message}$"):
        pytorch.sgd(p, g, None, **kwargs)  # type: ignore[arg-type]


def test_a_non_number_hyperparameter_is_named() -> None:
    p, g = _arrays()
    with pytest.raises(TypeError, match=r"lr must be a real number, got str '0\.1'"):
        pytorch.sgd(p, g, None, lr="0.1")  # type: ignore[arg-type]


def test_the_first_step_clones_the_gradient_and_nothing_is_mutated() -> None:
    p, g = _arrays()
    g[0] = -0.0
    p_copy, g_copy = p.copy(), g.copy()
    new_p, buf = pytorch.sgd(p, g, None, lr=0.1, momentum=0.9, dampening=0.5)
    assert buf is not None
    assert buf.tobytes() == g.tobytes()  # no dampening, and -0.0 kept
    assert p.tobytes() == p_copy.tobytes()
    assert g.tobytes() == g_copy.tobytes()
    assert new_p is not p


def test_no_buffer_without_momentum_and_pytrees_keep_their_structure() -> None:
    p, g = _arrays()
    tree = {"w": p, "b": [p[:3], p[:0]]}
    grads = {"w": g, "b": [g[:3], g[:0]]}
    new, buf = pytorch.sgd(tree, grads, None, lr=0.1)
    assert buf is None
    assert set(new) == {"w", "b"}
    assert new["b"][1].shape == (0,)


def test_fused_float16_is_refused_with_the_reason() -> None:
    p, g = _arrays("float16")
    with pytest.raises(NotImplementedError, match=r"pytorch/pytorch#191763"):
        pytorch.sgd(p, g, None, lr=0.1, fused=True)


def test_complex_parameters_are_refused() -> None:
    p = np.ones(3, np.complex64)
    with pytest.raises(TypeError, match="param has dtype complex64"):
        pytorch.sgd(p, p, None, lr=0.1)


def test_fused_and_foreach_together_are_refused_like_torch() -> None:
    p, g = _arrays()
    with pytest.raises(RuntimeError, match=r"^`fused` and `foreach` cannot be `True` together\.$"):
        pytorch.sgd(p, g, None, lr=0.1, fused=True, foreach=True)


def test_a_python_scalar_reaches_float16_through_float32() -> None:
    # c10::Half(double) is Half(float(d)): for this lr the two roundings give
    # a different alpha than one rounding would, and a different parameter
    lr, p, g = 0.003417014972781023, -0.10968017578125, -2.15234375
    twice = float(np.float16(np.float32(-lr)))
    assert twice != float(np.float16(-lr))
    expected = exact_fma(g, twice, p, "float16")
    assert expected != exact_fma(g, float(np.float16(-lr)), p, "float16")
    arrays = (np.full(40, p, np.float16), np.full(40, g, np.float16))  # SIMD body and tail
    new, _ = pytorch.sgd(*arrays, None, lr=lr)
    assert np.all(new == np.float16(expected))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_foreach_rounds_the_momentum_to_the_dtype_in_float16_only(dtype: str) -> None:
    p, g = _arrays(dtype)
    b = np.linspace(-2, 2, 37).astype(dtype)
    single = pytorch.sgd(p, g, b, lr=0.1, momentum=0.9, foreach=False)[1]
    foreach = pytorch.sgd(p, g, b, lr=0.1, momentum=0.9, foreach=True)[1]
    assert single is not None
    assert foreach is not None
    if dtype != "float16":
        assert single.tobytes() == foreach.tobytes()
        return

    def buffer(mu: float) -> np.ndarray:  # fl16(g + fl16(b * mu)), each step exact in float64
        product = (b.astype(np.float64) * mu).astype(np.float16)
        return (g.astype(np.float64) + product).astype(np.float16)

    assert single.tobytes() == buffer(float(np.float32(0.9))).tobytes()  # mul_: float32
    assert foreach.tobytes() == buffer(float(np.float16(np.float32(0.9)))).tobytes()
    assert single.tobytes() != foreach.tobytes()
