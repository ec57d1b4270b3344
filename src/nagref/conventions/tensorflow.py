r"""TensorFlow's ``ApplyMomentum`` / ``ResourceApplyMomentum`` kernel, bit for bit (TF 2.21).

The recurrence (``tensorflow/core/kernels/training_ops.cc``; lr sits
outside the accumulator, which the optimizer starts at zero):

.. math::
    a_t = \mu a_{t-1} + g_t,\qquad
    \theta_t = \theta_{t-1} - (g_t\eta + (a_t\mu)\eta) \text{ (use_nesterov) or }
    \theta_{t-1} - a_t\eta

Every operation of the CPU functor (an Eigen expression) rounds separately,
in the variable's dtype; ``lr`` and ``momentum`` are scalars of that dtype,
made as ``tf.constant(x, dtype)`` makes them (float16 and bfloat16 through
float32, so rounded twice). Eigen computes bfloat16 in float32 and rounds
each result to bfloat16 (measured against TF 2.21: 0 differing elements of
653,400, ApplyMomentum, ResourceApplyMomentum and the v1 optimizer).
TensorFlow on CPU flushes float32, float64 and bfloat16 subnormals to zero,
bfloat16's in float32, before the rounding to bfloat16. With
``use_nesterov`` the variable holds the look-ahead point (Bengio et al. 2012).

``tf.compat.v1.train.MomentumOptimizer(learning_rate, momentum)`` runs the
same kernel, but makes its Python-float ``learning_rate`` and ``momentum``
float32 tensors and casts them to the variable's dtype
(``tensorflow/python/training/momentum.py``, ``_prepare`` and
``_apply_dense``): for float64 variables η and μ are float32 numbers, rounded
once to float32 and then widened exactly (``v1_optimizer=True``; measured
against TF 2.21: with η and μ rounded straight to float64, every float64
step differs).
"""

from __future__ import annotations

from typing import TypeVar

from .._engine.ir import STORAGE, VIA_OPMATH, Hyper, Program, Rounding, instr
from .._typing import ArrayTree
from ._common import FLUSHED, IN_OPMATH, donated, number, run
from ._registry import Capabilities, Convention, Hypers, Variant

__all__ = ["CONVENTION", "apply_momentum"]

T = TypeVar("T", bound=ArrayTree)

_ROUNDING = Rounding(contract=False, compute=IN_OPMATH, flush=FLUSHED)


def apply_momentum(
    var: T,
    accum: T,
    grad: T,
    *,
    lr: float,
    momentum: float,
    use_nesterov: bool = False,
    v1_optimizer: bool = False,
    out: tuple[T | None, T | None] | None = None,
) -> tuple[T, T]:
    """One ``ApplyMomentum`` on CPU, without mutating its inputs.

    Args:
        var: the variables θ (an array or a pytree of arrays).
        accum: the accumulators a (zeros before the first step).
        grad: the gradients.
        lr, momentum, use_nesterov: the kernel's inputs and attribute.
        v1_optimizer: model ``tf.compat.v1.train.MomentumOptimizer``, which
            passes ``lr`` and ``momentum`` as float32 tensors cast to the
            variable's dtype (``False``: ``tf.constant(x, dtype)``, the raw op).
        out: ``(var_out, accum_out)``: arrays to write the results into
            (they may be the inputs themselves, an in-place step; either may
            be None for a new array), or None for new arrays.

    Returns:
        ``(var, accum)``.
    """
    if not isinstance(v1_optimizer, bool):
        raise TypeError(f"v1_optimizer must be a bool, got {v1_optimizer!r}")
    # as tf.constant(x, dtype) makes them (Eigen's half rounds through float), or
    # the v1 optimizer's float32 tensors, cast to the variable's dtype
    via = ("float32", STORAGE) if v1_optimizer else VIA_OPMATH
    hypers = {
        "lr": Hyper(number("lr", lr), via),
        "mu": Hyper(number("momentum", momentum), via),
    }
    steps = [instr("a", "muladd", "a", "mu", "g", note="accum = accum * momentum + grad")]
    if use_nesterov:
        steps += [
            instr("x", "mul", "g", "lr", note="grad * lr"),
            instr("y", "mul", "a", "mu", note="accum * momentum"),
            instr("y", "mul", "y", "lr", note="... * lr"),
            instr("x", "add", "x", "y", note="grad * lr + accum * momentum * lr"),
            instr("p", "sub", "p", "x", note="var -= that"),
        ]
    else:
        steps += [
            instr("x", "mul", "a", "lr", note="accum * lr"),
            instr("p", "sub", "p", "x", note="var -= accum * lr"),
        ]

    program = Program(tuple(steps), _ROUNDING, ("p", "a", "g"), ("p", "a"), hypers)
    new_var, new_accum = run(
        {"var": var, "accum": accum, "grad": grad},
        program,
        donated(out, "accum", True),
    )
    return new_var, new_accum


def _keywords(h: Hypers) -> dict[str, object]:
    return {"lr": h.lr, "momentum": h.momentum or 0.0, "use_nesterov": h.nesterov}


CONVENTION = Convention(
    name="tensorflow",
    function=apply_momentum,
    roles=("param", "state", "grad"),
    state="accum",
    first_state="zeros",
    stores="b",
    keywords=_keywords,
    variants=(
        Variant("apply_momentum", {"v1_optimizer": False}),
        Variant("momentum_optimizer_v1", {"v1_optimizer": True}),
    ),
    capabilities=Capabilities(),
    requirement="tensorflow-cpu",
)
