"""The array backends the suite runs on, behind one ``xp`` fixture.

Each :class:`Backend` knows how to import its library, move NumPy test data
in and out, and call a function the way that backend's users do: JAX_JIT
calls it under ``jax.jit`` (array hyperparameters traced), and DASK calls it
under a scheduler that fails if anything is computed, so the rules must stay
lazy. Every backend but CuPy is *required*: if one does not import, its tests
fail instead of skipping, unless NAGREF_ALLOW_MISSING_BACKENDS=1 is set for a
partial local install.
"""

from __future__ import annotations

import enum
import importlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from array_api_compat import array_namespace, is_array_api_obj

from nagref import _dtypes
from nagref._tree import flatten, unflatten

ALL_DTYPES = _dtypes.NAMES  # every dtype of the dtype table
#: the dtypes each backend cannot hold (array-api-strict: only the standard's;
#: CuPy has no bfloat16)
_LACKS = {
    "array-api-strict": ("float16", "bfloat16"),
    "cupy": ("bfloat16",),
}


def numpy_dtype(name: str | None) -> Any:
    """NumPy's dtype of that name: its own, or ``ml_dtypes``' (bfloat16); None stays None."""
    return None if name is None else _dtypes.numpy_dtype(name)


class Backend(enum.Enum):
    NUMPY = "numpy"
    NUMPY_READONLY = "numpy-readonly"
    ARRAY_API_STRICT = "array-api-strict"
    TORCH = "torch"
    JAX = "jax"
    JAX_JIT = "jax-jit"
    DASK = "dask"
    CUPY = "cupy"

    @property
    def module_name(self) -> str:
        return {
            "numpy-readonly": "numpy",
            "array-api-strict": "array_api_strict",
            "jax": "jax.numpy",
            "jax-jit": "jax.numpy",
            "dask": "dask.array",
        }.get(self.value, self.value)

    @property
    def required(self) -> bool:
        return self is not Backend.CUPY


class XP:
    """A backend's array namespace plus the test helpers that go with it.

    Attribute access falls through to the namespace, so ``xp.float32`` and
    ``xp.zeros`` work as they would on the namespace itself.
    """

    def __init__(self, backend: Backend, module: Any) -> None:
        self.backend = backend
        self.module = module
        self.ns = array_namespace(self._from_numpy_raw(np.zeros(1)))
        self._xla = backend in (Backend.JAX, Backend.JAX_JIT)
        #: Complex multiplication decides zero signs and non-finite results
        #: differently in each library; NumPy's (the naive formula) is the
        #: oracle's, so only NumPy-based backends match it bit for bit.
        self.numpy_complex_semantics = backend in (
            Backend.NUMPY,
            Backend.NUMPY_READONLY,
            Backend.ARRAY_API_STRICT,
            Backend.DASK,
        )
        #: XLA under jit may contract a multiply and an add into one FMA.
        self.contracts = backend is Backend.JAX_JIT
        self.dtypes = tuple(d for d in ALL_DTYPES if d not in _LACKS.get(backend.value, ()))

    def flushes_subnormals(self, dtype: str) -> bool:
        """XLA on CPU flushes subnormals to zero, except in float16, which it
        computes in float32 (where float16's subnormals are normal numbers);
        bfloat16, computed in float32 too, shares float32's subnormals."""
        return self._xla and dtype != "float16"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ns, name)

    def __repr__(self) -> str:
        return f"XP({self.backend.value})"

    # -- data in and out ------------------------------------------------------

    def asarray(self, data: Any, dtype: str | None = None) -> Any:
        """A backend array holding ``data`` (NumPy data, or nested lists)."""
        return self._from_numpy_raw(np.asarray(data, dtype=numpy_dtype(dtype)))

    def _from_numpy_raw(self, a: np.ndarray) -> Any:
        b = self.backend
        if b is Backend.NUMPY:
            return a.copy()
        if b is Backend.NUMPY_READONLY:
            a = a.copy()
            a.flags.writeable = False
            return a
        if b is Backend.TORCH:
            if a.dtype.name == "bfloat16":  # torch reads ml_dtypes' bfloat16 by its bits
                return self.module.from_numpy(a.view(np.int16).copy()).view(self.module.bfloat16)
            return self.module.asarray(a.copy())
        if b is Backend.DASK:
            chunks = max(1, a.size // 3) if a.ndim == 1 else "auto"
            return self.module.from_array(a.copy(), chunks=chunks)
        return self.module.asarray(a)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A NumPy copy of a backend array (computing it for Dask)."""
        assert is_array_api_obj(x), f"expected an array, got {type(x)}"
        assert array_namespace(x) is self.ns, f"{type(x)} is not from {self.backend.value}"
        b = self.backend
        if b is Backend.TORCH:
            if x.dtype == self.module.bfloat16:
                bits = x.detach().cpu().view(self.module.int16).numpy().copy()
                return bits.view(numpy_dtype("bfloat16"))
            return x.detach().cpu().numpy().copy()
        if b is Backend.DASK:
            return np.asarray(x.compute())
        if b is Backend.CUPY:
            return x.get()
        if b is Backend.ARRAY_API_STRICT:
            return np.from_dlpack(x).copy()
        return np.array(x, copy=True)

    def tree_asarray(self, tree: Any, dtype: str | None = None) -> Any:
        leaves, structure = flatten(tree)
        return unflatten(structure, [self.asarray(leaf, dtype) for _, leaf in leaves])

    def tree_to_numpy(self, tree: Any) -> Any:
        leaves, structure = flatten(tree)
        return unflatten(structure, [self.to_numpy(leaf) for _, leaf in leaves])

    # -- calling a rule the way the backend's users do --------------------------

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn``: jitted on JAX_JIT, with computing forbidden on DASK."""
        if self.backend is Backend.JAX_JIT:
            import jax

            traced = {k: v for k, v in kwargs.items() if is_array_api_obj(v)}
            static = {k: v for k, v in kwargs.items() if k not in traced}
            return jax.jit(lambda a, kw: fn(*a, **kw, **static))(args, traced)
        if self.backend is Backend.DASK:
            import dask

            with dask.config.set(scheduler=_forbid_compute):
                return fn(*args, **kwargs)
        return fn(*args, **kwargs)


def _forbid_compute(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a rule computed a Dask graph; the rules must stay lazy")


def load(backend: Backend) -> XP:
    """Import a backend, or fail (skip only CuPy) when it is not installed."""
    try:
        module = importlib.import_module(backend.module_name)
        if backend is Backend.CUPY and module.cuda.runtime.getDeviceCount() < 1:
            raise ImportError("cupy imports but sees no GPU")
        if backend in (Backend.JAX, Backend.JAX_JIT):
            importlib.import_module("jax").config.update("jax_enable_x64", True)
    except Exception as error:  # ImportError, or CUDA errors from CuPy
        if not backend.required:
            pytest.skip(f"{backend.value} is not available: {error}")
        if os.environ.get("NAGREF_ALLOW_MISSING_BACKENDS") == "1":
            pytest.skip(f"{backend.value} is missing (NAGREF_ALLOW_MISSING_BACKENDS=1)")
        pytest.fail(f"required backend {backend.value} is not installed: {error}")
    return XP(backend, module)
