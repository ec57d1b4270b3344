"""The live driver of TensorFlow's ``ResourceApplyMomentum`` kernel (CPU).

Variant ``apply_momentum`` calls the raw op with ``tf.constant(x, dtype)``
hyperparameters; ``momentum_optimizer_v1`` runs
``tf.compat.v1.train.MomentumOptimizer`` (eagerly), its learning rate a
callable that returns each step's Python float; ``apply_momentum-jit`` (and
``-avx512fp16``) calls the raw op inside ``tf.function(jit_compile=True)``,
compiled afresh for each case (``-folded``: lr and momentum constants of the
function, so the learning rate cannot change), with XLA kept to AVX2 where
``native_float16`` is False on a CPU with AVX512-FP16 (a helper worker, as the Optax driver's).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...conventions import lookup
from ..cases import Spec, arrays
from . import Run, Trajectory, avx2_helper, described, for_helper, keep_to_avx2, per_step


def start(variant: str | None) -> tuple[str, Run]:
    convention = lookup("tensorflow")
    # a helper (below), started for a variant without native float16 on a CPU with it
    limited = keep_to_avx2("tensorflow", variant)
    import tensorflow as tf

    helper = avx2_helper("tensorflow")

    def run(spec: Spec) -> Trajectory:
        if spec.variant == "momentum_optimizer_v1":
            return _run_v1(tf, spec)
        options = convention.variant(spec.variant).options
        jit, folded = bool(options.get("jit_compile")), bool(options.get("folded"))
        if for_helper(options, spec, limited):
            return helper(spec)
        param, grads = arrays(spec)
        var = tf.Variable(param.copy())
        accum = tf.Variable(np.zeros_like(param))

        def apply(lr: Any, g: Any, momentum: Any) -> None:
            if folded:  # the compiled function's own constants, not its arguments
                lr = tf.constant(spec.lr[0], dtype=spec.dtype)
                momentum = tf.constant(spec.momentum or 0.0, dtype=spec.dtype)
            tf.raw_ops.ResourceApplyMomentum(
                var=var.handle, accum=accum.handle, lr=lr, grad=g, momentum=momentum,
                use_nesterov=spec.nesterov,
            )  # fmt: skip

        step = tf.function(apply, jit_compile=True) if jit else apply
        out: Trajectory = []
        for lr, g in zip(spec.lr, per_step(grads), strict=True):
            momentum = tf.constant(spec.momentum or 0.0, dtype=spec.dtype)
            step(tf.constant(lr, dtype=spec.dtype), tf.constant(g), momentum)
            out.append((var.numpy().copy(), accum.numpy().copy()))
        return out

    return described(f"tensorflow {tf.__version__}", limited, "jit float16"), run


def _run_v1(tf: Any, spec: Spec) -> Trajectory:
    param, grads = arrays(spec)
    var = tf.Variable(param.copy())
    lrs = iter(spec.lr)
    optimizer = tf.compat.v1.train.MomentumOptimizer(
        learning_rate=lambda: next(lrs),  # called once per apply_gradients
        momentum=spec.momentum or 0.0,
        use_nesterov=spec.nesterov,
    )
    out: Trajectory = []
    for g in per_step(grads):
        optimizer.apply_gradients([(tf.constant(g), var)])
        accum = optimizer.get_slot(var, "momentum")
        out.append((var.numpy().copy(), accum.numpy().copy()))
    return out
