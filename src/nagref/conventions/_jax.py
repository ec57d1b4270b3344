"""JAX's arithmetic on CPU, shared by the conventions of the libraries written on it.

Measured against JAX 0.10.2 (CPU) through Optax 0.2.8 and
``jax.example_libraries.optimizers``:

* Eagerly, every operation rounds separately (:data:`EAGER`); float16 and
  bfloat16 are computed in float32 with each result rounded to the format.
* Under ``jax.jit`` XLA contracts a multiply and an add into a fused
  multiply-add (:data:`JIT`) in float32 and float64, and in float16 only on
  a CPU with native float16 arithmetic (AVX512-FP16; elsewhere each
  operation rounds separately). XLA keeps every bfloat16 round trip and
  contracts nothing across one (:func:`rounding`).
* JAX on CPU flushes float32, float64 and bfloat16 subnormals to zero
  (bfloat16's in float32, before the rounding), eager or jitted.

A hyperparameter reaches a 16-bit format as it is converted (:func:`via`):
at run time (``"run_time"``: XLA's ``convert`` of a float64 value, through
float32, rounding twice, except float16 directly on a CPU with AVX512-FP16;
a Python float of an eager operation, a schedule's value), on the host
(``"host"``: NumPy's conversion, once, bfloat16 through float32 as
``ml_dtypes`` does; a weakly typed Python constant that ``jax.jit`` folds
into the program), or folded by XLA (``"folded"``: a float64 constant of a
jitted program, once, directly).
"""

from __future__ import annotations

from typing import Literal

from .._checks import describe
from .._engine.ir import STORAGE, VIA_HOST, VIA_OPMATH, Rounding
from .._host import native_float16
from ._common import FLUSHED, IN_OPMATH

__all__ = ["EAGER", "JIT", "Conversion", "native", "rounding", "via"]

#: Eager JAX: every operation rounded, the 16-bit formats computed in float32.
EAGER = Rounding(contract=False, compute=IN_OPMATH, flush=FLUSHED)
#: XLA under ``jax.jit``: multiply-adds contracted, in the dtype itself.
JIT = Rounding(contract=True, flush=FLUSHED)

#: Where a hyperparameter is converted to the parameters' dtype (the module's docstring).
Conversion = Literal["run_time", "host", "folded"]


def native(native_float16_: bool | None) -> bool:
    """A convention's ``native_float16`` argument, checked; None: this CPU's."""
    if native_float16_ is None:
        return native_float16()
    if not isinstance(native_float16_, bool):
        raise TypeError(f"native_float16 must be a bool or None, got {describe(native_float16_)}")
    return native_float16_


def via(at: Conversion, dtype: str, native: bool) -> tuple[str, ...]:
    """The dtypes a hyperparameter converted ``at`` is rounded through, for ``dtype``."""
    if at == "run_time":
        return (STORAGE,) if native and dtype == "float16" else VIA_OPMATH
    if at == "host":
        return VIA_HOST
    return (STORAGE,)


def rounding(jit: bool, dtype: str, native: bool) -> Rounding:
    """How an update of ``dtype`` parameters rounds, eager or under ``jax.jit``."""
    if not jit or (dtype in IN_OPMATH and not (native and dtype == "float16")):
        return EAGER
    return JIT
