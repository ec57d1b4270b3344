"""The CuPy kernel, checked on the CPU and, with a GPU, on it.

Without a GPU, :mod:`nagref.fastpaths.cupy` runs against a stand-in ``cupy``
module whose ``ElementwiseKernel`` compiles the generated kernel body as C++
with g++, the CUDA round-to-nearest intrinsics defined by their IEEE meaning
(``-ffp-contract=off``, so that nothing is fused behind the source's back).
That exercises the whole kernel module (its parameters, constants, segment
bounds and per-leaf launches) against the generic path bit for bit. With
CuPy and a GPU, the real kernel runs the same cases.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import shutil
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nagref
from nagref import fastpaths
from nagref._engine import ir
from nagref._engine import kernels as registry
from nagref.conventions import keras, optax, pytorch, tensorflow
from nagref.fastpaths._cuda_source import kernel_body

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


_CTYPES = {"float": ctypes.c_float, "double": ctypes.c_double, "int64": ctypes.c_longlong}
#: the parameter types CuPy's ElementwiseKernel takes, by NumPy's name, as C
#: types; CuPy 14 reads a C name such as "float" as Python's float (float64),
#: so the stand-in refuses C names as a wrong type (measured on CuPy 14.2)
_PARAM_TYPES = {"float32": "float", "float64": "double", "int64": "int64"}


def _param(declaration: str) -> tuple[str, str]:
    dtype, name = declaration.split()
    if dtype not in _PARAM_TYPES:
        raise TypeError(f"Type is mismatched: a parameter declared {dtype!r}, not a dtype name")
    return _PARAM_TYPES[dtype], name


class _ElementwiseKernel:
    """``cupy.ElementwiseKernel`` on the CPU: the body, compiled by g++, run for each i.

    An array argument is read at element i; a 0-d array or a number is a
    scalar, as CuPy broadcasts it.
    """

    def __init__(
        self, in_params: str, out_params: str, operation: str, name: str, **options: Any
    ) -> None:
        self._in = [_param(p) for p in in_params.split(", ")]
        self._out = [_param(p) for p in out_params.split(", ")]
        self._operation = operation
        self._preamble = options.get("preamble", "")
        self.launches = 0

    def __call__(self, *args: Any) -> None:
        inputs, outputs = args[: len(self._in)], args[len(self._in) :]
        params, values, loads = [], [], []
        for (ctype, name), value in zip(self._in, inputs, strict=True):
            if isinstance(value, np.ndarray) and value.ndim > 0:
                params.append(f"const {ctype}* a_{name}")
                values.append(value.ctypes.data_as(ctypes.c_void_p))
                loads.append(f"{ctype} {name} = a_{name}[i];")
            else:
                params.append(f"{ctype} {name}")
                values.append(
                    _CTYPES[ctype](value.item() if isinstance(value, np.ndarray) else value)
                )
        for (ctype, name), value in zip(self._out, outputs, strict=True):
            params.append(f"{ctype}* o_{name}")
            values.append(value.ctypes.data_as(ctypes.c_void_p))
        declared = " ".join(f"{ctype} {name} = 0;" for ctype, name in self._out)
        stores = " ".join(f"o_{name}[i] = {name};" for _, name in self._out)
        source = (
            f"{_INTRINSICS}\n{self._preamble}\n"
            f'extern "C" void kernel({", ".join(params)}, int64 n) {{\n'
            f"for (int64 i = 0; i < n; i++) {{ {' '.join(loads)} {declared}\n"
            f"{self._operation}\n{stores} }}\n}}\n"
        )
        _library(source).kernel(*values, ctypes.c_longlong(outputs[0].size))
        self.launches += 1


_BUILT: dict[str, ctypes.CDLL] = {}
_BUILD_DIR: list[Path] = []


def _library(source: str) -> ctypes.CDLL:
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    if key not in _BUILT:
        path = _BUILD_DIR[0] / f"kernel_{key}"
        path.with_suffix(".cpp").write_text(source)
        command = ["g++", "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-o"]
        subprocess.run([*command, path.with_suffix(".so"), path.with_suffix(".cpp")], check=True)
        _BUILT[key] = ctypes.CDLL(str(path.with_suffix(".so")))
    return _BUILT[key]


@pytest.fixture
def cpu_cupy(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[_ElementwiseKernel]]:
    """nagref.fastpaths.cupy over a stand-in cupy (NumPy arrays, g++ kernels) as
    NumPy's kernel; yields the kernels it builds."""
    if shutil.which("g++") is None:
        pytest.fail("g++ is needed to build the generated CUDA source on the CPU")
    if not _BUILD_DIR:
        _BUILD_DIR.append(tmp_path_factory.mktemp("cuda_source"))
    kernels: list[_ElementwiseKernel] = []

    def elementwise(*args: Any, **options: Any) -> _ElementwiseKernel:
        kernels.append(_ElementwiseKernel(*args, **options))
        return kernels[-1]

    fake = types.ModuleType("cupy")
    fake.ndarray = np.ndarray  # type: ignore[attr-defined]
    fake.asarray = np.asarray  # type: ignore[attr-defined]
    fake.empty_like = np.empty_like  # type: ignore[attr-defined]
    fake.ElementwiseKernel = elementwise  # type: ignore[attr-defined]
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.delitem(sys.modules, "nagref.fastpaths.cupy", raising=False)
    module = importlib.import_module("nagref.fastpaths.cupy")
    module._kernel.cache_clear()
    monkeypatch.setitem(registry._loaded, "array_api_compat.numpy", module.run)
    yield kernels
    sys.modules.pop("nagref.fastpaths.cupy", None)


