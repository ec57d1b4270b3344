r"""PaddlePaddle's ``paddle.optimizer.Momentum`` on CPU, bit for bit (Paddle 3.3).

The recurrence (``paddle/phi/kernels/impl/momentum_kernel_impl.h``,
``CPUDenseMomentumFunctor`` and ``CPUDenseUpdater``; lr sits outside the
velocity, which the optimizer's accumulator starts at zero):

.. math::
    g' &= \theta\lambda + g \quad\text{(L2 weight decay, or } g' = g\text{)}\\
    v_t &= v_{t-1}\mu + g',\qquad
    \theta_t = \theta_{t-1} - (g' + v_t\mu)\eta \text{ (use_nesterov) or }
    \theta_{t-1} - \eta v_t

``Momentum(weight_decay=λ)`` with a float or ``paddle.regularizer.L2Decay(λ)``
(or a parameter's own ``ParamAttr(regularizer=L2Decay(λ))``) fuses the decay
into the kernel as ``regularization_method="l2_decay"``,
``regularization_coeff=λ`` (``python/paddle/optimizer/momentum.py``);
``weight_decay=0.0`` is a decay by 0, so an infinite parameter still makes
θ·0 a NaN. The CPU kernel is one Eigen expression per line, each operation
rounded in the parameters' dtype: nothing is contracted, nothing flushed.
The momentum and the coefficient are ``float`` attributes of the op, so a
float64 parameter sees them rounded to float32 and widened; the learning
rate is a 0-d tensor of the (first) parameter's dtype, made from the Python
float and rounded once. Measured against Paddle 3.3.1 (the CPU wheel):
0 differing of 8.6 million elements, float32 and float64 (a third of the
cases aimed at subnormals; tensors up to 100,003 elements), where
contracting one multiply-add differs in 604 to 5,451 (of 66,776 float32
and 76,632 float64 elements), flushing subnormals in 91,926 of 404,616,
and μ or λ rounded straight to float64 in 83,971 and 87,760 of 205,626
float64 elements.

What the CPU kernel leaves out: ``rescale_grad`` (only the GPU kernel
multiplies the gradient by it) and ``multi_precision``: master weights are
made for float16 and bfloat16 parameters only, and Paddle registers the CPU
``momentum`` and ``merged_momentum`` kernels for float32 and float64 alone
(``paddle/phi/kernels/cpu/momentum_kernel.cc``), so 16-bit parameters are
refused (Paddle raises NotFound). ``use_multi_tensor=True`` (float32 only)
reaches the same CPU functor through ``merged_momentum``, with the same bits.
With ``use_nesterov`` the parameters hold the look-ahead point, as PyTorch's.
"""

from __future__ import annotations

from typing import TypeVar

from .._apply import apply
from .._checks import describe
from .._engine.ir import STORAGE, Hyper, Instr, Program, Rounding, instr
from .._typing import ArrayTree
from ._common import donated, number
from ._registry import Capabilities, Convention, Hypers, Variant

__all__ = ["CONVENTION", "DTYPES", "momentum"]

T = TypeVar("T", bound=ArrayTree)

#: the dtypes of Paddle's CPU ``momentum`` kernel, and who takes them (for the refusal)
DTYPES = ("float32", "float64")
_WHO = "Paddle's CPU momentum kernel (paddle/phi/kernels/cpu/momentum_kernel.cc) is registered for"

#: Eigen, one operation at a time in the parameters' dtype: no FMA, no flush to zero
_ROUNDING = Rounding(contract=False)
#: a ``float`` attribute of the op (mu, regularization_coeff), cast to the dtype
_ATTRIBUTE = ("float32", STORAGE)


