"""How torch 2.13 runs on the CPU here: its intra-op threads and its CPU capability.

Both change the bits of float16 and bfloat16 updates (and the CPU capability
those of float32 and float64; see :mod:`nagref.conventions.pytorch`).
nagref never imports torch: where torch is imported, it asks torch;
elsewhere it computes what torch would pick, as measured with torch 2.13.0's
Linux x86-64 CPU wheel (OpenMP and MKL) on a 2-core AVX-512 machine.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Callable
from pathlib import Path

from .._checks import describe
from .._host import cpu_flags, x86_64

__all__ = [
    "CPU_CAPABILITIES",
    "GRAIN",
    "check_capability",
    "check_threads",
    "cpu_capability_here",
    "default_cpu_capability",
    "default_threads",
    "runs_here",
]

#: ``ATEN_CPU_CAPABILITY``'s values on x86-64 (torch 2.13), best first.
CPU_CAPABILITIES = ("avx512", "avx2", "default")
#: ``at::internal::GRAIN_SIZE``: the elements below which ``TensorIterator``
#: runs on one thread, and the grain of its ``at::parallel_for``.
GRAIN = 32768


def default_threads() -> int:
    """torch's intra-op thread count here (``torch.get_num_threads()``), without importing torch.

    Where torch is imported, its own count. Otherwise the count torch 2.13's
    Linux x86-64 CPU wheel (OpenMP and MKL) starts with, as measured:
    ``MKL_NUM_THREADS``, else ``OMP_NUM_THREADS`` (the first of a list), a
    whole number >= 1, limited to the machine's physical cores unless
    ``MKL_DYNAMIC`` is ``false``; neither set, the physical cores this
    process may run on (``taskset``). Hyperthreads do not count.
    """
    torch = sys.modules.get("torch")
    count = getattr(torch, "get_num_threads", None)
    if callable(count):
        return max(1, int(count()))
    asked = _env_threads("MKL_NUM_THREADS") or _env_threads("OMP_NUM_THREADS")
    text = _cpuinfo()
    if asked is None:
        return _physical_cores(text, _affinity())
    if os.environ.get("MKL_DYNAMIC", "").strip().lower() == "false":
        return asked
    return min(asked, _physical_cores(text, None))


def default_cpu_capability() -> str:
    """The kernels torch 2.13 runs here, by ``ATEN_CPU_CAPABILITY``'s name, without importing torch.

    Where torch is imported, ``torch.backends.cpu.get_cpu_capability()``.
    Otherwise as torch chooses: a valid ``ATEN_CPU_CAPABILITY`` (exactly
    ``avx512``, ``avx2`` or ``default``; torch ignores any other value),
    else the best this CPU runs (:func:`cpu_capability_here`). Off x86-64,
    where nagref has measured nothing, ``"avx512"``.
    """
    if not x86_64():
        return "avx512"
    torch = sys.modules.get("torch")
    try:
        running = str(torch.backends.cpu.get_cpu_capability()).lower()  # type: ignore[union-attr]
    except AttributeError:  # torch is not imported (or only partly)
        running = ""
    if running in CPU_CAPABILITIES:
        return running
    wanted = os.environ.get("ATEN_CPU_CAPABILITY", "")
    if wanted in CPU_CAPABILITIES:
        return wanted
    return cpu_capability_here()


def cpu_capability_here() -> str:
    """The best CPU capability torch 2.13 would run on this CPU (x86-64), by its name.

    ``"avx512"`` needs AVX512-VL, -BW, -DQ and FMA; ``"avx2"`` AVX2 and FMA
    (torch's ``compute_cpu_capability``); ``"default"`` runs on any x86-64.
    """
    flags = cpu_flags()
    if {"avx512vl", "avx512bw", "avx512dq", "fma"} <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "default"


def _env_threads(name: str) -> int | None:
    """A thread count from the environment, as MKL reads it (None: unset or invalid)."""
    first = os.environ.get(name, "").split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return None


def _physical_cores(cpuinfo: str, allowed: set[int] | None) -> int:
    """The physical cores among the processors ``allowed`` (None: all), from /proc/cpuinfo's text.

    A core is a (``physical id``, ``core id``) pair; where the text lacks
    them, each processor counts. No text: ``os.cpu_count()``.
    """
    cores: set[tuple[str, str]] = set()
    for block in cpuinfo.split("\n\n"):
        fields = {
            key.strip(): value.strip()
            for key, _, value in (line.partition(":") for line in block.splitlines())
        }
        processor = fields.get("processor", "")
        if not processor.isdigit() or (allowed is not None and int(processor) not in allowed):
            continue
        core = fields.get("core id")
        cores.add((fields.get("physical id", "0"), core if core is not None else f"p{processor}"))
    if cores:
        return len(cores)
    if allowed:
        return len(allowed)
    return os.cpu_count() or 1


def check_threads(value: object) -> int:
    """The ``threads`` argument: a whole number >= 1 (a float, as a test vector carries it)."""
    if value is None:
        return default_threads()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"threads must be a whole number, got {describe(value)}")
    count = float(value)
    if not (math.isfinite(count) and count.is_integer() and count >= 1):
        raise ValueError(f"threads must be a whole number >= 1, got {value!r}")
    return int(count)


def check_capability(value: object) -> str:
    """The ``cpu_capability`` argument, one of :data:`CPU_CAPABILITIES` (None: here's)."""
    if value is None:
        return default_cpu_capability()
    if value not in CPU_CAPABILITIES:
        raise ValueError(
            f"cpu_capability must be one of {', '.join(CPU_CAPABILITIES)} "
            f"(ATEN_CPU_CAPABILITY's values), got {describe(value)}"
        )
    return str(value)


def runs_here(capability: str) -> Callable[[str], bool]:
    """A variant's ``live``: whether torch can run ``capability``'s kernels on this CPU.

    Torch runs any capability up to the CPU's best when
    ``ATEN_CPU_CAPABILITY`` asks for it (and dies of an illegal instruction
    beyond it); nagref's models are of x86-64 CPUs.
    """
    rank = CPU_CAPABILITIES.index(capability)

    def live(dtype: str) -> bool:
        return x86_64() and CPU_CAPABILITIES.index(cpu_capability_here()) <= rank

    return live
