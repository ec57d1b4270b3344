r"""MLX's ``mlx.optimizers.SGD``, bit for bit (MLX 0.32, CPU).

The recurrence (``mlx/optimizers/optimizers.py``, ``SGD.apply_single``, in
its notation: λ the learning rate, μ the momentum, τ the dampening; the
velocity ``v`` starts at zeros, ``init_single``'s ``mx.zeros_like``):

.. math::
    g_t \leftarrow g_t + \mathrm{wd}\, w_t \text{ (weight_decay} \ne 0),\qquad
    v_{t+1} = \mu v_t + (1 - \tau) g_t \text{ (}\tau > 0\text{) or } \mu v_t + g_t,

.. math::
    w_{t+1} = w_t - \lambda (g_t + \mu v_{t+1}) \text{ (nesterov) or } w_t - \lambda v_{t+1},

and w_{t+1} = w_t − λ g_t, the velocity untouched, when μ ≤ 0. Every
operation is its own MLX primitive and rounds on its own, in the
parameter's dtype: the CPU backend computes float16 and bfloat16 in float32
and rounds each result, and contracts nothing. Under ``mx.compile`` the
whole step is one fused elementwise kernel, which MLX writes as C++ and
builds with ``g++ -std=c++17 -O3`` for the baseline x86-64 instruction set
(no FMA instructions): every intermediate is still a value of the dtype,
so the bits are the eager ones (``compiled=True`` says so, and the live
suite checks it). Nothing is flushed: subnormals are kept in every dtype.

The learning rate is a float32 array (``mx.array(learning_rate)``) cast to
the gradient's dtype at each step (``astype``): float16 and bfloat16 round
it twice, through float32, and for float64 parameters it is a float32
number. A Python float meeting an array (``momentum * v``, ``(1 -
dampening) * gradient``, ``weight_decay * parameter``) is a weak scalar of
the array's dtype, made through float32 for float16 and bfloat16 (rounded
twice) and directly for float32 and float64. Because the velocity starts
from zeros, not from a copy of the first gradient, a −0 gradient gives a +0
velocity. Measured against MLX 0.32.4 (``mlx[cpu]``, x86-64 with AVX-512
and AVX512-FP16): 0 differing elements (docs/conventions.md gives the
counts), eagerly and compiled, every dtype.
"""

from __future__ import annotations

from typing import Any, TypeVar

from .._checks import describe
from .._engine.ir import STORAGE, VIA_OPMATH, Hyper, Instr, Program, Rounding, instr
from .._host import x86_64
from .._typing import ArrayTree
from ._common import IN_OPMATH, ZERO, donated, from_zero, number, run
from ._registry import REAL_FLOATS, Capabilities, Convention, Hypers, Variant

__all__ = ["CONVENTION", "sgd"]

T = TypeVar("T", bound=ArrayTree)

#: MLX's CPU primitives: each operation rounded, 16-bit formats in float32, no flushing
_ROUNDING = Rounding(contract=False, compute=IN_OPMATH)


