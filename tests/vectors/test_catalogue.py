"""nagref.vectors.catalogue: which cases the vectors hold, their names, and their replay."""

from __future__ import annotations

import importlib
import inspect
import zlib
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from nagref import _dtypes
from nagref._compare import bitwise_equal
from nagref.conventions import REGISTRY, Hypers, pytorch
from nagref.vectors.catalogue import CONVENTIONS, DTYPES, SIZE, Case, cases

STEPS = {"basic": 6, "lr-change": 6, "special": 4, "first-step": 1}
RULES = ["sgd", "momentum", "nag"]
FORMULATIONS = ["polyak", "nesterov_1983", "sutskever_cm", "sutskever_nag", "bengio", "dozat"]


def _function(qualname: str) -> Callable[..., Any]:
    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return a.dtype == b.dtype and bool(bitwise_equal(a, b).all())


def test_the_subjects_are_the_rules_the_formulations_then_the_registry() -> None:
    assert list(CONVENTIONS) == ["rules", "formulations", *REGISTRY]
    assert list(CONVENTIONS["rules"]) == RULES
    assert list(CONVENTIONS["formulations"]) == FORMULATIONS
    for name, convention in REGISTRY.items():
        assert list(CONVENTIONS[name]) == [v.name for v in convention.variants]
        for subject in CONVENTIONS[name].values():
            assert subject.function == convention.qualname
            assert subject.state == (convention.state,)


def test_the_number_of_cases_follows_the_registry() -> None:
    plain = (len(RULES) + len(FORMULATIONS)) * len(DTYPES)  # one Nesterov setting each
    frameworks = sum(2 * len(v.dtypes) for c in REGISTRY.values() for v in c.variants)
    extras = sum(
        2 * len(v.dtypes) * sum(e.applies(v) for e in c.extras)
        for c in REGISTRY.values()
        for v in c.variants
    )
    every = list(cases())
    assert extras > 0
    assert len(every) == len(STEPS) * (plain + frameworks) + extras
    keys = [(c.convention, c.variant, c.dtype, c.name) for c in every]
    assert len(set(keys)) == len(keys)
    order = list(CONVENTIONS)
    assert [order.index(k[0]) for k in keys] == sorted(order.index(k[0]) for k in keys)


def test_the_filters_select_conventions_and_dtypes() -> None:
    tf16 = list(cases(("tensorflow",), ("float16",)))
    assert {(c.convention, c.dtype) for c in tf16} == {("tensorflow", "float16")}
    per_variant = sorted([*STEPS, *(f"{kind}-nesterov" for kind in STEPS)])
    for variant in REGISTRY["tensorflow"].variants:
        names = [c.name for c in tf16 if c.variant == variant.name]
        assert sorted(names) == per_variant
    mixed = list(cases(("rules", "keras"), ("float64",)))
    keras64 = [v for v in REGISTRY["keras"].variants if "float64" in v.dtypes]
    assert len(mixed) == 4 * (3 + 2 * len(keras64))
    assert {c.convention for c in mixed} == {"rules", "keras"}
    half = {(c.convention, c.variant) for c in cases(dtypes=("float16",))}
    assert ("pytorch", "fused") not in half
    assert ("optax", "jit-avx512fp16") in half
    assert list(cases(("nosuch",))) == []


def test_each_kind_has_its_steps_and_inputs() -> None:
    extra = {e.name for e in REGISTRY["pytorch"].extras}
    for case in cases(("pytorch", "formulations"), ("float32",)):
        kind = case.name.removesuffix("-nesterov")
        if kind in extra:  # see test_the_layout_cases_are_torchs_layouts
            continue
        assert len(case.grads) == len(case.hypers) == len(case.params) == STEPS[kind]
        assert case.initial_param.shape == (37,)
        learning_rates = {
            h.get("lr", h.get("alpha", h.get("epsilon", h.get("eta")))) for h in case.hypers
        }
        assert (len(learning_rates) > 1) == (kind == "lr-change")
        specials = ~np.isfinite(np.stack(case.grads))
        assert specials.any() == (kind == "special")
        if case.convention == "pytorch":
            assert case.initial_state == (None,)
            assert all(h["nesterov"] == case.name.endswith("-nesterov") for h in case.hypers)
        elif case.variant in ("polyak", "nesterov_1983"):  # x_{-1} = x_0
            assert _same(case.initial_state[0], case.initial_param)
        else:
            assert _same(case.initial_state[0], np.zeros(37, np.float32))


def test_the_cases_are_the_same_on_every_run() -> None:
    first = list(cases(("optax",), ("float16",)))
    again = list(cases(("optax",), ("float16",)))
    for a, b in zip(first, again, strict=True):
        assert _same(a.initial_param, b.initial_param)
        assert all(_same(x, y) for x, y in zip(a.params, b.params, strict=True))
    assert not _same(first[0].initial_param, first[1].initial_param)


