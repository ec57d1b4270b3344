"""The live driver of TensorFlow's ``ResourceApplyMomentum`` kernel (CPU)."""

from __future__ import annotations

import numpy as np

from ..cases import Spec, arrays
from . import Run, Trajectory, per_step


def start(variant: str | None) -> tuple[str, Run]:
    import tensorflow as tf

    def run(spec: Spec) -> Trajectory:
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
