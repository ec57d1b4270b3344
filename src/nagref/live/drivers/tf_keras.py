"""The live driver of tf-keras's (Keras 2's) SGD on TensorFlow (CPU).

Variant ``sgd`` calls ``tf_keras.optimizers.SGD.apply_gradients`` eagerly
(its ``jit_compile`` is off: tf-keras turns it off where TensorFlow sees no
GPU); ``sgd-function`` calls it inside a ``tf.function``, as ``model.fit``
does; ``sgd-jit`` (and ``-avx512fp16``) sets the optimizer's ``jit_compile``
back to True after construction, so that its update step runs under XLA
(``_update_step_xla``), compiled afresh for each case, with XLA kept to AVX2
where ``native_float16`` is False on a CPU with AVX512-FP16 (a helper worker,
as the TensorFlow driver's). ``legacy`` runs ``tf_keras.optimizers.legacy.SGD``
eagerly, and ``raw_op`` calls ``tf.raw_ops.ResourceApplyKerasMomentum`` with
``tf.constant(x, dtype)`` hyperparameters; ``sgd-floatx64`` builds the new
optimizer under ``set_floatx("float64")``. A changing learning rate is
assigned to the optimizer (``optimizer.learning_rate = lr``) before each step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...conventions import lookup
from ..cases import Spec, arrays
from . import Run, Trajectory, described, per_step, xla_process


def start(variant: str | None) -> tuple[str, Run]:
    convention = lookup("tf_keras")
    limited, elsewhere = xla_process("tf_keras", variant)
    import tensorflow as tf
    import tf_keras

    def run(spec: Spec) -> Trajectory:
        if (handed := elsewhere(spec)) is not None:
            return handed
        options = convention.variant(spec.variant).options
        if options["optimizer"] == "raw_op":
            return _raw_op(tf, spec)
        return _optimizer(tf, tf_keras, spec, options)

    version = f"tf_keras {tf_keras.__version__} (tensorflow {tf.__version__})"
    return described(version, limited, "jit float16"), run


def _optimizer(tf: Any, tf_keras: Any, spec: Spec, options: Mapping[str, object]) -> Trajectory:
    param, grads = arrays(spec)
    var = tf.Variable(param.copy())
    momentum = spec.momentum or 0.0
    legacy = options["optimizer"] == "legacy"
    if legacy:
        opt = tf_keras.optimizers.legacy.SGD(
            learning_rate=spec.lr[0], momentum=momentum, nesterov=spec.nesterov
        )
    else:
        floatx = tf_keras.backend.floatx()
        tf_keras.backend.set_floatx(str(options.get("learning_rate_dtype", floatx)))
        try:  # the learning-rate variable takes floatx's dtype
            opt = tf_keras.optimizers.SGD(
                learning_rate=spec.lr[0],
                momentum=momentum,
                nesterov=spec.nesterov,
                weight_decay=spec.weight_decay,
            )
        finally:
            tf_keras.backend.set_floatx(floatx)
        opt.jit_compile = bool(options.get("jit_compile"))  # off here, without a GPU
        opt.build([var])

    def apply(g: Any) -> None:
        opt.apply_gradients([(g, var)])

    step = tf.function(apply) if options.get("tf_function") else apply
    out: Trajectory = []
    for lr, g in zip(spec.lr, per_step(grads), strict=True):
        opt.learning_rate = lr
        step(tf.constant(g))
        if legacy:
            slot = opt.get_slot(var, "momentum") if momentum > 0 else None
        else:
            slot = opt.momentums[0]
        out.append((var.numpy().copy(), None if slot is None else slot.numpy().copy()))
    return out


def _raw_op(tf: Any, spec: Spec) -> Trajectory:
    param, grads = arrays(spec)
    var = tf.Variable(param.copy())
    accum = tf.Variable(np.zeros_like(param))
    out: Trajectory = []
    for lr, g in zip(spec.lr, per_step(grads), strict=True):
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=var.handle, accum=accum.handle, lr=tf.constant(lr, dtype=spec.dtype),
            grad=tf.constant(g), momentum=tf.constant(spec.momentum or 0.0, dtype=spec.dtype),
            use_nesterov=spec.nesterov,
        )  # fmt: skip
        out.append((var.numpy().copy(), accum.numpy().copy()))
    return out
