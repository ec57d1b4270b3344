"""nagref.live.cases: the live rows, the worker groups, random cases and their arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nagref._host import native_float16
from nagref.conventions import REGISTRY, Hypers
from nagref.live import VARIANTS, Spec, arrays, random_spec, worker_groups, worker_variant
from nagref.live.cases import hypers

SIZES = {0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 37, 63, 65, 100}


def _rows() -> list[tuple[str, str, str]]:
    return [(c, v, d) for c, variants in VARIANTS.items() for v, ds in variants.items() for d in ds]


def test_variants_hold_exactly_the_registrys_live_rows() -> None:
    expected = [
        (c.name, v.name, d)
        for c in REGISTRY.values()
        for v in c.variants
        for d in v.dtypes
        if v.live(d) and v.table
    ]
    assert _rows() == expected
    assert ("pytorch", "compiled", "float32") not in expected  # its own suite runs it
    assert len(set(expected)) == len(expected)
    # a convention or variant with no live dtype gets no entry at all
    assert all(variants and all(variants.values()) for variants in VARIANTS.values())
    fused = [v for v in VARIANTS["pytorch"] if v.startswith("fused")]  # this CPU's kernels
    assert fused
    assert all("float16" not in VARIANTS["pytorch"][v] for v in fused)  # no float16 kernel


def test_optax_runs_float16_with_and_without_native_arithmetic_on_this_cpu() -> None:
    # with AVX512-FP16, both of each pair (the one without it in a worker whose
    # XLA is kept to AVX2); without it, only the variant without it
    optax = VARIANTS["optax"]
    for mode in ("eager", "jit"):
        live = [v for v in (mode, f"{mode}-avx512fp16") if "float16" in optax.get(v, ())]
        assert live == ([mode, f"{mode}-avx512fp16"] if native_float16() else [mode]), live
    assert {"float32", "float64"} <= set(VARIANTS["optax"]["eager"])


def test_worker_groups_cover_every_row_once() -> None:
    groups = worker_groups()
    covered = [(c, v) for c, _, group in groups for v in group]
    assert sorted(covered) == sorted((c, v) for c, vs in VARIANTS.items() for v in vs)
    assert len(covered) == len(set(covered))
    for convention, variant, group in groups:
        if REGISTRY[convention].process_per_variant:
            assert group == (variant,)
        else:
            assert variant is None
            assert group == tuple(VARIANTS[convention])  # all of them, in order
    keras = [g for g in groups if g[0] == "keras"]
    assert len(keras) == len(VARIANTS["keras"]) > 1
    assert [g for g in groups if g[0] == "pytorch"] == [
        ("pytorch", None, tuple(VARIANTS["pytorch"]))
    ]


def test_worker_variant() -> None:
    assert worker_variant("keras", "jax") == "jax"
    assert worker_variant("pytorch", "foreach") is None
    assert worker_variant("optax", "jit") is None
    with pytest.raises(ValueError, match=r"unknown convention .nosuch.; the conventions are"):
        worker_variant("nosuch", "x")


@pytest.mark.parametrize("convention", list(REGISTRY))
def test_random_specs_respect_the_capabilities(convention: str) -> None:
    can = REGISTRY[convention].capabilities
    variant = next(iter(VARIANTS[convention]))
    rng = np.random.default_rng(11)
    specs = [random_spec(rng, convention, variant, "float32") for _ in range(400)]
    assert {(s.convention, s.variant, s.dtype) for s in specs} == {(convention, variant, "float32")}
    damped = [s for s in specs if s.dampening != 0.0]
    decayed = [s for s in specs if s.weight_decay is not None]
    maximized = [s for s in specs if s.maximize]
    no_momentum = [s for s in specs if s.momentum is None]
    varying = [s for s in specs if len(set(s.lr)) > 1]
    assert bool(damped) == can.dampening
    assert bool(decayed) == can.weight_decay
    assert bool(maximized) == can.maximize
    assert bool(no_momentum) == can.momentum_none
    assert bool(varying) == can.changing_lr
    for s in specs:
        assert 1 <= s.steps <= 200
        assert s.shape == () or s.shape[0] in SIZES or (len(s.shape) == 2 and s.shape[0] == 3)
        assert all(x > 0 for x in s.lr)
        if s.nesterov:  # Nesterov needs a momentum and no dampening
            assert s.momentum is not None
            assert s.momentum > 0
            assert s.dampening == 0.0
        assert s.special in (0.0, 0.05, 0.3)
        assert s.extra == {}
    assert any(s.nesterov for s in specs)
    assert any(not s.nesterov for s in specs)
    assert {len(s.shape) for s in specs} == {0, 1, 2}
    assert max(s.steps for s in specs) > 8  # some long runs too


def test_random_specs_are_reproducible_and_bounded() -> None:
    def draw(seed: int) -> list[Spec]:
        rng = np.random.default_rng(seed)
        return [random_spec(rng, "pytorch", "foreach", "float16", max_steps=20) for _ in range(80)]

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)
    # max_steps bounds the long runs (the short ones have up to 8 steps)
    assert all(1 <= s.steps <= 20 for s in draw(5))
    assert any(s.steps > 8 for s in draw(5))


def test_spec_json_round_trip() -> None:
    spec = Spec(
        "optax",
        "jit",
        "float64",
        (3, 2),
        9,
        (0.1, 0.25),
        momentum=None,
        nesterov=False,
        weight_decay=None,
        special=0.05,
        scale=3.0,
        extra={"native_float16": False},
    )
    data = json.loads(json.dumps(spec.to_json()))
    assert data["shape"] == [3, 2]
    back = Spec.from_json(data)
    assert back == spec
    assert isinstance(back.shape, tuple)
    assert isinstance(back.lr, tuple)
    scalar = Spec("tensorflow", "apply_momentum", "float16", (), 0, (0.5,))
    assert Spec.from_json(json.loads(json.dumps(scalar.to_json()))) == scalar
    spec.to_json()["extra"]["x"] = 1  # a copy: the spec is unchanged
    assert spec.extra == {"native_float16": False}


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_arrays_are_deterministic_and_shaped(dtype: str) -> None:
    spec = Spec("pytorch", "foreach", dtype, (3, 5), 42, (0.1, 0.1, 0.1, 0.1))
    param, grads = arrays(spec)
    again = arrays(spec)
    assert param.dtype == grads.dtype == np.dtype(dtype)
    assert param.shape == (3, 5)
    assert grads.shape == (4, 3, 5)
    assert np.array_equal(param, again[0])
    assert np.array_equal(grads, again[1])
    assert np.isfinite(grads).all()
    assert np.count_nonzero(grads) == grads.size
    other = arrays(Spec("pytorch", "foreach", dtype, (3, 5), 43, spec.lr))
    assert not np.array_equal(param, other[0])
    assert arrays(Spec("pytorch", "foreach", dtype, (), 1, (0.1, 0.2)))[1].shape == (2,)
    assert arrays(Spec("pytorch", "foreach", dtype, (0,), 1, (0.1,), special=0.5))[1].shape == (
        1,
        0,
    )


def test_the_scale_multiplies_the_gradients_only() -> None:
    base = Spec("pytorch", "foreach", "float64", (50,), 3, (0.1, 0.1))
    p1, g1 = arrays(base)
    p2, g2 = arrays(Spec("pytorch", "foreach", "float64", (50,), 3, (0.1, 0.1), scale=1e3))
    assert np.array_equal(p1, p2)
    assert np.array_equal(g2, g1 * 1e3)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_special_values_appear_when_asked(dtype: str) -> None:
    info = np.finfo(dtype)
    with np.errstate(all="ignore"):
        _, grads = arrays(Spec("keras", "jax", dtype, (400,), 7, (0.1,) * 5, special=1.0))
    flat = grads.ravel()
    assert np.isnan(flat).any()
    assert (flat == np.inf).any()
    assert (flat == -np.inf).any()
    zeros = flat[flat == 0]
    assert np.signbit(zeros).any()
    assert (~np.signbit(zeros)).any()
    finite = flat[np.isfinite(flat) & (flat != 0)]
    assert (np.abs(finite) < info.smallest_normal).all()  # everything else is subnormal
    assert (finite == info.smallest_subnormal).any()
    _, some = arrays(Spec("keras", "jax", dtype, (400,), 7, (0.1,) * 5, special=0.3))
    share = np.mean(~np.isfinite(some) | (np.abs(some) < info.smallest_normal))
    assert 0.2 < share < 0.4


def test_hypers_map_the_spec_fields() -> None:
    spec = Spec(
        "pytorch",
        "single-tensor",
        "float32",
        (2,),
        0,
        (0.1, 0.2, 0.3),
        momentum=0.5,
        nesterov=False,
        dampening=0.25,
        weight_decay=None,
        maximize=True,
    )
    assert spec.steps == 3
    assert spec.hypers(1) == Hypers(
        lr=0.2, momentum=0.5, nesterov=False, dampening=0.25, weight_decay=None, maximize=True
    )
    assert spec.hypers(1).weight_decay is None
    assert hypers(spec, 0.7) == Hypers(0.7, 0.5, False, 0.25, None, True)
    decayed = Spec("keras", "jax", "float32", (2,), 0, (0.1,), momentum=None, weight_decay=0.0)
    assert decayed.hypers(0).weight_decay == 0.0
    assert decayed.hypers(0).momentum is None
    with pytest.raises(IndexError):
        spec.hypers(3)
