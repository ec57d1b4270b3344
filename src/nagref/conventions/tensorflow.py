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
Inside ``tf.function(jit_compile=True)`` XLA's own kernel runs instead
(``tensorflow/compiler/tf2xla/kernels/training_ops.cc``: ``accum * momentum
+ grad``; ``var - (grad * lr + accum * momentum * lr)`` or ``var - accum *
lr``), which its CPU backend contracts (``jit_compile=True``; measured
against TF 2.21: 0 differing values of 270,594, every dtype, with and
without AVX512-FP16, where the eager model differs in 7,404). Where lr and
momentum are constants of the compiled function, XLA folds μ·η
(``folded=True``: 0 of 238,800; the unfolded model differs in 449 of
103,992, the eager one in 7,105). bfloat16 keeps the eager rounding.
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

from .._engine.ir import STORAGE, VIA_HOST, VIA_OPMATH, Hyper, Instr, Program, Rounding, instr
from .._host import native_float16 as _native_float16
from .._typing import ArrayTree
from ._common import FLUSHED, IN_OPMATH, donated, native_here, not_native_here, number, run
from ._registry import REAL_FLOATS, Capabilities, Convention, Hypers, Variant

__all__ = ["CONVENTION", "apply_momentum"]

T = TypeVar("T", bound=ArrayTree)

_ROUNDING = Rounding(contract=False, compute=IN_OPMATH, flush=FLUSHED)
#: XLA's (``jit_compile=True``): contracted, in the dtype itself (native float16 too)
_JIT = Rounding(contract=True, flush=FLUSHED)


def apply_momentum(
    var: T,
    accum: T,
    grad: T,
    *,
    lr: float,
    momentum: float,
    use_nesterov: bool = False,
    v1_optimizer: bool = False,
    jit_compile: bool = False,
    folded: bool = False,
    native_float16: bool | None = None,
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
        jit_compile: model the op inside ``tf.function(jit_compile=True)``:
            XLA's kernel (``tf2xla/kernels/training_ops.cc``) contracted,
            a′ = fma(a, μ, g), θ − fma(g, η, fl(fl(a′μ)η)) (use_nesterov) or
            fma(−a′, η, θ); bfloat16 as eagerly; float16 so only with native
            float16 arithmetic, else each operation rounded to float16.
        folded: with ``jit_compile``, ``lr`` and ``momentum`` are constants of the
            compiled function (captured, not its arguments): XLA folds them,
            θ − fma(g, η, fl(a′·fl(μη))) under use_nesterov, and tracing made
            them as NumPy converts (float16 rounded once, not through float32).
        native_float16: whether XLA has native float16 arithmetic
            (AVX512-FP16); None: this CPU's.
        out: ``(var_out, accum_out)``: arrays to write the results into
            (they may be the inputs themselves, an in-place step; either may
            be None for a new array), or None for new arrays.

    Returns:
        ``(var, accum)``.
    """
    for name, flag in (("v1_optimizer", v1_optimizer), ("jit_compile", jit_compile),
                       ("folded", folded)):  # fmt: skip
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {flag!r}")
    if native_float16 is not None and not isinstance(native_float16, bool):
        raise TypeError(f"native_float16 must be a bool or None, got {native_float16!r}")
    if folded and not jit_compile:
        raise ValueError("folded=True needs jit_compile=True: only XLA folds the constants")
    if jit_compile and v1_optimizer:
        raise NotImplementedError(
            "jit_compile=True with v1_optimizer=True is not modelled (not measured); "
            "the raw op under jit_compile is"
        )
    # as tf.constant(x, dtype) makes them (Eigen's half rounds through float), or
    # the v1 optimizer's float32 tensors, cast to the variable's dtype
    # a constant traced into the function is NumPy's (VIA_HOST: float16 rounded once)
    via = ("float32", STORAGE) if v1_optimizer else (VIA_HOST if folded else VIA_OPMATH)
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

    eager = Program(tuple(steps), _ROUNDING, ("p", "a", "g"), ("p", "a"), hypers)
    native = _native_float16() if native_float16 is None else native_float16

    def program(dtype: str) -> Program:
        if not jit_compile or dtype == "bfloat16":  # XLA keeps bfloat16's round trips
            return eager
        rounding = _ROUNDING if dtype == "float16" and not native else _JIT
        return Program(_jit_recipe(use_nesterov, folded), rounding, eager.inputs, eager.outputs, {
            **hypers, "neg_lr": Hyper(-hypers["lr"].value, via)})  # fmt: skip

    new_var, new_accum = run(
        {"var": var, "accum": accum, "grad": grad},
        program,
        donated(out, "accum", True),
    )
    return new_var, new_accum


def _jit_recipe(use_nesterov: bool, folded: bool) -> tuple[Instr, ...]:
    """XLA's ``ResourceApplyMomentum`` (``accum * momentum + grad``; ``var - (grad * lr +
    accum * momentum * lr)`` or ``var - accum * lr``) as its CPU backend contracts it;
    ``folded``: with ``momentum * lr`` folded, the two being constants."""
    steps = [instr("a", "muladd", "a", "mu", "g", note="accum * momentum + grad, fused")]
    if use_nesterov:
        scaled = (
            (instr("c", "mul", "mu", "lr", note="momentum * lr, folded"),
             instr("y", "mul", "a", "c", note="accum * (momentum * lr)"))
            if folded
            else (instr("y", "mul", "a", "mu", note="accum * momentum"),
                  instr("y", "mul", "y", "lr", note="... * lr"))
        )  # fmt: skip
        return (
            *steps,
            *scaled,
            instr("x", "muladd", "g", "lr", "y", note="grad * lr + that, fused"),
            instr("p", "sub", "p", "x", note="var - that"),
        )
    return (*steps, instr("p", "muladd", "a", "neg_lr", "p", note="var - accum * lr, fused"))


def _keywords(h: Hypers) -> dict[str, object]:
    return {"lr": h.lr, "momentum": h.momentum or 0.0, "use_nesterov": h.nesterov}


#: a folded learning rate is one constant of the compiled function
_CONSTANT_LR = Capabilities(changing_lr=False)

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
        # the raw op in tf.function(jit_compile=True), compiled per case; float16 as on
        # a CPU without AVX512-FP16 (XLA kept to AVX2 here), or with it (-avx512fp16)
        Variant(
            "apply_momentum-jit",
            {"v1_optimizer": False, "jit_compile": True, "native_float16": False},
            REAL_FLOATS,
            not_native_here,
            cost=10,
        ),
        Variant(
            "apply_momentum-jit-avx512fp16",
            {"v1_optimizer": False, "jit_compile": True, "native_float16": True},
            ("float16",),
            native_here,
            cost=10,
        ),
        # lr and momentum captured by the compiled function: XLA folds them
        Variant(
            "apply_momentum-jit-folded",
            {"v1_optimizer": False, "jit_compile": True, "folded": True, "native_float16": False},
            REAL_FLOATS,
            not_native_here,
            cost=10,
            capabilities=_CONSTANT_LR,
        ),
        Variant(
            "apply_momentum-jit-folded-avx512fp16",
            {"v1_optimizer": False, "jit_compile": True, "folded": True, "native_float16": True},
            ("float16",),
            native_here,
            cost=10,
            capabilities=_CONSTANT_LR,
        ),
    ),
    capabilities=Capabilities(),
    requirement="tensorflow-cpu",
)