def momentum(
    param: T,
    grad: T,
    velocity: T,
    *,
    learning_rate: float,
    momentum: float = 0.9,
    use_nesterov: bool = False,
    weight_decay: float | None = None,
    rescale_grad: float = 1.0,
    multi_precision: bool = False,
    out: tuple[T | None, T | None] | None = None,
) -> tuple[T, T]:
    """One step of ``paddle.optimizer.Momentum`` on CPU, without mutating its inputs.

    Args:
        param: the parameters θ (an array or a pytree of arrays), float32 or float64.
        grad: their gradients.
        velocity: the velocities v (zeros before the first step).
        learning_rate: η, rounded once to the parameters' dtype.
        momentum: μ, a float32 attribute (float64 parameters see it widened).
        use_nesterov: Nesterov's form of the update.
        weight_decay: λ of the L2 decay fused into the kernel (a float, or
            ``L2Decay(λ)``'s coefficient; a float32 attribute), or None for
            none. ``0.0`` is a decay by zero, not none.
        rescale_grad: accepted as Paddle accepts it; the CPU kernel ignores it.
        multi_precision: accepted as Paddle accepts it; it makes master weights
            only for 16-bit parameters, which the CPU kernel refuses.
        out: ``(param_out, velocity_out)``: arrays to write the results into
            (they may be the inputs themselves, an in-place step; either may
            be None for a new array), or None for new arrays.

    Returns:
        ``(param, velocity)``.
    """
    lr = number("learning_rate", learning_rate)
    mu = number("momentum", momentum)
    number("rescale_grad", rescale_grad)  # checked; the CPU kernel never reads it
    for name, flag in (("use_nesterov", use_nesterov), ("multi_precision", multi_precision)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {describe(flag)}")
    decay = None if weight_decay is None else number("weight_decay", weight_decay)
    hypers = {"lr": Hyper(lr, (STORAGE,)), "mu": Hyper(mu, _ATTRIBUTE)}
    if decay is not None:
        hypers["coeff"] = Hyper(decay, _ATTRIBUTE)
    program = Program(
        _recipe(use_nesterov, decay is not None), _ROUNDING, ("p", "g", "v"), ("p", "v"), hypers
    )
    new_param, new_velocity = apply(
        program,
        {"param": param, "grad": grad, "velocity": velocity},
        out=donated(out, "velocity", True),
        n_outputs=2,
        dtypes=(DTYPES, _WHO),
    )
    return new_param, new_velocity


def _recipe(use_nesterov: bool, decayed: bool) -> tuple[Instr, ...]:
    """``CPUDenseMomentumFunctor`` and ``CPUDenseUpdater``, one Eigen operation per line."""
    steps: list[Instr] = []
    g = "g"
    if decayed:
        g = "h"
        steps += [
            instr("t", "mul", "p", "coeff", note="param_vec * regularization_coeff"),
            instr("h", "add", "t", "g", note="... + grad_vec: the decayed grad"),
        ]
    steps += [
        instr("t", "mul", "v", "mu", note="velocity_vec * mu"),
        instr("v", "add", "t", g, note="velocity_out = ... + grad"),
    ]
    if use_nesterov:
        return (
            *steps,
            instr("t", "mul", "v", "mu", note="velocity_out_vec * mu"),
            instr("d", "add", g, "t", note="grad + ..."),
            instr("d", "mul", "d", "lr", note="(...) * lr"),
            instr("p", "sub", "p", "d", note="param_out = param_vec - ..."),
        )
    return (
        *steps,
        instr("d", "mul", "lr", "v", note="lr * velocity_out_vec"),
        instr("p", "sub", "p", "d", note="param_out = param_vec - ..."),
    )


def _keywords(h: Hypers) -> dict[str, object]:
    return {
        "learning_rate": h.lr,
        "momentum": h.momentum or 0.0,
        "use_nesterov": h.nesterov,
        "weight_decay": h.weight_decay,
    }


CONVENTION = Convention(
    name="paddle",
    function=momentum,
    roles=("param", "grad", "state"),
    state="velocity",
    first_state="zeros",
    stores="b",
    keywords=_keywords,
    variants=(Variant("momentum", {}, DTYPES),),
    capabilities=Capabilities(weight_decay=True),
    requirement="paddlepaddle",
)
