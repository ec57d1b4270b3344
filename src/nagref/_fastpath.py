"""The one seam through which a backend may run a recipe faster.

The generic path (:func:`nagref._recipe.run`) evaluates a recipe one
array-API operation at a time, each result a new array. A *kernel* evaluates
the same recipe in a backend's own terms (a compiled loop over cache-sized
blocks, a GPU elementwise kernel) and must produce the same bits. Every
rule and convention reaches a kernel through :func:`kernel_for` and nowhere
else; the tests run each kernel against the generic path bit for bit.

A kernel receives a :class:`~nagref._recipe.Batch`: every leaf of one dtype
and device in a call (so that it can run a model's many small tensors in
one pass), as columns of input registers, with the recipe's segments and
their constants, the output register names and, per output, the caller's
arrays (or None for new arrays). It returns, per leaf, the outputs, or None
to decline that leaf (an unsupported dtype, layout or rounding model), which
the generic path then runs.

Kernels, by namespace:

* NumPy: :mod:`nagref.fastpaths.numpy`, a compiled C evaluator
  (:mod:`nagref.fastpaths._cpu`) for contiguous float16, float32 and float64
  arrays;
* CuPy: :mod:`nagref.fastpaths.cupy`, a generated elementwise CUDA kernel.

``NAGREF_FASTPATH=0`` in the environment, or the :func:`disabled` context,
turns every kernel off, so that the generic path runs.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from ._typing import Namespace

if TYPE_CHECKING:
    from ._recipe import Batch

__all__ = ["Kernel", "disabled", "kernel_for"]


class Kernel(Protocol):
    """A backend's evaluator of recipes (see the module docstring)."""

    def __call__(self, batch: Batch) -> Sequence[tuple[Any, ...] | None]: ...


#: namespace module name -> the module whose ``run`` is its kernel
_MODULES = {
    "array_api_compat.numpy": "nagref.fastpaths.numpy",
    "numpy": "nagref.fastpaths.numpy",
    "array_api_compat.cupy": "nagref.fastpaths.cupy",
    "cupy": "nagref.fastpaths.cupy",
}
_loaded: dict[str, Kernel | None] = {}
_enabled: ContextVar[bool] = ContextVar("nagref_fastpath", default=True)


def kernel_for(xp: Namespace) -> Kernel | None:
    """The kernel registered for ``xp``, or None (none, or fast paths off)."""
    if not _enabled.get() or os.environ.get("NAGREF_FASTPATH", "1") == "0":
        return None
    name = getattr(xp, "__name__", "")
    if name not in _loaded:
        module = _MODULES.get(name)
        kernel: Kernel | None = None
        if module is not None:
            try:
                kernel = importlib.import_module(module).run
            except ImportError:  # the compiled module was not built, or no GPU
                kernel = None
        _loaded[name] = kernel
    return _loaded[name]


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within this context (in this thread or task), only the generic path runs."""
    token = _enabled.set(False)
    try:
        yield
    finally:
        _enabled.reset(token)
