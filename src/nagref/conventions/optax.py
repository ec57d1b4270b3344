r"""Optax's ``optax.sgd`` followed by ``optax.apply_updates``, bit for bit (Optax 0.2).

The recurrence (``optax/_src/alias.py``, ``transforms/_accumulation.py``
``trace``; lr sits outside the trace, which starts at zero):

.. math::
    t_k = g_k + \mu t_{k-1},\qquad
    u_k = -\alpha_k (g_k + \mu t_k) \text{ (nesterov) or } -\alpha_k t_k,\qquad
    \theta_k = \theta_{k-1} + u_k

Rounding and conversions are JAX's (:mod:`nagref.conventions._jax`; measured
against Optax 0.2.8 on JAX 0.10.2, CPU): eagerly, every operation rounds
separately; under ``jax.jit`` XLA contracts μ·t + g, μ·t + g (Nesterov) and
θ + (−α)·d into fused multiply-adds in float32 and float64, and in float16
only where the CPU has native float16 arithmetic (AVX512-FP16; see
:mod:`nagref._host`). bfloat16 is computed in float32 with each result
rounded to bfloat16, eager or jitted (measured: 0 differing elements of
457,380 each eagerly and under ``jax.jit``, a constant and a scheduled
learning rate). Subnormals of float32, float64 and bfloat16 are flushed.

Hyperparameters reach the 16-bit formats as XLA converts them, which
depends on where the value is converted (``learning_rate_form``; each
measured against Optax 0.2.8 on JAX 0.10.2 at values whose 16-bit rounding
differs once and through float32): at run time, on the host, or folded.
So:

* the momentum, a Python constant: at run time eagerly; on the host under
  ``jax.jit``, which folds it into the program;
* a schedule's float64 value (``"schedule"``, the default): at run time;
* a Python float given to ``optax.sgd`` (``"float"``): as the momentum;
* a schedule returning a Python float (``"float_schedule"``, such as
  ``optax.constant_schedule``): on the host, eagerly and under ``jax.jit``
  (``jnp.array(value, dtype)``);
* a schedule returning a float64 array that does not depend on the step
  count (``"array"``, ``lambda count: jnp.asarray(0.1)``): at run time
  eagerly, folded under ``jax.jit``.

A CPU without AVX512-FP16 is verified live on this one with XLA limited to
AVX2 (``XLA_FLAGS=--xla_cpu_max_isa=AVX2``), which reproduces the
trajectories recorded on such a CPU bit for bit (8 of 8 float16 recordings,
357 of whose elements differ when XLA uses AVX512-FP16).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from .._checks import describe
from .._dtypes import TABLE
from .._engine.ir import COMPUTE, Hyper, Program, Rounding, instr
from .._typing import ArrayTree
from . import _jax
from ._common import FLUSHED, ZERO, donated, from_zero, native_here, not_native_here, number, run
from ._registry import REAL_FLOATS, Capabilities, Convention, Hypers, Variant

__all__ = ["CONVENTION", "LEARNING_RATE_FORMS", "sgd"]

T = TypeVar("T", bound=ArrayTree)

#: How a learning rate can reach ``optax.sgd`` (see ``sgd``'s ``learning_rate_form``).
LEARNING_RATE_FORMS = ("schedule", "float", "float_schedule", "array")


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
    learning_rate_form: str = "schedule",
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
        learning_rate_form: how ``learning_rate`` reached ``optax.sgd``,
            which decides how it is converted to a 16-bit dtype (see the
            module's docstring): one of :data:`LEARNING_RATE_FORMS`.
            ``"schedule"``: a schedule computing a float64 array from the
            step count (Optax's schedules with ``jax_enable_x64``);
            ``"float"``: a Python float, ``optax.sgd(0.1)``;
            ``"float_schedule"``: a schedule returning a Python float
            (``optax.constant_schedule(0.1)``); ``"array"``: a schedule
            returning a float64 ``jnp`` array that does not depend on the
            count, which ``jax.jit`` folds. float32 and float64 parameters
            give the same bits whatever the form.
        out: ``(param_out, trace_out)``: arrays to write the results into
            (they may be the inputs themselves, an in-place step; either may
            be None for a new array), or None for new arrays.

    Returns:
        ``(param, trace)``; the trace is None when momentum is None.
    """
    alpha = number("learning_rate", learning_rate)
    native = _jax.native(native_float16)
    if not isinstance(jit, bool):
        raise TypeError(f"jit must be a bool, got {describe(jit)}")
    if learning_rate_form not in LEARNING_RATE_FORMS:
        raise ValueError(
            f"learning_rate_form must be one of {', '.join(LEARNING_RATE_FORMS)}, "
            f"got {describe(learning_rate_form)}"
        )
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
    # where each hyperparameter is converted to the dtype (module docstring)
    mu_at: _jax.Conversion = "host" if jit else "run_time"
    lr_at: _jax.Conversion = {
        "schedule": "run_time",
        "float": mu_at,
        "float_schedule": "host",
        "array": "folded" if jit else "run_time",
    }[learning_rate_form]

    def hypers(dtype: str) -> dict[str, Hyper]:
        return {
            "neg_lr": Hyper(-alpha, _jax.via(lr_at, dtype, native)),
            "mu": Hyper(0.0 if mu is None else mu, _jax.via(mu_at, dtype, native)),
        }

    trees: dict[str, Any] = {"param": param, "grad": grad}
    inputs: tuple[str, ...] = ("p", "g")
    recipe = tuple(steps)
    zero: dict[str, Hyper] = {}
    if mu is not None and trace is not None:
        trees["trace"] = trace
        inputs += ("t",)
    elif mu is not None:  # optax.sgd's trace starts at zero
        recipe = (*from_zero("t"), *recipe)
        zero["zero"] = ZERO
    outputs = ("p", "t" if mu is not None else None)

    def program(dtype: str) -> Program:
        update = Program(recipe, _jax.rounding(jit, dtype, native), inputs, outputs,
                         {**hypers(dtype), **zero})  # fmt: skip
        wide = accumulator_dtype
        if mu is not None and wide is not None and wide != dtype:
            return _accumulated(update, dtype, wide, jit)
        return update

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


