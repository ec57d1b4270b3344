r"""JAX's example optimizers, ``jax.example_libraries.optimizers``, bit for bit (JAX 0.10).

``momentum(step_size, mass)``, ``nesterov(step_size, mass)`` and, without a
``mass``, ``sgd(step_size)``, as their ``update(i, g, state)`` computes
(``jax/example_libraries/optimizers.py``; the velocity starts at
``jnp.zeros_like(x0)``, lr sits outside it):

.. math::
    v_i = \text{mass}\cdot v_{i-1} + g_i,\qquad
    x_i = x_{i-1} - \alpha_i v_i \text{ (momentum) or }
    x_{i-1} - \alpha_i(\text{mass}\cdot v_i + g_i) \text{ (nesterov)},

and ``x_i = x_{i-1} - α_i g_i`` for ``sgd``, where α_i = ``step_size(i)``.

Rounding and conversions are JAX's (:mod:`nagref.conventions._jax`): eagerly,
every operation rounds separately; under ``jax.jit`` XLA contracts
mass·v + g, mass·v + g (nesterov) and x − α·d (one rounding, as
x + (−α)·d) in float32 and float64, and float16 only with AVX512-FP16;
bfloat16 keeps its round trips; float32, float64 and bfloat16 subnormals
are flushed. ``mass``, a Python float, is converted at run time eagerly and
on the host under ``jax.jit``, which folds it; the step size as
``step_size_form`` says. Measured against JAX 0.10.2 with ``jax_enable_x64``
(0 differing elements of 517,000 over 1,920 random runs, eager and jitted,
constant and scheduled step sizes, every dtype, with XLA on AVX-512 with
AVX512-FP16 and kept to AVX2): these are the same operations, in the same
roundings, as ``optax.sgd`` + ``apply_updates`` with its learning rate
given as a float (``"constant"``) or a schedule (``"schedule"``).

A schedule that returns a strongly typed array wider than the parameters
(``piecewise_constant``'s ``jnp.array`` of float64 values with float32
parameters) makes JAX promote the update, and the parameters, to that
dtype: not modelled (the parameters keep their dtype here).
"""

from __future__ import annotations

from typing import TypeVar

from .._checks import describe
from .._engine.ir import Hyper, Program, instr
from .._typing import ArrayTree
from . import _jax
from ._common import ZERO, donated, from_zero, native_here, not_native_here, number, run
from ._registry import REAL_FLOATS, Capabilities, Convention, Hypers, Variant

__all__ = ["CONVENTION", "STEP_SIZE_FORMS", "update"]

T = TypeVar("T", bound=ArrayTree)

#: How ``step_size`` reaches the optimizer, and where it is converted under ``jax.jit``
#: (eagerly, a Python float meets the arrays at run time either way).
STEP_SIZE_FORMS: dict[str, _jax.Conversion] = {
    # a number (make_schedule's constant) or a schedule returning a Python float:
    # a weak constant that jax.jit folds on the host
    "constant": "host",
    # a schedule computing its value from the traced step index
    # (exponential_decay, inverse_time_decay, polynomial_decay): run time
    "schedule": "run_time",
}


