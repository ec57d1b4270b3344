"""nagref.formulations on every backend: the NumPy result, purity, pytrees, checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from backends import XP

from nagref import formulations

HYPERS: dict[str, dict[str, float]] = {
    "polyak": {"alpha": 0.125, "beta": 0.875},
    "nesterov_1983": {"alpha": 0.125, "beta": 0.5},
    "sutskever_cm": {"epsilon": 0.125, "mu": 0.875},
    "sutskever_nag": {"epsilon": 0.125, "mu": 0.875},
    "bengio": {"epsilon": 0.125, "mu": 0.75, "mu_next": 0.875},
    "dozat": {"eta": 0.125, "mu": 0.75, "mu_next": 0.875},
}
STEPS: dict[str, Callable[..., Any]] = {name: getattr(formulations, name) for name in HYPERS}


def _inputs(dtype: str) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.standard_normal((4, 5)).astype(dtype) for _ in range(3)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(HYPERS))
def test_every_backend_gives_numpys_bits(xp: XP, name: str, dtype: str) -> None:
    arrays = _inputs(dtype)
    want = STEPS[name](*arrays, **HYPERS[name])
    got = xp.call(STEPS[name], *(xp.asarray(a) for a in arrays), **HYPERS[name])
    for w, out in zip(want, got, strict=True):
        g = xp.to_numpy(out)
        assert g.dtype == w.dtype
        if xp.contracts:  # jax.jit may fuse a multiply and an add: a rounding apart
            scale = max(float(np.max(np.abs(a))) for a in arrays)
            np.testing.assert_allclose(g, w, rtol=0, atol=4 * float(np.finfo(dtype).eps) * scale)
        else:
            assert g.tobytes() == w.tobytes()


@pytest.mark.parametrize("name", list(HYPERS))
def test_nothing_is_mutated_and_every_output_is_new(name: str) -> None:
    arrays = _inputs("float64")
    copies = [a.copy() for a in arrays]
    out = STEPS[name](*arrays, **HYPERS[name])
    for a, c in zip(arrays, copies, strict=True):
        assert a.tobytes() == c.tobytes()
    for o in out:
        assert all(not np.shares_memory(o, a) for a in arrays)


def test_pytrees_keep_their_structure() -> None:
    a, b, c = _inputs("float64")
    tree = lambda x: {"w": x, "layers": [x[0], (x[1:],)]}  # noqa: E731
    x_next, x = formulations.polyak(tree(a), tree(b), tree(c), alpha=0.1, beta=0.5)
    assert set(x_next) == {"w", "layers"}
    assert isinstance(x_next["layers"][1], tuple)
    assert x["w"].tobytes() == a.tobytes()


def test_the_lookahead_is_theta_plus_mu_v() -> None:
    a, _, c = _inputs("float64")
    assert formulations.sutskever_lookahead(a, c, mu=0.5).tobytes() == (a + 0.5 * c).tobytes()


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("polyak", {"alpha": -0.1}, "alpha must be a finite number >= 0, got -0.1"),
        ("polyak", {"beta": 1.0}, r"beta must be in \[0, 1\), got 1.0"),
        ("nesterov_1983", {"beta": float("nan")}, r"beta must be in \[0, 1\), got nan"),
        ("sutskever_nag", {"epsilon": float("inf")}, "epsilon must be a finite number >= 0"),
        ("bengio", {"mu_next": -0.5}, r"mu_next must be in \[0, 1\), got -0.5"),
        ("dozat", {"eta": "0.1"}, "eta must be a real number or a 0-d real floating array"),
    ],
)
def test_bad_hyperparameters_are_named(name: str, bad: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        STEPS[name](*_inputs("float64"), **{**HYPERS[name], **bad})


def test_mismatched_state_is_named() -> None:
    a, b, c = _inputs("float64")
    with pytest.raises(ValueError, match=r"v has shape \(4, 4\) but theta has shape \(4, 5\)"):
        formulations.sutskever_cm(a, b, c[:, :4], epsilon=0.1, mu=0.5)
    with pytest.raises(TypeError, match="m has dtype float32 but theta has dtype float64"):
        formulations.dozat(a, b, c.astype("float32"), eta=0.1, mu=0.5, mu_next=0.5)