def _same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    same = got.view(f"u{got.itemsize}") == want.view(f"u{want.itemsize}")
    assert np.all(same | (np.isnan(got) & np.isnan(want)))


@pytest.mark.parametrize("case", list(STEPS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_cupy_kernel_equals_the_generic_path_on_the_cpu(
    case: str, dtype: str, cpu_cupy: list[_ElementwiseKernel]
) -> None:
    p, g, b = _arrays(dtype)
    with np.errstate(all="ignore"):
        fast = STEPS[case](p, g, b)
        assert sum(k.launches for k in cpu_cupy) == 1, "the kernel did not run"
        with fastpaths.disabled():
            slow = STEPS[case](p, g, b)
    for got, want in zip(fast, slow, strict=True):
        _same(got, want)


def test_the_cupy_kernel_launches_per_leaf_and_declines_what_it_cannot_take(
    cpu_cupy: list[_ElementwiseKernel],
) -> None:
    base = np.arange(1, 97, dtype=np.float32) / 7
    tree = {"a": base[:13].copy(), "strided": base[:24].copy(), "b": base[40:95].copy()}
    grads = {name: x[::-1].copy() for name, x in tree.items()}
    grads["strided"] = base[::4]  # one strided gradient: that leaf is declined
    donated = {name: np.empty_like(x) for name, x in tree.items()}
    # the arrays' memory is strided, the torch tensors they stand for are not
    # (a strided grad's layout would be refused by the fused kernel's model)
    step = {"lr": 0.5, "momentum": 0.9, "fused": True, "grad_layout": "contiguous"}
    with np.errstate(all="ignore"):  # 13 and 55 elements: a fused tail of 5 and 7
        fast = pytorch.sgd(tree, grads, tree, **step)  # type: ignore[arg-type]
        fast_out = pytorch.sgd(tree, grads, tree, out=(donated, None), **step)  # type: ignore[arg-type]
        with fastpaths.disabled():
            slow = pytorch.sgd(tree, grads, tree, **step)  # type: ignore[arg-type]
    assert [k.launches for k in cpu_cupy] == [4]  # 2 leaves, twice; the strided one declined
    for name in tree:
        _same(fast[0][name], slow[0][name])
        _same(fast[1][name], slow[1][name])
        _same(fast_out[0][name], slow[0][name])
    assert fast_out[0]["b"] is donated["b"]


def test_the_generator_declines_models_it_does_not_implement() -> None:
    seg = ir.Segment(
        (ir.instr("p", "mul", "p", "g"),),
        ir.Rounding(contract=False, compute={"float16": "float32"}),
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