def update(
    x: T,
    g: T,
    velocity: T | None,
    *,
    step_size: float,
    mass: float | None = None,
    nesterov: bool = False,
    jit: bool = False,
    step_size_form: str = "constant",
    native_float16: bool | None = None,
    out: tuple[T | None, T | None] | None = None,
) -> tuple[T, T | None]:
    """One ``update(i, g, state)`` of ``momentum``, ``nesterov`` or ``sgd``, without mutating.

    Args:
        x: the parameters (an array or a pytree of arrays).
        g: their gradients.
        velocity: the velocity, or None for ``init``'s zeros.
        step_size: this step's α = ``step_size(i)`` (a number).
        mass: the momentum coefficient, or None for ``sgd(step_size)``, which
            keeps no velocity (``mass=0.0`` keeps one).
        nesterov: ``nesterov(step_size, mass)`` rather than ``momentum``.
        jit: the update compiled by ``jax.jit`` (the step index traced).
        step_size_form: how ``step_size`` reached the optimizer, which
            decides its conversion to float16 under ``jax.jit``
            (:data:`STEP_SIZE_FORMS`): ``"constant"``, a number or a schedule
            returning a Python float; ``"schedule"``, a schedule computing
            its value from the step index.
        native_float16: whether the CPU has native float16 arithmetic
            (AVX512-FP16); None asks the CPU this runs on. Only float16 reads it.
        out: ``(x_out, velocity_out)``: arrays to write the results into
            (they may be the inputs themselves; either may be None for a new
            array), or None for new arrays.

    Returns:
        ``(x, velocity)``; the velocity is None for ``sgd`` (``mass=None``).
    """
    alpha = number("step_size", step_size)
    native = _jax.native(native_float16)
    for name, flag in (("nesterov", nesterov), ("jit", jit)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {describe(flag)}")
    if step_size_form not in STEP_SIZE_FORMS:
        raise ValueError(
            f"step_size_form must be one of {', '.join(STEP_SIZE_FORMS)}, "
            f"got {describe(step_size_form)}"
        )
    m = None if mass is None else number("mass", mass)
    if m is None and nesterov:
        raise ValueError("nesterov=True needs a mass: nesterov(step_size, mass)")
    steps = []
    direction = "g"
    if m is not None:
        steps.append(instr("v", "muladd", "mass", "v", "g", note="velocity = mass * velocity + g"))
        direction = "v"
        if nesterov:
            steps.append(instr("d", "muladd", "mass", "v", "g", note="mass * velocity + g"))
            direction = "d"
    steps.append(
        instr("x", "muladd", "neg_step", direction, "x", note="x = x - step_size(i) * that")
    )
    # where each hyperparameter is converted (module docstring)
    mass_at: _jax.Conversion = "host" if jit else "run_time"
    step_at = STEP_SIZE_FORMS[step_size_form] if jit else "run_time"

    trees: dict[str, object] = {"x": x, "g": g}
    inputs: tuple[str, ...] = ("x", "g")
    recipe = tuple(steps)
    zero: dict[str, Hyper] = {}
    if m is not None and velocity is not None:
        trees["velocity"] = velocity
        inputs += ("v",)
    elif m is not None:  # init: jnp.zeros_like(x0)
        recipe = (*from_zero("v"), *recipe)
        zero["zero"] = ZERO

    def program(dtype: str) -> Program:
        hypers = {
            "neg_step": Hyper(-alpha, _jax.via(step_at, dtype, native)),
            "mass": Hyper(0.0 if m is None else m, _jax.via(mass_at, dtype, native)),
            **zero,
        }
        outputs = ("x", "v" if m is not None else None)
        return Program(recipe, _jax.rounding(jit, dtype, native), inputs, outputs, hypers)

    new_x, new_velocity = run(trees, program, donated(out, "velocity", m is not None))
    return new_x, new_velocity


def _keywords(h: Hypers) -> dict[str, object]:
    return {"step_size": h.lr, "mass": h.momentum, "nesterov": h.nesterov}


def _options(*, jit: bool, native: bool, form: str = "constant") -> dict[str, object]:
    return {"jit": jit, "native_float16": native, "step_size_form": form}


#: a constant step size (or one computed from the step index, which the live driver
#: keeps equal at every step) is one compiled program per run
_ONE_STEP_SIZE = Capabilities(changing_lr=False, momentum_none=True)

#: The variants pin native_float16, so that a vector does not depend on the CPU
#: that wrote it (as Optax's); ``jit-schedule`` is the step size computed from the
#: traced step index, whose float16 conversion differs from a constant's without
#: AVX512-FP16 (with it, and in the other dtypes, the two give the same bits).
CONVENTION = Convention(
    name="jax_example_libraries",
    function=update,
    roles=("param", "grad", "state"),
    state="velocity",
    first_state="zeros",
    stores="b",
    keywords=_keywords,
    variants=(
        Variant("eager", _options(jit=False, native=False), REAL_FLOATS, not_native_here),
        Variant(
            "jit",
            _options(jit=True, native=False),
            REAL_FLOATS,
            not_native_here,
            cost=2,
            capabilities=_ONE_STEP_SIZE,
        ),
        Variant(
            "jit-schedule",
            _options(jit=True, native=False, form="schedule"),
            ("float16",),
            not_native_here,
            cost=2,
            capabilities=_ONE_STEP_SIZE,
        ),
        Variant("eager-avx512fp16", _options(jit=False, native=True), ("float16",), native_here),
        Variant(
            "jit-avx512fp16",
            _options(jit=True, native=True),
            ("float16",),
            native_here,
            cost=2,
            capabilities=_ONE_STEP_SIZE,
        ),
    ),
    capabilities=Capabilities(momentum_none=True),
    requirement="jax",
)
