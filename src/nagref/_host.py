"""Facts about the CPU this process runs on, where a framework's rounding depends on them.

XLA's CPU backend contracts float16 multiply-adds into one native float16
fused multiply-add where the processor has AVX512-FP16 (Intel Sapphire
Rapids and later), and computes them as separate operations elsewhere
(measured with JAX 0.10.2 on x86-64 machines with and without it). Nothing
else nagref models depends on the host.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

__all__ = ["cpu_flags", "native_float16", "x86_64"]


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty where it does not)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def x86_64() -> bool:
    """Whether this process runs on an x86-64 CPU (the CPUs nagref's CPU models are of)."""
    return platform.machine().lower() in ("x86_64", "amd64")


def native_float16() -> bool:
    """Whether this CPU has native float16 arithmetic that XLA uses (AVX512-FP16)."""
    return x86_64() and "avx512_fp16" in cpu_flags()
