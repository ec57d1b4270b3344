"""Median timing and peak extra memory of one optimizer step."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable, Mapping
from typing import Any


def median_seconds(
    steps: Mapping[str, Callable[[], Any]], *, repeat: int, warmup: int = 2
) -> dict[str, float]:
    """The median wall time of each step over ``repeat`` rounds, after ``warmup`` rounds.

    Each round runs every step once, in turn, so that a slow phase of a noisy
    machine falls on all of them alike rather than on whichever ran then.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeat):
        for name, step in steps.items():
            gc.disable()
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
            gc.enable()
    return {name: statistics.median(t) for name, t in times.items()}


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
