"""The convention registry: every record is complete and consistent, and nothing falls back."""

from __future__ import annotations

import importlib
import inspect
import sys
import types

import numpy as np
import pytest

from nagref import _dtypes, conventions
from nagref.conventions import REGISTRY, Capabilities, Convention, Hypers, Variant, lookup


def test_every_convention_module_has_a_record_found_by_listing_the_package() -> None:
    modules = {
        name
        for name in ("keras", "optax", "pytorch", "tensorflow", "tf_keras")
        if importlib.util.find_spec(f"nagref.conventions.{name}") is not None
    }
    assert set(REGISTRY) == modules
    assert list(REGISTRY) == sorted(REGISTRY)
    for name, record in REGISTRY.items():
        assert getattr(conventions, name).CONVENTION is record


@pytest.mark.parametrize("record", list(REGISTRY.values()), ids=list(REGISTRY))
def test_a_record_matches_its_function(record: Convention) -> None:
    parameters = inspect.signature(record.function).parameters
    positional = [p for p, v in parameters.items() if v.kind is v.POSITIONAL_OR_KEYWORD]
    assert len(positional) == 3
    assert sorted(record.roles) == ["grad", "param", "state"]
    assert positional[record.roles.index("state")] == record.state
    assert record.qualname == f"nagref.conventions.{record.name}.{record.function.__name__}"
    assert importlib.util.find_spec(record.driver) is not None
    names = [v.name for v in record.variants]
    assert len(names) == len(set(names))
    for variant in record.variants:
        assert set(variant.dtypes) <= set(_dtypes.REAL)
        assert set(variant.options) <= set(parameters)  # its own keyword names
        keywords = record.arguments(Hypers(lr=0.1, momentum=0.9, nesterov=True), variant)
        assert set(keywords) <= set(parameters)


@pytest.mark.parametrize("record", list(REGISTRY.values()), ids=list(REGISTRY))
def test_step_calls_the_function_with_its_own_names_and_order(record: Convention) -> None:
    rng = np.random.default_rng(1)
    p, g = rng.standard_normal(9).astype(np.float32), rng.standard_normal(9).astype(np.float32)
    state = None if record.first_state == "none" else np.zeros_like(p)
    variant = record.variants[0]
    hypers = Hypers(lr=0.1, momentum=0.9, nesterov=True)
    ours = record.step(p, g, state, hypers, variant=variant)
    by_role = {"param": p, "grad": g, "state": state}
    direct = record.function(
        *(by_role[r] for r in record.roles), **record.keywords(hypers), **variant.options
    )
    for a, b in zip(ours, direct, strict=True):
        assert a.tobytes() == b.tobytes()


def test_an_unknown_convention_or_variant_is_an_error_never_a_fallback() -> None:
    with pytest.raises(ValueError, match="unknown convention 'caffe'; the conventions are keras"):
        lookup("caffe")
    with pytest.raises(ValueError, match="pytorch has no variant 'cuda'; its variants are single"):
        lookup("pytorch").variant("cuda")
    from nagref.live import Spec, Worker, run_nagref  # noqa: PLC0415

    with pytest.raises(ValueError, match="unknown convention 'caffe'"):
        Worker("caffe")
    spec = Spec("caffe", "x", "float32", (3,), 0, (0.1,))
    with pytest.raises(ValueError, match="unknown convention 'caffe'"):
        run_nagref(spec)


def test_a_module_without_a_record_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # discovery reads every public module: one without CONVENTION is an error
    fake = types.ModuleType("nagref.conventions.fake")
    monkeypatch.setitem(sys.modules, "nagref.conventions.fake", fake)
    info = types.SimpleNamespace(name="fake")
    monkeypatch.setattr(
        conventions.pkgutil,
        "iter_modules",
        lambda path: [info],  # type: ignore[attr-defined]
    )
    with pytest.raises(TypeError, match=r"nagref\.conventions\.fake defines no CONVENTION"):
        conventions._discover()


def test_capabilities_and_variants_default_to_the_dtype_table() -> None:
    assert Variant("x").dtypes == tuple(d for d in _dtypes.REAL if _dtypes.TABLE[d].conventions)
    assert Capabilities() == Capabilities(False, False, False, True, False)
