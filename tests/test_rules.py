"""The three rules on every backend: contract, exactness, identities, purity."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
import pytest
from array_api_compat import device
from backends import ALL_DTYPES, XP, numpy_dtype
from oracle import error_bound, in_documented_order, special_values

import nagref
from nagref._compare import bitwise_equal, ulp_distance

RULES = ("sgd", "momentum", "nag", "lookahead")
HYPER = {"lr": 0.0625, "momentum": 0.875}


def _skip_unsupported(xp: XP, dtype: str) -> None:
    if dtype not in xp.dtypes:
        pytest.skip(f"{xp.backend.value} has no {dtype}")  # array-api-strict: no float16


def run_rule(xp: XP, rule: str, w: Any, g: Any, v: Any, **hyper: Any) -> tuple[Any, ...]:
    """Call one rule on backend arrays; return its outputs as a tuple."""
    lr, mu = hyper.get("lr", HYPER["lr"]), hyper.get("momentum", HYPER["momentum"])
    if rule == "sgd":
        return (xp.call(nagref.sgd, w, g, lr=lr),)
    if rule == "lookahead":
        return (xp.call(nagref.lookahead, w, v, momentum=mu),)
    fn = nagref.nag if rule == "nag" else nagref.momentum
    return tuple(xp.call(fn, w, g, v, lr=lr, momentum=mu))


def _random(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(numpy_dtype(dtype))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("rule", RULES)
def test_result_has_param_dtype_shape_device_and_library(xp: XP, rule: str, dtype: str) -> None:
    _skip_unsupported(xp, dtype)
    w, g, v = (xp.asarray(_random((3, 5), dtype, seed)) for seed in (1, 2, 3))
    for out in run_rule(xp, rule, w, g, v):
        assert out.dtype == w.dtype
        assert tuple(out.shape) == (3, 5)
        assert device(out) == device(w)
        assert out is not w
        assert out is not g
        assert out is not v
        xp.to_numpy(out)  # asserts the result belongs to the backend's namespace


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("rule", RULES)
def test_exactly_the_documented_operation_order(xp: XP, rule: str, dtype: str) -> None:
    """Bitwise equal to one rounding per operation, special values included.

    Exceptions, each documented in docs/rules.md: XLA flushes subnormals (the
    oracle models that); under jax.jit it contracts multiply-adds into FMAs,
    so there only non-finite results are compared here (the error bound is
    asserted below); and the complex multiplies of PyTorch and JAX decide zero
    signs and non-finite values their own way, so there finite complex
    results are compared as numbers (+0 == -0), and non-finite ones must stay
    non-finite.
    """
    _skip_unsupported(xp, dtype)
    w_np, g_np, v_np = special_values(dtype)
    w, g, v = (xp.asarray(a) for a in (w_np, g_np, v_np))
    got = [xp.to_numpy(o) for o in run_rule(xp, rule, w, g, v)]
    want = in_documented_order(
        rule, dtype, flush=xp.flushes_subnormals(dtype), w=w_np, g=g_np, v=v_np, **HYPER
    )
    for a, b in zip(got, want, strict=True):
        if xp.contracts:
            same = ~np.isfinite(b) & bitwise_equal(a, b) | np.isfinite(b)
        elif dtype.startswith("complex") and not xp.numpy_complex_semantics:
            same = np.where(np.isfinite(b), ulp_distance(a, b) == 0, ~np.isfinite(a))
        else:
            same = bitwise_equal(a, b)
        assert same.all(), f"{np.count_nonzero(~same)} differ: {a[~same][:4]} != {b[~same][:4]}"


@pytest.mark.parametrize("rule", RULES)
def test_jit_contraction_stays_within_the_rounding_error_bound(xp: XP, rule: str) -> None:
    """On every backend (jit included) the error is within the analytic bound."""
    dtype = "float32"
    w_np, g_np, v_np = (_random((1000,), dtype, s) for s in (4, 5, 6))
    outs = run_rule(xp, rule, *(xp.asarray(a) for a in (w_np, g_np, v_np)))
    exact = in_documented_order(
        rule,
        "float64",
        w=w_np.astype("float64"),
        g=g_np.astype("float64"),
        v=v_np.astype("float64"),
        **HYPER,
    )
    bound = error_bound(
        rule,
        dtype,
        w=w_np.astype("float64"),
        g=g_np.astype("float64"),
        v=v_np.astype("float64"),
        **HYPER,
    )
    for out, ref in zip(outs, exact, strict=True):
        err = np.abs(xp.to_numpy(out).astype("float64") - ref)
        assert (err <= bound).all()


Leaf = namedtuple("Leaf", ["weight", "bias"])


def test_pytrees_keep_their_structure(xp: XP) -> None:
    tree = {"dense": Leaf(np.ones((2, 3)), np.zeros(3)), "blocks": [np.arange(4.0), (np.ones(()),)]}
    w = xp.tree_asarray(tree, "float32")
    g = xp.tree_asarray(tree, "float32")
    v = nagref.init_velocity(w)
    new_w, new_v = xp.call(nagref.nag, w, g, v, lr=0.5, momentum=0.5)
    keys = ["blocks", "dense"] if xp.contracts else ["dense", "blocks"]  # jax.jit sorts keys
    for out in (new_w, new_v):
        assert isinstance(out, dict)
        assert list(out) == keys
        assert isinstance(out["dense"], Leaf)
        assert isinstance(out["blocks"], list)
        assert isinstance(out["blocks"][1], tuple)
    got = xp.tree_to_numpy(new_w)
    np.testing.assert_array_equal(got["dense"].weight, np.full((2, 3), 0.5, "float32"))
    np.testing.assert_array_equal(got["blocks"][0], np.arange(4.0, dtype="float32") * 0.5)
    assert got["blocks"][1][0].shape == ()


def test_dict_keys_may_come_in_any_order(xp: XP) -> None:
    w = {"a": xp.asarray([1.0]), "b": xp.asarray([2.0])}
    g = {"b": xp.asarray([4.0]), "a": xp.asarray([2.0])}
    new = xp.tree_to_numpy(xp.call(nagref.sgd, w, g, lr=0.5))
    assert list(new) == ["a", "b"]
    assert new["a"][0] == 0.0
    assert new["b"][0] == 0.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nag_with_momentum_zero_is_sgd(xp: XP, dtype: str) -> None:
    w = w_sgd = xp.asarray(_random((50,), dtype, 7))
    v = nagref.init_velocity(w)
    eps = float(np.finfo(dtype).eps)
    for step in range(5):
        g = xp.asarray(_random((50,), dtype, 10 + step))
        w, v = xp.call(nagref.nag, w, g, v, lr=0.1, momentum=0.0)
        w_sgd = xp.call(nagref.sgd, w_sgd, g, lr=0.1)
        a, b = xp.to_numpy(w), xp.to_numpy(w_sgd)
        if xp.contracts:  # XLA may fuse W - lr*g differently in the two programs
            assert (np.abs(a - b) <= 4 * eps * (step + 1) * np.abs(b).max()).all()
        else:
            assert bitwise_equal(a, b).all()


def _quadratic_grad(xp: XP, w: Any) -> Any:
    curvature = xp.asarray(np.linspace(0.1, 2.0, 20), "float64")
    return curvature * w - 1.0


def test_momentum_fed_the_lookahead_gradient_is_nag(xp: XP) -> None:
    w_nag = w_mom = xp.asarray(_random((20,), "float64", 8))
    v_nag = v_mom = nagref.init_velocity(w_nag)
    for _ in range(20):
        g = _quadratic_grad(xp, xp.call(nagref.lookahead, w_nag, v_nag, momentum=0.9))
        w_nag, v_nag = xp.call(nagref.nag, w_nag, g, v_nag, lr=0.1, momentum=0.9)
        g = _quadratic_grad(xp, xp.call(nagref.lookahead, w_mom, v_mom, momentum=0.9))
        w_mom, v_mom = xp.call(nagref.momentum, w_mom, g, v_mom, lr=0.1, momentum=0.9)
    for a, b in ((w_nag, w_mom), (v_nag, v_mom)):
        assert bitwise_equal(xp.to_numpy(a), xp.to_numpy(b)).all()
    # and it really is a different method from momentum at the current point:
    w_cm, v_cm = xp.asarray(_random((20,), "float64", 8)), None
    v_cm = nagref.init_velocity(w_cm)
    for _ in range(20):
        w_cm, v_cm = xp.call(
            nagref.momentum, w_cm, _quadratic_grad(xp, w_cm), v_cm, lr=0.1, momentum=0.9
        )
    assert not bitwise_equal(xp.to_numpy(w_cm), xp.to_numpy(w_nag)).all()


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
@pytest.mark.parametrize("hyper_dtype", ["float32", "float64"])
def test_array_hyperparameters_equal_float_hyperparameters(
    xp: XP, dtype: str, hyper_dtype: str
) -> None:
    """0-d hyperparameter arrays, of a wider or narrower dtype than the params,
    give the bits of the same value passed as a Python float. On JAX_JIT they
    are traced, as a schedule's values are."""
    w, g, v = (xp.asarray(_random((9,), dtype, s)) for s in (1, 2, 3))
    lr, mu = (float(np.asarray(h, dtype=hyper_dtype)) for h in (0.1, 0.9))
    arrays = {"lr": xp.asarray(lr, hyper_dtype), "momentum": xp.asarray(mu, hyper_dtype)}
    for rule in RULES:
        by_float = run_rule(xp, rule, w, g, v, lr=lr, momentum=mu)
        by_array = run_rule(xp, rule, w, g, v, **arrays)
        for a, b in zip(by_float, by_array, strict=True):
            assert bitwise_equal(xp.to_numpy(a), xp.to_numpy(b)).all()


