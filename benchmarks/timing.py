"""Median timing and peak extra memory of one optimizer step."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any


def median_seconds(step: Callable[[], Any], *, repeat: int, warmup: int = 2) -> float:
    """The median wall time of ``step()`` over ``repeat`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeat):
        gc.disable()
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
        gc.enable()
    return statistics.median(times)


def peak_extra_bytes(step: Callable[[], Any]) -> int:
    """The peak memory that ``step()`` allocates through Python's allocators.

    NumPy reports its array buffers to tracemalloc, so this counts every
    temporary and output array of a NumPy step.
    """
    gc.collect()
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
