"""nagref.conventions.pytorch: validation, purity, pytrees and the first step."""

from __future__ import annotations

import numpy as np
import pytest

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
