"""How torch runs on the CPU here: its threads, its CPU capability, its release, its kernels.

The threads change the bits of float16 and bfloat16 updates, the CPU
capability those of every dtype, and the release those of the fused kernel
in float16 and bfloat16 (see :mod:`nagref.conventions.pytorch`, which
builds its programs from the roundings here: :func:`elementwise` for
``add_`` and ``mul_``, :func:`fused16` for torch 2.14's fused kernel).
nagref never imports torch: where torch is imported, it asks torch;
elsewhere it computes what torch would pick, as measured with torch 2.13.0's
Linux x86-64 CPU wheel (OpenMP and MKL) on a 2-core AVX-512 machine.

Threads (``threads``), measured against torch 2.13.0 with 1 to 4 threads
(``torch.set_num_threads``; OpenMP runs 3 and 4 on a 2-core machine too):
``add_`` and ``_foreach_add_`` run ``at::parallel_for`` with a grain of
32,768 elements (:data:`GRAIN`). A tensor of n > 32,768 elements is cut into
c = min(threads, ⌈n / 32768⌉) chunks of ⌈n / c⌉ elements (the last shorter),
and each chunk has its own SIMD body and scalar tail of (chunk size) mod 32
elements (:func:`nagref._engine.ir.chunks`). So in float16 and bfloat16 the
bits depend on the thread count: n = 65537, every p = 0x30c6 and g = 0x3e83
(float16), ``SGD([p], lr=0.1)``: one thread gives 0xa2f4 at element 32768
and 0xa2f0 at 65536, two threads the reverse. The chunk model matched 352
of 352 cases (n from 33 to 200,003, 1 to 4 threads, ``add_``,
``_foreach_add_`` and both SGD paths) under each CPU capability. float32
and float64 are unaffected (their scalar tail fuses as the body does, and
``mul_`` rounds once everywhere), and so is ``fused=True``: its
``parallel_for`` cuts whole 64-byte units, multiples of its lanes, so only a
tensor's last n mod 8 (or 4) elements are its tail (0 differing of 11.9
million elements with 2 threads, n up to 100,003).

CPU capability (``cpu_capability``; ``ATEN_CPU_CAPABILITY``, the kernels
ATen dispatches to), measured against torch 2.13.0 on an AVX-512 machine,
setting the variable: ``"avx2"`` computes every one of the points above as
``"avx512"`` does (the 16-bit ``add_`` tail is n mod 32 there too, not
n mod 16). ``"default"`` (ATen's scalar kernels, what x86 CPUs without AVX2
and FMA run) fuses nothing: float32 and float64 ``add_`` round the product
and the sum separately (3,757 of 30,000 float32 elements differ from the
fused result), float16 and bfloat16 round as the scalar tail does on every
element, and ``fused=True`` rounds twice in its body and epilogue alike;
``mul_``, ``_foreach_mul_`` and the scalars' conversions are unchanged. Each
model gave 0 differing elements of 66,000 per dtype, operation and
capability (n = 100 and 120, 300 draws each), and of 29,448 per dtype for
``fused=True`` (3 steps of 24 configurations).

Versions (``version``, :data:`VERSIONS`): the torch release whose CPU
kernels are modelled, ``"2.13"`` (the default) or ``"2.14"``. Measured
against torch 2.14.1 (the ``+cu130`` wheel's CPU kernels, on the same
AVX-512 machine), every path above gives 2.13.0's bits: single-tensor,
foreach, and fused float32 and float64, in all four dtypes where they
apply, under ``avx512``, ``avx2`` and ``default``, with 1 and 2 threads
(229,444,920 elements, 0 differing; sizes 1 to 100 and 32,769 to 100,003,
8 configurations, 3 steps). The two differ in one point: 2.14's fused
kernel updates float16 and bfloat16 (pytorch/pytorch#192545), which
``pytorch.sgd(..., version="2.14")`` models:

* every operation computes in float32 and every intermediate result is
  rounded to float32; the parameter and the buffer are rounded to the
  16-bit format only when stored, and Nesterov's direction and the
  parameter update read this step's float32 buffer, not the stored one;
* lr, momentum, 1 − dampening and the weight decay are each converted once,
  double → float32 (never through the 16-bit format, and never checked for
  overflow);
* ``avx512`` and ``avx2``: the SIMD body is float32's fused body (the buffer
  fl(b·μ) + (1−τ)·g fused, every other multiply-add one FMA), and the
  scalar epilogue is the last n mod 16 elements of each tensor (the 16
  lanes of ``Vectorized<Half>``; whatever the threads), where the buffer is
  μ·b + fl((1−τ)·g) fused; ``default``: nothing fuses, body and epilogue
  alike.

This model gave 0 differing elements of 38.3 million (12 cells: each
capability, both dtypes, 1 and 2 threads; sizes 1 to 100 and 33,000 to
100,003) and of 2,685,417 per cell written with this module's own
recipes; each of its points was tested on its own against the closest
alternative (torch agreed with the model on every element where the two
differ, and the epilogue's length n mod 16 against n mod 4, 8, 32 and 64).
torch 2.14.1's messages, ``checked_convert`` of ``add_``'s alpha, threads,
grain and defaults are 2.13.0's.
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
import numbers
import os
import sys
from collections.abc import Callable
from pathlib import Path

from .._checks import describe
from .._engine.ir import Hyper, Program, Recipe, Rounding, Split
from .._host import cpu_flags, x86_64
from ._common import IN_OPMATH

__all__ = [
    "CPU_CAPABILITIES",
    "EACH",
    "FUSED16",
    "FUSED16_LANES",
    "FUSED16_TWICE",
    "GRAIN",
    "REDUCED_LANES",
    "REDUCED_TAIL",
    "VERSIONS",
    "check_capability",
    "check_threads",
    "check_version",
    "cpu_capability_here",
    "default_cpu_capability",
    "default_threads",
    "elementwise",
    "fused16",
    "installed_torch",
    "release",
    "runs_here",
    "runs_release",
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


# -- torch's elementwise kernels and releases ------------------------------------

EACH = Rounding(contract=True, compute=IN_OPMATH)
#: float16 and bfloat16 ``add_``: the scalar tail (c10::Half and
#: c10::BFloat16 arithmetic) rounds product and sum separately, after the
#: SIMD body's multiples of 32 elements (AVX-512 and AVX2).
REDUCED_TAIL = Rounding(contract=False, compute=IN_OPMATH)
REDUCED_LANES = dict.fromkeys(IN_OPMATH, 32)

#: The torch releases whose CPU kernels :func:`sgd` models (its ``version``).
VERSIONS = ("2.13", "2.14")

#: torch 2.14's fused kernel in float16 and bfloat16: float32 arithmetic, each
#: result kept in float32 (the 16-bit rounding only when p and b are stored).
KEEP_FLOAT32 = dict.fromkeys(IN_OPMATH, "float32")
FUSED16 = Rounding(contract=True, compute=IN_OPMATH, result=KEEP_FLOAT32)
FUSED16_TWICE = Rounding(contract=False, compute=IN_OPMATH, result=KEEP_FLOAT32)
#: its scalar epilogue: the last n mod 16 elements (avx512 and avx2)
FUSED16_LANES = dict.fromkeys(IN_OPMATH, 16)


def elementwise(recipe: Recipe, capability: str, threads: int) -> tuple[Rounding, Split | None]:
    """The rounding and split of ``recipe`` run as torch's elementwise CPU ops.

    ``add_``, ``mul_`` and their ``_foreach_`` forms (``TensorIterator``
    kernels) under ``capability``, on ``threads`` threads: one fused
    multiply-add in the SIMD body, with float16 and bfloat16's scalar tail
    per chunk (see the module's docstring); nothing fused and no split with
    ``"default"``.
    """
    if capability == "default":  # the scalar tail's rounding (nothing fuses) everywhere
        return REDUCED_TAIL, None
    return EACH, Split(recipe, REDUCED_TAIL, REDUCED_LANES, GRAIN, threads)


def fused16(
    recipe: Recipe,
    tail: Recipe,
    capability: str,
    *,
    inputs: tuple[str, ...],
    outputs: tuple[str | None, ...],
    hypers: dict[str, Hyper],
) -> Program:
    """torch 2.14's fused kernel in float16 and bfloat16 (see the module's docstring).

    The body is ``recipe`` (the buffer fl(b·μ) + (1−τ)·g fused, as float32's
    body), the epilogue ``tail`` (μ·b + fl((1−τ)·g) fused) on the last
    n mod 16 elements of each tensor; every result is kept in float32, so
    that Nesterov and the update read this step's float32 buffer, and the
    outputs are rounded to the 16-bit format once, as the kernel stores them.
    """
    if capability == "default":  # nothing fuses: the body and the epilogue coincide
        return Program(recipe, FUSED16_TWICE, inputs, outputs, hypers)
    return Program(recipe, FUSED16, inputs, outputs, hypers, Split(tail, FUSED16, FUSED16_LANES))


def check_version(value: object) -> str:
    """The ``version`` argument, one of :data:`VERSIONS`."""
    if not isinstance(value, str) or value not in VERSIONS:
        raise ValueError(
            f"version must be one of {', '.join(VERSIONS)} (the torch release whose CPU "
            f"kernels are modelled), got {describe(value)}"
        )
    return value


def release(version: str) -> str:
    """A torch version's release, as :data:`VERSIONS` names it: ``"2.14.1+cu130"`` -> ``"2.14"``."""
    return ".".join(version.partition("+")[0].split(".")[:2])


@functools.cache
def installed_torch() -> str | None:
    """The installed torch's version (``"2.14.1"``), from its metadata: torch is not imported.

    None where torch is not installed.
    """
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def runs_release(version: str, capability: str) -> Callable[[str], bool]:
    """A variant's ``live``: the installed torch is ``version``'s and runs ``capability`` here."""
    here = runs_here(capability)

    def live(dtype: str) -> bool:
        installed = installed_torch()
        return installed is not None and release(installed) == version and here(dtype)

    return live
