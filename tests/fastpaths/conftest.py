"""Fixtures shared by the NumPy kernel's tests."""

from __future__ import annotations

import numpy as np
import pytest
from kernel_cases import spy_on

#: the namespace module name the NumPy kernel is registered for
NAMESPACE = "array_api_compat.numpy"


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, for each leaf the kernel receives, whether it ran (True) or declined."""
    return spy_on(monkeypatch, np, NAMESPACE)
