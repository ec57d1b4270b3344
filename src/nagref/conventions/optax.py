r"""Optax's ``optax.sgd`` followed by ``optax.apply_updates``, bit for bit (Optax 0.2).

The recurrence (``optax/_src/alias.py``, ``transforms/_accumulation.py``
``trace``; lr sits outside the trace, which starts at zero):

.. math::
    t_k = g_k + \mu t_{k-1},\qquad
    u_k = -\alpha_k (g_k + \mu t_k) \text{ (nesterov) or } -\alpha_k t_k,\qquad
    \theta_k = \theta_{k-1} + u_k

Rounding, as measured against Optax 0.2.8 on JAX 0.10.2 (CPU): eagerly,
every operation rounds separately; under ``jax.jit`` XLA contracts μ·t + g,
μ·t + g (Nesterov) and θ + (−α)·d into fused multiply-adds in float32 and
float64, and in float16 only where the CPU has native float16 arithmetic
(AVX512-FP16: a correctly rounded float16 FMA; elsewhere each operation
rounds separately; see :mod:`nagref._host`). JAX on CPU flushes float32 and
float64 subnormals to zero, eager or jitted.

Hyperparameters reach float16 as XLA converts them. ``learning_rate`` is
modelled as a schedule's value, a float64 array (JAX with x64) converted at
run time: XLA converts float64 to float16 through float32, rounding twice,
except on a CPU with native float16 arithmetic, where it converts directly.
The momentum is a Python constant: eager JAX converts it at run time, while
``jax.jit`` folds it into the program, rounded once. (A
constant learning rate under ``jax.jit`` is folded too; in float16 that
rounds it once, which this function does not model.)
"""

from __future__ import annotations

from typing import Any, TypeVar

from .._checks import describe
from .._engine.ir import VIA_OPMATH, Hyper, Program, Rounding, instr
from .._host import native_float16 as _native_float16
from .._typing import ArrayTree
from ._common import ZERO, donated, from_zero, number, run
from ._registry import REAL_FLOATS, Capabilities, Convention, Hypers, Variant

__all__ = ["CONVENTION", "sgd"]

T = TypeVar("T", bound=ArrayTree)

_FLUSH = frozenset({"float32", "float64"})
_EAGER = Rounding(contract=False, flush=_FLUSH)
_JIT = Rounding(contract=True, flush=_FLUSH)


def sgd(
    param: T,
    grad: T,
    trace: T | None,
    *,
    learning_rate: float,
    momentum: float | None = None,
    nesterov: bool = False,
    jit: bool = False,
    native_float16: bool | None = None,
    out: tuple[T | None, T | None] | None = None,
) -> tuple[T, T | None]:
    """One ``optax.sgd`` update and ``optax.apply_updates``, without mutating its inputs.

    Args:
        param: the parameters θ (an array or a pytree of arrays).
        grad: their gradients.
        trace: the trace t, or None for zeros.
        learning_rate: α (a number; a schedule's value for this step).
        momentum: μ, or None for no trace at all (``momentum=0.0`` keeps one).
        nesterov: Nesterov's form of the update.
        jit: model the update compiled by ``jax.jit`` on CPU.
        native_float16: whether the CPU has native float16 arithmetic
            (AVX512-FP16), which XLA uses for float16 multiply-adds under
            ``jax.jit`` and for run-time conversions to float16; None asks the
            CPU this runs on. Only float16 reads it.
        out: ``(param_out, trace_out)``: arrays to write the results into
            (they may be the inputs themselves, an in-place step; either may
            be None for a new array), or None for new arrays.

    Returns:
        ``(param, trace)``; the trace is None when momentum is None.
    """
    alpha = number("learning_rate", learning_rate)
    if native_float16 is not None and not isinstance(native_float16, bool):
        raise TypeError(f"native_float16 must be a bool or None, got {describe(native_float16)}")
    mu = None if momentum is None else number("momentum", momentum)
    steps = []
    direction = "g"
    if mu is not None:
        steps.append(instr("t", "muladd", "mu", "t", "g", note="trace: g + decay * t"))
        if nesterov:
            steps.append(instr("d", "muladd", "mu", "t", "g", note="g + decay * new trace"))
            direction = "d"
        else:
            direction = "t"
    steps.append(
        instr("p", "muladd", "neg_lr", direction, "p", note="apply_updates: p + (-lr * update)")
    )
    # the learning rate arrives at run time (a schedule's float64 value); the
    # momentum is a Python constant, which jax.jit folds into the program
    # (one rounding) and eager JAX converts at run time. XLA converts float64
    # to float16 at run time through float32 (twice rounded), or directly
    # where the CPU has native float16 arithmetic.
    native = _native_float16() if native_float16 is None else native_float16
    run_time = ("storage",) if native else VIA_OPMATH
    hypers = {
        "neg_lr": Hyper(-alpha, run_time),
        "mu": Hyper(0.0 if mu is None else mu, ("storage",) if jit else run_time),
    }
    trees: dict[str, Any] = {"param": param, "grad": grad}
    inputs: tuple[str, ...] = ("p", "g")
    recipe = tuple(steps)
    if mu is not None and trace is not None:
        trees["trace"] = trace
        inputs += ("t",)
    elif mu is not None:  # optax.sgd's trace starts at zero
        recipe = (*from_zero("t"), *recipe)
        hypers["zero"] = ZERO
    outputs = ("p", "t" if mu is not None else None)
    fused = Program(recipe, _JIT, inputs, outputs, hypers)
    eager = fused._replace(rounding=_EAGER)

    def program(dtype: str) -> Program:
        if not jit:
            return eager
        return fused if native or dtype != "float16" else eager

    new_param, new_trace = run(trees, program, donated(out, "trace", mu is not None))
    return new_param, new_trace


def _keywords(h: Hypers) -> dict[str, object]:
    return {"learning_rate": h.lr, "momentum": h.momentum, "nesterov": h.nesterov}


def _native_here(dtype: str) -> bool:
    return dtype == "float16" and _native_float16()


def _not_native_here(dtype: str) -> bool:
    return not _native_here(dtype)


#: The variants pin native_float16, so that a vector does not depend on the CPU
#: that wrote it; the live suite checks, per dtype, the one this CPU runs.
CONVENTION = Convention(
    name="optax",
    function=sgd,
    roles=("param", "grad", "state"),
    state="trace",
    first_state="zeros",
    stores="b",
    keywords=_keywords,
    variants=(
        Variant("eager", {"jit": False, "native_float16": False}, REAL_FLOATS, _not_native_here),
        Variant("jit", {"jit": True, "native_float16": False}, REAL_FLOATS, _not_native_here),
        Variant(
            "eager-avx512fp16", {"jit": False, "native_float16": True}, ("float16",), _native_here
        ),
        Variant(
            "jit-avx512fp16", {"jit": True, "native_float16": True}, ("float16",), _native_here
        ),
    ),
    capabilities=Capabilities(momentum_none=True),
    requirement="optax jax",
)
