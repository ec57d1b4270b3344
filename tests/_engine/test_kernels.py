"""nagref._engine.kernels: the registry, the one seam through which a kernel runs."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

import nagref
from nagref import fastpaths
from nagref._engine import kernels
from nagref._engine.ir import Batch
from nagref._engine.kernels import Kernel, Registration, available, disabled, kernel_for, register


class _Namespace:
    """Stands in for an array namespace: the registry reads only its ``__name__``."""

    def __init__(self, name: str) -> None:
        self.__name__ = name


def _ns(name: str) -> Any:
    return _Namespace(name)


def _kernel(tag: str) -> Kernel:
    def run(batch: Batch) -> Sequence[tuple[Any, ...] | None]:
        return [None] * len(batch.columns[0])

    run.__name__ = tag
    return run


def _missing(message: str) -> Kernel:
    raise ImportError(message)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> list[Registration]:
    """An empty registry for the test, with fast paths on; the real one comes back after."""
    fresh: list[Registration] = []
    monkeypatch.setattr(kernels, "_REGISTRY", fresh)
    monkeypatch.setattr(kernels, "_loaded", {})
    monkeypatch.setattr(kernels, "_ENVIRONMENT_ON", True)
    return fresh


def test_register_adds_and_a_later_registration_of_the_same_name_replaces(
    registry: list[Registration],
) -> None:
    first, second, other = _kernel("first"), _kernel("second"), _kernel("other")
    register(Registration("mine", "mine".__eq__, lambda: first))
    register(Registration("other", "other".__eq__, lambda: other))
    assert kernel_for(_ns("mine")) is first
    register(Registration("mine", "mine".__eq__, lambda: second))
    assert [r.name for r in registry] == ["other", "mine"]  # replaced, not added
    assert kernel_for(_ns("mine")) is second  # cache cleared
    assert kernel_for(_ns("other")) is other


def test_kernel_for_honours_the_predicate(registry: list[Registration]) -> None:
    mine = _kernel("mine")
    register(Registration("mine", lambda name: name.endswith(".mine"), lambda: mine))
    assert kernel_for(_ns("array_api_compat.mine")) is mine
    assert kernel_for(_ns("mine.other")) is None
    assert kernel_for(_ns("")) is None


def test_kernel_for_loads_once_per_namespace(registry: list[Registration]) -> None:
    loads: list[str] = []
    mine = _kernel("mine")

    def load() -> Kernel:
        loads.append("mine")
        return mine

    register(Registration("mine", "mine".__eq__, load))
    for _ in range(3):
        assert kernel_for(_ns("mine")) is mine
    assert loads == ["mine"]


def test_a_loader_that_raises_import_error_is_skipped(registry: list[Registration]) -> None:
    fallback = _kernel("fallback")
    register(Registration("gpu", "mine".__eq__, lambda: _missing("no GPU here")))
    assert kernel_for(_ns("mine")) is None
    register(Registration("cpu", "mine".__eq__, lambda: fallback))
    assert kernel_for(_ns("mine")) is fallback


def test_other_loader_errors_are_not_swallowed(registry: list[Registration]) -> None:
    def broken() -> Kernel:
        raise RuntimeError("a bug in the loader")

    register(Registration("broken", "mine".__eq__, broken))
    with pytest.raises(RuntimeError, match="a bug in the loader"):
        kernel_for(_ns("mine"))


def test_disabled_turns_every_kernel_off_within_its_context(registry: list[Registration]) -> None:
    mine = _kernel("mine")
    register(Registration("mine", "mine".__eq__, lambda: mine))
    with disabled():
        assert kernel_for(_ns("mine")) is None
        with disabled():
            pass
        assert kernel_for(_ns("mine")) is None  # still off
    assert kernel_for(_ns("mine")) is mine


def test_disabled_is_per_thread(registry: list[Registration]) -> None:
    mine = _kernel("mine")
    register(Registration("mine", "mine".__eq__, lambda: mine))
    seen: list[object] = []
    with disabled():
        worker = threading.Thread(target=lambda: seen.append(kernel_for(_ns("mine"))))
        worker.start()
        worker.join()
    assert seen == [mine]


def test_the_environment_switch_turns_every_kernel_off(
    registry: list[Registration], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = _kernel("mine")
    register(Registration("mine", "mine".__eq__, lambda: mine))
    monkeypatch.setattr(kernels, "_ENVIRONMENT_ON", False)
    assert kernel_for(_ns("mine")) is None


def test_nagref_fastpath_0_is_read_when_the_module_loads() -> None:
    code = "from nagref._engine import kernels; print(kernels._ENVIRONMENT_ON)"
    for value, expected in (("0", "False"), ("1", "True")):
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={"NAGREF_FASTPATH": value, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout.strip() == expected


def test_available_reports_each_loaders_import_error(registry: list[Registration]) -> None:
    mine = _kernel("mine")
    register(Registration("here", "mine".__eq__, lambda: mine))
    register(Registration("cuda", "cupy".__eq__, lambda: _missing("No module named 'cupy'")))
    assert available() == {"here": None, "cuda": "No module named 'cupy'"}


def test_available_ignores_the_disabled_switch(registry: list[Registration]) -> None:
    mine = _kernel("mine")
    register(Registration("here", "mine".__eq__, lambda: mine))
    with disabled():
        assert available() == {"here": None}


def test_nagrefs_own_kernels_are_registered() -> None:
    names = [r.name for r in kernels._REGISTRY]
    assert "numpy" in names
    assert "cupy" in names
    status = fastpaths.available()
    assert status["numpy"] is None  # the compiled evaluator is built here
    numpy_registration = next(r for r in kernels._REGISTRY if r.name == "numpy")
    assert numpy_registration.accepts("numpy")
    assert numpy_registration.accepts("array_api_compat.numpy")
    assert not numpy_registration.accepts("array_api_compat.torch")


def test_the_executor_reaches_a_kernel_only_through_the_registry(
    registry: list[Registration],
) -> None:
    """A kernel registered for NumPy receives the batch; disabled() sends it to the interpreter."""
    batches: list[Batch] = []

    def spy(batch: Batch) -> Sequence[tuple[Any, ...] | None]:
        batches.append(batch)
        return [None] * len(batch.columns[0])  # decline: the interpreter runs it

    register(Registration("spy", {"numpy", "array_api_compat.numpy"}.__contains__, lambda: spy))
    p = np.array([1.0, 2.0], np.float32)
    g = np.array([0.5, -0.5], np.float32)
    new = nagref.sgd(p, g, lr=0.5)
    assert new.tolist() == [0.75, 2.25]
    assert len(batches) == 1
    assert batches[0].inputs == ("w", "g")
    with disabled():
        nagref.sgd(p, g, lr=0.5)
    assert len(batches) == 1
