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
rounds separately; see :mod:`nagref._host`). bfloat16 is computed in
float32 with each result rounded to bfloat16, eager or jitted: XLA keeps
every bfloat16 round trip and contracts nothing across one (measured: 0
differing elements of 457,380 each eagerly and under ``jax.jit``, a constant
and a scheduled learning rate). JAX on CPU flushes float32, float64 and bfloat16 subnormals
to zero (bfloat16's in float32, before the rounding), eager or jitted.

Hyperparameters reach the 16-bit formats as XLA converts them.
``learning_rate`` is modelled as a schedule's value, a float64 array (JAX
with x64) converted at run time: XLA converts float64 to float16 and
bfloat16 through float32, rounding twice, except to float16 on a CPU with
native float16 arithmetic, where it converts directly. The momentum is a
Python constant: eager JAX converts it at run time, while ``jax.jit`` folds
it into the program as JAX converts it on the host: rounded once, except
bfloat16, which ``ml_dtypes`` reaches through float32. (A
constant learning rate under ``jax.jit`` is folded too; in float16 that
rounds it once, which this function does not model.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from .._checks import describe
from .._dtypes import TABLE
from .._engine.ir import COMPUTE, VIA_HOST, VIA_OPMATH, Hyper, Program, Rounding, instr
from .._host import native_float16 as _native_float16
from .._typing import ArrayTree
from ._common import FLUSHED, IN_OPMATH, ZERO, donated, from_zero, number, run
from ._registry import REAL_FLOATS, Capabilities, Convention, Hypers, Variant

__all__ = ["CONVENTION", "sgd"]

T = TypeVar("T", bound=ArrayTree)

_EAGER = Rounding(contract=False, compute=IN_OPMATH, flush=FLUSHED)
_JIT = Rounding(contract=True, flush=FLUSHED)


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
    accumulator_dtype: str | None = None,
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
        accumulator_dtype: ``optax.sgd``'s ``accumulator_dtype``, by name:
            the dtype the trace is kept in (None: the parameters'). A dtype
            wider than the parameters' (float32 for bfloat16 or float16
            parameters) makes the whole update float32 arithmetic, with only
            the new parameters rounded to their dtype; the trace given and
            returned has that dtype.
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
    if accumulator_dtype is not None and accumulator_dtype not in REAL_FLOATS:
        raise ValueError(
            f"accumulator_dtype must be None or one of {', '.join(REAL_FLOATS)}, "
            f"got {accumulator_dtype!r}"
        )
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
        # folded under jax.jit as JAX converts a weakly typed Python scalar:
        # on the host (bfloat16 through float32, as ml_dtypes does)
        "mu": Hyper(0.0 if mu is None else mu, VIA_HOST if jit else run_time),
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
        wide = accumulator_dtype
        if mu is not None and wide is not None and wide != dtype:
            return _accumulated(fused, dtype, wide, jit)
        if not jit:
            return eager
        # XLA keeps every round trip through a 16-bit format (it contracts
        # float16 only where the CPU has native float16 arithmetic)
        if dtype in IN_OPMATH and not (native and dtype == "float16"):
            return eager
        return fused

    own = accumulator_dtype if mu is not None else None
    fixed = {} if own is None else {"trace": own, "out[1]": own}
    new_param, new_trace = run(trees, program, donated(out, "trace", mu is not None), fixed)
    return new_param, new_trace


def _accumulated(program: Program, dtype: str, wide: str, jit: bool) -> Program:
    """The update with its trace kept in ``wide``, for parameters of ``dtype``.

    JAX promotes the trace's arithmetic (``g + decay * t``, ``-lr * u``,
    ``p + u``) to the wider dtype; the Python momentum and the schedule's
    learning rate are rounded once to it, and only the new parameters are
    rounded back (``apply_updates``' ``astype``). Measured against Optax
    0.2.8 with a float32 trace of bfloat16 and float16 parameters, eager and
    jitted: 0 differing elements of 457,380 each.
    """
    if not _widens(dtype, wide):
        raise NotImplementedError(
            f"accumulator_dtype={wide!r} with {dtype} parameters is not modelled: JAX "
            f"computes the trace's update in the promotion of {dtype} and {wide}, which is "
            f"neither; nagref models accumulators wider than the parameters"
        )
    rounding = Rounding(
        contract=jit,
        compute={dtype: wide},
        result={dtype: wide},
        flush=frozenset({dtype} if wide in FLUSHED else ()),
    )
    hypers = {**program.hypers, "neg_lr": Hyper(program.hypers["neg_lr"].value, (COMPUTE,))}
    hypers["mu"] = Hyper(program.hypers["mu"].value, (COMPUTE,))
    if "zero" in hypers:
        hypers["zero"] = Hyper(0.0, (COMPUTE,))
    return program._replace(rounding=rounding, hypers=hypers, stored={"t": wide})


def _widens(dtype: str, wide: str) -> bool:
    """Whether ``wide`` holds every number of ``dtype`` and more (JAX promotes to it)."""
    a, b = TABLE[dtype], TABLE[wide]
    return (
        b.precision > a.precision
        and b.min_exponent <= a.min_exponent
        and b.max_exponent >= a.max_exponent
    )


def _keywords(h: Hypers) -> dict[str, object]:
    return {"learning_rate": h.lr, "momentum": h.momentum, "nesterov": h.nesterov}


def _native_here(dtype: str) -> bool:
    return dtype == "float16" and _native_float16()


def _not_native_here(dtype: str) -> bool:
    return not _native_here(dtype)


def _state_dtype(options: Mapping[str, object], dtype: str) -> str:
    wide = options.get("accumulator_dtype")
    return dtype if wide is None else str(wide)


_HALVES = ("float16", "bfloat16")
_TRACE32 = {"accumulator_dtype": "float32"}

#: The variants pin native_float16, so that a vector does not depend on the CPU
#: that wrote it; the live suite checks, per dtype, the one this CPU runs. The
#: ``*-float32-trace`` variants keep the trace of 16-bit parameters in float32.
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
        *(
            Variant(
                f"{mode}-float32-trace{suffix}",
                {"jit": mode == "jit", "native_float16": native, **_TRACE32},
                dtypes,
                live,
            )
            for suffix, native, dtypes, live in (
                ("", False, _HALVES, _not_native_here),
                ("-avx512fp16", True, ("float16",), _native_here),
            )
            for mode in ("eager", "jit")
        ),
    ),
    capabilities=Capabilities(momentum_none=True),
    requirement="optax jax",
    state_dtype=_state_dtype,
)
