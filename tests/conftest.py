"""Suite-wide configuration: backends, JAX precision, Hypothesis profiles."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest
from backends import XP, Backend, load
from hypothesis import HealthCheck, settings

from nagref.live.table import LiveRow, run_live

# CI is reproducible: the default profile draws the same examples on every
# run. "thorough" draws fresh ones, many more, to explore.
settings.register_profile(
    "default",
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough", parent=settings.get_profile("default"), max_examples=500, derandomize=False
)
settings.load_profile(os.environ.get("NAGREF_HYPOTHESIS_PROFILE", "default"))

_LOADED: dict[Backend, XP] = {}


@pytest.fixture(params=list(Backend), ids=[b.value for b in Backend])
def xp(request: pytest.FixtureRequest) -> XP:
    """Every array backend: the suite runs each test that asks for it on all of them."""
    backend: Backend = request.param
    if backend not in _LOADED:
        _LOADED[backend] = load(backend)
    return _LOADED[backend]


@pytest.fixture(scope="session")
def live_table_run() -> tuple[list[LiveRow], list[tuple[int, int, str]]]:
    """The live table run once against the installed frameworks, for every test that reads it:
    its rows, and the progress calls ``(done, total, what)``.

    Starting every framework's worker takes most of a minute: the tests of
    ``run_live`` and of ``nagref conformance``'s table and JSON share this run.
    """
    calls: list[tuple[int, int, str]] = []
    rows = run_live(cases=1, seed=3, progress=lambda d, t, w: calls.append((d, t, w)))
    return rows, calls
