"""nagref's conventions against the live frameworks, bit for bit.

Each framework runs in a worker process; hypothesis draws the cases. The
number of cases per convention, variant and dtype is NAGREF_LIVE_CASES
(default 200), divided by a costly variant's ``cost`` (at least 10). They
are the same cases on every run, unless
NAGREF_HYPOTHESIS_PROFILE=thorough asks for fresh ones. Every element, in
float16, float32 and float64, must match bit for bit (NaN matching NaN) at
every step, parameters and state alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from conformance import missing_allowed
from nagref.conventions import lookup
from nagref.live import VARIANTS, Spec, Worker, check, worker_variant

from .strategies import specs

CASES = int(os.environ.get("NAGREF_LIVE_CASES", "200"))
FRESH = os.environ.get("NAGREF_HYPOTHESIS_PROFILE") == "thorough"

ROWS = [
    pytest.param(convention, variant, dtype, id=f"{convention}-{variant}-{dtype}")
    for convention, variants in VARIANTS.items()
    for variant, dtypes in variants.items()
    for dtype in dtypes
]

_workers: dict[tuple[str, str | None], Worker] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_workers() -> Iterator[None]:
    yield
    for worker in _workers.values():
        worker.close()
    _workers.clear()


def _worker(convention: str, variant: str) -> Worker:
    key = (convention, worker_variant(convention, variant))
    if key not in _workers:
        worker = Worker(convention, key[1], wait=False)
        try:
            worker.wait()
        except RuntimeError as error:  # the framework did not import
            worker.close()
            requirement = lookup(convention).requirement
            if missing_allowed():
                pytest.skip(f"{convention}: {error} (NAGREF_ALLOW_MISSING_BACKENDS=1)")
            pytest.fail(f"{convention}: {error}; install it: pip install {requirement}")
        _workers[key] = worker
    return _workers[key]


@pytest.mark.parametrize(("convention", "variant", "dtype"), ROWS)
def test_bitwise_against_the_live_framework(convention: str, variant: str, dtype: str) -> None:
    @settings(
        max_examples=max(10, CASES // lookup(convention).variant(variant).cost),
        deadline=None,
        database=None,
        derandomize=not FRESH,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(spec=specs(convention, variant, dtype))
    def case(spec: Spec) -> None:
        result = check(_worker(convention, variant), spec)
        assert result.bitwise, f"{result.mismatches} elements differ; first at {result.first}"

    case()