def _state_dtype(options: Mapping[str, object], dtype: str) -> str:
    wide = options.get("accumulator_dtype")
    return dtype if wide is None else str(wide)


_HALVES = ("float16", "bfloat16")


def _form(form: str, *, jit: bool = True) -> dict[str, object]:
    return {"jit": jit, "native_float16": False, "learning_rate_form": form}


_TRACE32 = {"accumulator_dtype": "float32"}

#: The variants pin native_float16, so that a vector does not depend on the CPU
#: that wrote it; the live suite checks, per dtype, the one this CPU runs. The
#: ``*-float32-trace`` variants keep the trace of 16-bit parameters in float32;
#: ``*-float-lr``, ``*-float-schedule-lr`` and ``*-array-lr`` take the learning
#: rate in those forms (``learning_rate_form``), in the dtypes where it matters.
CONVENTION = Convention(
    name="optax",
    function=sgd,
    roles=("param", "grad", "state"),
    state="trace",
    first_state="zeros",
    stores="b",
    keywords=_keywords,
    variants=(
        Variant("eager", {"jit": False, "native_float16": False}, REAL_FLOATS, not_native_here),
        # cost 2: jax.jit compiles each case anew (its momentum is a constant of the program)
        Variant(
            "jit", {"jit": True, "native_float16": False}, REAL_FLOATS, not_native_here, cost=2
        ),
        Variant(
            "eager-avx512fp16", {"jit": False, "native_float16": True}, ("float16",), native_here
        ),
        Variant(
            "jit-avx512fp16",
            {"jit": True, "native_float16": True},
            ("float16",),
            native_here,
            cost=2,
        ),
        # the learning rate's other forms, where their bits differ from a schedule's
        # (a compilation per step under jax.jit, for a constant per step)
        Variant("jit-float-lr", _form("float"), ("float16",), not_native_here, cost=10),
        Variant(
            "eager-float-schedule-lr",
            _form("float_schedule", jit=False),
            ("float16",),
            not_native_here,
        ),
        Variant(
            "jit-float-schedule-lr",
            _form("float_schedule"),
            ("float16",),
            not_native_here,
            cost=10,
        ),
        Variant("jit-array-lr", _form("array"), _HALVES, not_native_here, cost=10),
        *(
            Variant(
                f"{mode}-float32-trace{suffix}",
                {"jit": mode == "jit", "native_float16": native, **_TRACE32},
                dtypes,
                live,
                cost=2 if mode == "jit" else 1,
            )
            for suffix, native, dtypes, live in (
                ("", False, _HALVES, not_native_here),
                ("-avx512fp16", True, ("float16",), native_here),
            )
            for mode in ("eager", "jit")
        ),
    ),
    capabilities=Capabilities(momentum_none=True),
    requirement="optax jax",
    state_dtype=_state_dtype,
)