def sgd(
    parameter: T,
    gradient: T,
    v: T | None,
    *,
    learning_rate: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    compiled: bool = False,
    out: tuple[T | None, T | None] | None = None,
) -> tuple[T, T]:
    """One ``mlx.optimizers.SGD`` step (``apply_single``) on CPU, without mutating its inputs.

    Args:
        parameter: the parameters w (an array or a pytree of arrays).
        gradient: their gradients.
        v: the velocities (the optimizer's ``state["v"]``), or None for the
            zeros ``init_single`` starts them at.
        learning_rate, momentum, weight_decay, dampening, nesterov: as in
            ``mlx.optimizers.SGD`` (the learning rate: this step's value, a
            Python float or a schedule's float32 value), validated with its
            message.
        compiled: model the step under ``mx.compile`` (one fused kernel,
            built for x86-64): the same bits as eagerly (see the module
            docstring); the option names the code path the live suite runs.
        out: ``(parameter_out, v_out)``: arrays to write the results into
            (they may be the inputs themselves, an in-place step; either may
            be None for a new array), or None for new arrays.

    Returns:
        ``(parameter, v)``; with momentum ≤ 0 the velocity comes back as it
        was given (zeros for None), as MLX leaves its state.
    """
    lr = number("learning_rate", learning_rate)
    mu = number("momentum", momentum)
    wd = number("weight_decay", weight_decay)
    tau = number("dampening", dampening)
    for name, flag in (("nesterov", nesterov), ("compiled", compiled)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {describe(flag)}")
    if nesterov and (mu <= 0 or tau != 0):
        raise ValueError(
            "Nesterov momentum requires a momentum and zero dampening "
            f"(got momentum={mu!r}, dampening={tau!r})"
        )
    hypers = {
        # mx.array(learning_rate) is float32; .astype(gradient.dtype) at each step
        "lr": Hyper(lr, ("float32", STORAGE)),
        # Python floats as weak scalars of the array's dtype (16-bit: through float32)
        "mu": Hyper(mu, VIA_OPMATH),
        "wd": Hyper(wd, VIA_OPMATH),
        "keep": Hyper(1 - tau, VIA_OPMATH),
    }
    recipe = _recipe(mu, wd, tau, nesterov)
    trees: dict[str, Any] = {"parameter": parameter, "gradient": gradient}
    inputs: tuple[str, ...] = ("p", "g")
    if v is not None:
        trees["v"] = v
        inputs += ("v",)
    else:  # init_single: mx.zeros_like(parameter)
        recipe = (*from_zero("v"), *recipe)
        hypers["zero"] = ZERO
    program = Program(recipe, _ROUNDING, inputs, ("p", "v"), hypers)
    new_parameter, new_v = run(trees, program, donated(out, "v", True))
    return new_parameter, new_v


def _recipe(mu: float, wd: float, tau: float, nesterov: bool) -> tuple[Instr, ...]:
    """``apply_single``'s operations, in its order, each an MLX primitive."""
    steps = []
    if wd != 0:
        steps += [
            instr("t", "mul", "wd", "p", note="weight_decay * parameter"),
            instr("g", "add", "g", "t", note="gradient = gradient + that"),
        ]
    direction = "g"
    if mu > 0:
        steps.append(instr("v", "mul", "mu", "v", note="v = momentum * state['v']"))
        if tau > 0:
            steps += [
                instr("k", "mul", "keep", "g", note="(1 - dampening) * gradient"),
                instr("v", "add", "v", "k", note="v += that"),
            ]
        else:
            steps.append(instr("v", "add", "v", "g", note="v += gradient"))
        direction = "v"
        if nesterov:
            steps += [
                instr("u", "mul", "mu", "v", note="momentum * v"),
                instr("u", "add", "g", "u", note="update = gradient + that"),
            ]
            direction = "u"
    else:  # a new array with the same values: MLX leaves state["v"] as it is
        steps.append(instr("v", "copy", "v", note="state['v'] untouched (momentum <= 0)"))
    return (
        *steps,
        instr("x", "mul", "lr", direction, note="learning_rate.astype(gradient.dtype) * update"),
        instr("p", "sub", "p", "x", note="parameter - that"),
    )


def _keywords(h: Hypers) -> dict[str, object]:
    return {
        "learning_rate": h.lr,
        "momentum": h.momentum or 0.0,
        "weight_decay": h.weight_decay or 0.0,
        "dampening": h.dampening,
        "nesterov": h.nesterov,
    }


def _x86_64(dtype: str) -> bool:
    """The compiled variant's ``live``: MLX's compiled kernel as built on x86-64 (no FMA)."""
    return x86_64()


CONVENTION = Convention(
    name="mlx",
    function=sgd,
    roles=("param", "grad", "state"),
    state="v",
    first_state="zeros",
    stores="b",
    keywords=_keywords,
    variants=(
        Variant("eager", {"compiled": False}),
        # mx.compile builds a kernel (g++) for each new momentum, weight decay and dampening
        Variant("compiled", {"compiled": True}, REAL_FLOATS, _x86_64, cost=10),
    ),
    capabilities=Capabilities(dampening=True, weight_decay=True),
    requirement="mlx[cpu]",
)