def test_hypers_use_the_functions_own_keywords() -> None:
    for case in cases(dtypes=("float32",)):
        function = _function(case.function)
        parameters = inspect.signature(function).parameters
        required = {
            n for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY and p.default is p.empty
        }
        for h in case.hypers:
            assert set(h) <= set(parameters), (case.function, h)
            assert required <= set(h), (case.function, h)
        if case.convention in REGISTRY:
            convention = REGISTRY[case.convention]
            variant = convention.variant(case.variant)
            neutral = Hypers(lr=0.1, momentum=0.9, nesterov=case.name.endswith("-nesterov"))
            own = set(convention.keywords(neutral)) | set(variant.options)
            extra = {e.name: set(e.keywords) for e in convention.extras}
            own |= extra.get(case.name.removesuffix("-nesterov"), set())
            assert all(set(h) == own for h in case.hypers)
            assert all(h[k] == v for h in case.hypers for k, v in variant.options.items())


def _replay(case: Case, call: Callable[..., tuple[Any, Any]]) -> None:
    p, s = case.initial_param, case.initial_state[0] if case.initial_state else None
    with np.errstate(all="ignore"):
        for t, (g, h) in enumerate(zip(case.grads, case.hypers, strict=True)):
            p, s = call(p, g, s, h)
            assert _same(p, case.params[t]), (case.name, t)
            assert _same(s, case.states[t][0] if case.states[t] else None), (case.name, t)


@pytest.mark.parametrize(
    ("convention", "variant", "dtype", "name"),
    [
        ("pytorch", "foreach", "float16", "special-nesterov"),
        ("tensorflow", "apply_momentum", "float64", "lr-change-nesterov"),
        ("formulations", "bengio", "float32", "basic"),
        ("rules", "sgd", "float16", "special"),
        ("rules", "nag", "bfloat16", "special"),
        ("formulations", "nesterov_1983", "bfloat16", "lr-change"),
        ("pytorch", "single-tensor", "bfloat16", "special-nesterov"),
        ("tensorflow", "momentum_optimizer_v1", "bfloat16", "basic"),
    ],
)
def test_calling_the_named_function_with_the_hypers_replays_the_case(
    convention: str, variant: str, dtype: str, name: str
) -> None:
    found = [c for c in cases((convention,), (dtype,)) if (c.variant, c.name) == (variant, name)]
    if not found and dtype not in REGISTRY[convention].variant(variant).dtypes:
        pytest.skip(f"{convention} {variant} does not model {dtype}")
    (case,) = found
    function = _function(case.function)
    if convention == "tensorflow":  # its own order: var, accum, grad
        _replay(case, lambda p, g, s, h: function(p, s, g, **h))
    elif variant == "sgd":  # no state at all
        assert case.state_names == ()
        _replay(case, lambda p, g, s, h: (function(p, g, **h), None))
    else:
        _replay(case, lambda p, g, s, h: function(p, g, s, **h))


def test_bfloat16_cases_are_made_wherever_the_function_models_bfloat16() -> None:
    made = {(c.convention, c.variant) for c in cases(dtypes=("bfloat16",))}
    assert {("rules", r) for r in RULES} <= made
    assert {("formulations", f) for f in FORMULATIONS} <= made
    for name, convention in REGISTRY.items():
        for variant in convention.variants:
            assert ((name, variant.name) in made) == ("bfloat16" in variant.dtypes)


def test_bfloat16_inputs_are_rounded_once_and_the_specials_are_bfloat16s() -> None:
    bfloat16 = np.dtype(ml_dtypes.bfloat16)
    for case in cases(("rules",), ("bfloat16",)):
        key = f"rules/{case.variant}/bfloat16/{case.name}"
        draws = np.random.default_rng(zlib.crc32(key.encode())).standard_normal(SIZE)
        once = [_dtypes.round_to(v, "bfloat16") for v in draws.tolist()]
        assert case.initial_param.dtype == bfloat16
        assert case.initial_param.astype(np.float64).tolist() == once
        assert all(g.dtype == p.dtype == bfloat16 for g, p in zip(case.grads, case.params,
                                                                 strict=True))  # fmt: skip
        if case.name == "special":
            grads = np.stack(case.grads).astype(np.float64)
            assert (grads == 2.0**-133).any()
            assert (grads == -(2.0**-133)).any()
            assert np.isnan(grads).any()
            assert (np.signbit(grads) & (grads == 0)).any()


def test_the_layout_cases_are_torchs_layouts_and_differ_from_contiguous() -> None:
    """A registry extra (PyTorch's layouts) is a case of its own: its keywords in every step,
    4 steps with a changing lr, the extra's shape; in float16 its bits are not contiguous ones."""
    every = {(c.variant, c.dtype, c.name): c for c in cases(("pytorch",))}
    assert ("fused", "float32", "strided-grad") not in every  # the fused kernel refuses it
    assert every[("fused", "float64", "transposed-nesterov")].initial_param.shape == (5, 37)
    # without Nesterov, a strided grad only meets buf.add_(grad, alpha=1): exact either way
    for name in ("strided-grad-nesterov", "transposed-grad", "transposed"):
        case = every[("single-tensor", "float16", name)]
        assert len(case.hypers) == len(case.params) == 4
        assert all(h["grad_layout"] == name.split("-")[0] for h in case.hypers)
        p, b, plain = case.initial_param, None, []
        for g, h in zip(case.grads, case.hypers, strict=True):
            keywords = {k: v for k, v in h.items() if not k.endswith("_layout")}
            p, b = pytorch.sgd(p, g, b, **keywords)  # type: ignore[arg-type]
            plain.append(p)
        assert not all(_same(x, y) for x, y in zip(case.params, plain, strict=True)), name
