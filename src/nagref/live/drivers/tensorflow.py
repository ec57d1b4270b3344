"""The live driver of TensorFlow's ``ResourceApplyMomentum`` kernel (CPU).

Variant ``apply_momentum`` calls the raw op with ``tf.constant(x, dtype)``
hyperparameters; ``momentum_optimizer_v1`` runs
``tf.compat.v1.train.MomentumOptimizer`` (eagerly), its learning rate a
callable that returns each step's Python float.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..cases import Spec, arrays
from . import Run, Trajectory, per_step


def start(variant: str | None) -> tuple[str, Run]:
    import tensorflow as tf

    def run(spec: Spec) -> Trajectory:
        if spec.variant == "momentum_optimizer_v1":
            return _run_v1(tf, spec)
        param, grads = arrays(spec)
        var = tf.Variable(param.copy())
        accum = tf.Variable(np.zeros_like(param))
        out: Trajectory = []
        for lr, g in zip(spec.lr, per_step(grads), strict=True):
            tf.raw_ops.ResourceApplyMomentum(
                var=var.handle,
                accum=accum.handle,
                lr=tf.constant(lr, dtype=spec.dtype),
                grad=tf.constant(g),
                momentum=tf.constant(spec.momentum or 0.0, dtype=spec.dtype),
                use_nesterov=spec.nesterov,
            )
            out.append((var.numpy().copy(), accum.numpy().copy()))
        return out

    return f"tensorflow {tf.__version__}", run


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
