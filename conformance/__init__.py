"""Suites against the published formulas (formulas/, theory/) and the live frameworks
(frameworks/, recordings/).

Every framework these suites drive is required: where one does not import,
its tests fail, unless ``NAGREF_ALLOW_MISSING_BACKENDS=1`` is set for a
partial local install, where they skip and say which framework is missing.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

__all__ = ["missing_allowed", "require"]


def missing_allowed() -> bool:
    """Whether a missing framework skips its tests (``NAGREF_ALLOW_MISSING_BACKENDS=1``)."""
    return os.environ.get("NAGREF_ALLOW_MISSING_BACKENDS") == "1"


def require(module: str) -> ModuleType:
    """Import a framework the suite needs; fail without it, or skip where that is allowed.

    Called at a test module's top level, the skip covers the whole module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if missing_allowed():
            pytest.skip(
                f"{module} is missing (NAGREF_ALLOW_MISSING_BACKENDS=1): {error}",
                allow_module_level=True,
            )
        pytest.fail(f"required framework {module} is not installed: {error}", pytrace=False)
