"""Fixtures shared by the NumPy kernel's tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nagref._engine import kernels

#: the namespace module name the NumPy kernel is registered for
NAMESPACE = "array_api_compat.numpy"


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, for each leaf the kernel receives, whether it ran (True) or declined."""
    kernel = kernels.kernel_for(np)  # type: ignore[arg-type]
    assert kernel is not None
    calls: list[bool] = []

    def recording(batch: Any) -> Any:
        results = kernel(batch)
        calls.extend(result is not None for result in results)
        return results

    monkeypatch.setitem(kernels._loaded, NAMESPACE, recording)
    return calls
