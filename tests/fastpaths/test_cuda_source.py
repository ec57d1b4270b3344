"""The CuPy kernel's generated CUDA source, checked on the CPU and, with a GPU, on it.

Without a GPU, the generated kernel body is compiled as C++ with g++, the CUDA
round-to-nearest intrinsics defined by their IEEE meaning (``-ffp-contract=off``,
so that nothing is fused behind the source's back), and run against the generic
path bit for bit. With CuPy and a GPU, the real kernel runs too.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nagref
from nagref import _fastpath, _recipe, fastpaths
from nagref.conventions import keras, optax, pytorch, tensorflow
from nagref.fastpaths._cuda_source import PREAMBLE, TYPES, kernel_body

STEPS: dict[str, Callable[[Any, Any, Any], tuple[Any, ...]]] = {
    "nag": lambda p, g, b: nagref.nag(p, g, b, lr=0.03, momentum=0.9),
    "pytorch-nesterov": lambda p, g, b: pytorch.sgd(
        p, g, b, lr=0.03, momentum=0.9, nesterov=True, weight_decay=0.01
    ),
    "pytorch-fused": lambda p, g, b: pytorch.sgd(
        p, g, b, lr=0.03, momentum=0.9, dampening=0.2, fused=True
    ),
    "keras-tensorflow": lambda p, g, b: keras.sgd(
        p, g, b, learning_rate=0.03, momentum=0.9, nesterov=True
    ),
    "optax-jit": lambda p, g, b: optax.sgd(
        p, g, b, learning_rate=0.03, momentum=0.9, nesterov=True, jit=True
    ),
    "tensorflow": lambda p, g, b: tensorflow.apply_momentum(
        p, b, g, lr=0.03, momentum=0.9, use_nesterov=True
    ),
}

_INTRINSICS = """
#include <cmath>
#define __device__
#define __forceinline__ inline
using std::copysign;
typedef long long int64;
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
"""


def _arrays(dtype: str) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(5)
    p, g, b = (rng.standard_normal(1003).astype(dtype) for _ in range(3))
    tiny = np.finfo(dtype).smallest_normal
    p[:6] = [0.0, -0.0, tiny / 4, -tiny / 3, np.inf, np.nan]
    g[6:9] = [tiny / 2, -tiny, 3 * tiny]
    return p, g, b


def _capture(step: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> list[_recipe.Batch]:
    """The batches the kernel receives (it declines them all)."""
    calls: list[_recipe.Batch] = []

    def record(batch: _recipe.Batch) -> list[None]:
        calls.append(batch)
        return [None] * len(batch.columns[0])

    monkeypatch.setitem(_fastpath._loaded, "array_api_compat.numpy", record)
    step()
    return calls


def _compile_and_run(
    tmp: Path,
    segments: Any,
    ranges: list[tuple[int, int]],
    registers: dict[str, Any],
    outputs: tuple[str, ...],
) -> list[np.ndarray] | None:
    first = next(iter(registers.values()))
    storage = first.dtype.name
    ctype = TYPES[storage][0]
    constants = [{name: f"c{k}_{name}" for name in s.constants} for k, s in enumerate(segments)]
    body = kernel_body(segments, storage, list(registers), constants, outputs)
    if body is None:
        return None
    params = [f"const {ctype}* a_{name}" for name in registers]
    values: list[Any] = [r.ctypes.data_as(ctypes.c_void_p) for r in registers.values()]
    ctype_of = ctypes.c_float if ctype == "float" else ctypes.c_double
    for k, (segment, (start, stop)) in enumerate(zip(segments, ranges, strict=True)):
        for name, value in segment.constants.items():
            params.append(f"{ctype} {constants[k][name]}")
            values.append(ctype_of(float(np.asarray(value).astype(storage))))
        params += [f"int64 start{k}", f"int64 stop{k}"]
        values += [ctypes.c_longlong(start), ctypes.c_longlong(stop)]
    results = [np.empty_like(first) for _ in outputs]
    params += [f"{ctype}* o_{j}" for j in range(len(outputs))]
    values += [r.ctypes.data_as(ctypes.c_void_p) for r in results]
    loads = " ".join(f"{ctype} in_{name} = a_{name}[i];" for name in registers)
    declared = " ".join(f"{ctype} out{j} = 0;" for j in range(len(outputs)))
    stores = " ".join(f"o_{j}[i] = out{j};" for j in range(len(outputs)))
    source = (
        f"{_INTRINSICS}\n{PREAMBLE}\n"
        f'extern "C" void kernel({", ".join(params)}, int64 n) {{\n'
        f"for (int64 i = 0; i < n; i++) {{ {loads} {declared}\n{body}\n{stores} }}\n}}\n"
    )
    (tmp / "kernel.cpp").write_text(source)
    library = tmp / "kernel.so"
    subprocess.run(
        ["g++", "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-o", library, tmp / "kernel.cpp"],
        check=True,
    )
    ctypes.CDLL(str(library)).kernel(*values, ctypes.c_longlong(first.size))
    return results


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to build the source on the CPU")
@pytest.mark.parametrize("case", list(STEPS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_generated_source_equals_the_generic_path(
    case: str, dtype: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p, g, b = _arrays(dtype)
    with np.errstate(all="ignore"):
        calls = _capture(lambda: STEPS[case](p, g, b), monkeypatch)
        assert len(calls) == 1
        batch = calls[0]
        registers = {
            name: column[0] for name, column in zip(batch.inputs, batch.columns, strict=True)
        }
        ranges = _recipe.bounds(batch.lanes, p.size)
        segments = batch.segments[: len(ranges)]
        results = _compile_and_run(tmp_path, segments, ranges, registers, batch.outputs)
        assert results is not None, "the generator declined"
        with fastpaths.disabled():
            expected = _recipe._generic(np, segments, ranges, registers, batch.outputs)  # type: ignore[arg-type]
    for got, want in zip(results, expected, strict=True):
        same = got.view(f"u{got.itemsize}") == want.view(f"u{want.itemsize}")
        assert np.all(same | (np.isnan(got) & np.isnan(want)))


def test_the_generator_declines_models_it_does_not_implement() -> None:
    seg = _recipe.Segment(
        (_recipe.step("p", "mul", "p", "g"),),
        _recipe.Rounding(contract=False, compute={"float16": "float32"}),
        {},
    )
    assert kernel_body([seg], "float16", ["p", "g"], [{}], ["p"]) is None
    assert kernel_body([seg], "float32", ["p", "g"], [{}], ["q"]) is None
    assert kernel_body([seg], "float32", ["p", "g"], [{}], ["p"]) is not None


@pytest.mark.parametrize("case", list(STEPS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cupy_kernel_on_a_gpu(case: str, dtype: str) -> None:
    cupy = pytest.importorskip("cupy")
    if fastpaths.available()["cupy"] is not None:
        pytest.skip(f"cupy imports but its kernel cannot run: {fastpaths.available()['cupy']}")
    p, g, b = (cupy.asarray(x) for x in _arrays(dtype))
    with np.errstate(all="ignore"):
        fast = STEPS[case](p, g, b)
        with fastpaths.disabled():
            slow = STEPS[case](p, g, b)
    for got, want in zip(fast, slow, strict=True):
        x, y = cupy.asnumpy(got), cupy.asnumpy(want)
        same = x.view(f"u{x.itemsize}") == y.view(f"u{y.itemsize}")
        assert np.all(same | (np.isnan(x) & np.isnan(y)))
