"""nagref's backend kernels, registered with the engine's one fast-path seam.

Each kernel evaluates the same programs as the generic interpreter and
gives the same bits, faster; it imports only the engine's IR
(:mod:`nagref._engine.ir`) and the dtype table. Importing this package
registers them (:func:`nagref._engine.kernels.register`: a predicate on the
namespace and a loader), and the dispatcher and :func:`available` read that
one list. :func:`disabled` runs the generic path only.

* ``numpy``: :mod:`nagref.fastpaths.numpy`, a compiled C evaluator
  (:mod:`nagref.fastpaths._cpu`) for contiguous float16, bfloat16, float32
  and float64;
* ``torch``: :mod:`nagref.fastpaths.torch`, CPU tensors through the NumPy
  kernel as zero-copy NumPy views, written in place for ``out=``;
* ``jax``: :mod:`nagref.fastpaths.jax`, eager CPU arrays likewise, with XLA's
  flushing of subnormals (never a tracer: under ``jax.jit`` the traced
  generic path runs);
* ``cupy``: :mod:`nagref.fastpaths.cupy`, a generated CUDA elementwise kernel.
"""

from __future__ import annotations

import importlib

from .._engine.kernels import Kernel, Registration, available, disabled, register

__all__ = ["available", "disabled"]


def _registration(name: str, module: str) -> Registration:
    """Kernel ``name`` for the namespace ``name`` (plain or array_api_compat's), in ``module``."""

    def load() -> Kernel:
        run: Kernel = importlib.import_module(module).run
        return run

    namespaces = {name, f"array_api_compat.{name}"}
    return Registration(name, namespaces.__contains__, load)


register(_registration("numpy", "nagref.fastpaths.numpy"))
register(_registration("cupy", "nagref.fastpaths.cupy"))
register(_registration("torch", "nagref.fastpaths.torch"))
register(Registration("jax", "jax.numpy".__eq__, _registration("jax", "nagref.fastpaths.jax").load))