def test_inputs_are_never_modified(xp: XP) -> None:
    originals = [_random((4, 4), "float32", s) for s in (1, 2, 3)]
    w, g, v = (xp.asarray(a) for a in originals)
    for rule in RULES:
        run_rule(xp, rule, w, g, v)
    for array, original in zip((w, g, v), originals, strict=True):
        np.testing.assert_array_equal(xp.to_numpy(array), original)


def test_read_only_numpy_inputs_work_and_stay_read_only() -> None:
    arrays = []
    for seed in (1, 2, 3):
        a = _random((6,), "float64", seed)
        a.flags.writeable = False
        arrays.append(a)
    w, g, v = arrays
    new_w, new_v = nagref.nag(w, g, v, lr=0.1, momentum=0.9)
    assert new_w.flags.writeable
    assert new_v.flags.writeable
    assert not any(a.flags.writeable for a in arrays)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_init_velocity_is_zeros_like_the_params(xp: XP, dtype: str) -> None:
    _skip_unsupported(xp, dtype)
    w = {"a": xp.asarray(_random((2, 3), dtype, 1)), "b": [xp.asarray(_random((), dtype, 2))]}
    v = xp.call(nagref.init_velocity, w)
    for leaf, ref in ((v["a"], w["a"]), (v["b"][0], w["b"][0])):
        assert leaf.dtype == ref.dtype
        assert tuple(leaf.shape) == tuple(ref.shape)
        assert not xp.to_numpy(leaf).any()


@pytest.mark.parametrize("shape", [(), (0,), (0, 3), (1,), (17,), (2, 3, 4)])
def test_empty_and_zero_dimensional_arrays(xp: XP, shape: tuple[int, ...]) -> None:
    w, g = xp.asarray(np.ones(shape, "float32")), xp.asarray(np.full(shape, 2.0, "float32"))
    new_w = xp.call(nagref.sgd, w, g, lr=0.25)
    assert tuple(new_w.shape) == shape
    np.testing.assert_array_equal(xp.to_numpy(new_w), np.full(shape, 0.5, "float32"))


def test_empty_pytrees() -> None:
    assert nagref.sgd({}, {}, lr=0.1) == {}
    assert nagref.nag([], [], [], lr=0.1, momentum=0.5) == ([], [])
    assert nagref.init_velocity(()) == ()
