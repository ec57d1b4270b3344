"""The live driver of Keras 3's ``keras.optimizers.SGD``, one backend per process.

The variant's ``backend`` option picks the backend; a variant whose
``learning_rate_dtype`` is ``"float64"`` passes the learning rate as a
callable that returns the Python float (the value reaches the update as
float64 on the JAX and torch backends). On the torch backend, the variant's
``cpu_capability`` is set as ``ATEN_CPU_CAPABILITY`` before Keras imports
torch, and its ``threads`` (or a case's ``extra`` threads) as torch's
intra-op threads.

A ``jit`` variant compiles the step with XLA, once per case: on JAX,
``jax.jit(optimizer.stateless_apply)`` with the optimizer's variables
threaded through; on TensorFlow, ``tf.function(lambda g:
optimizer.apply(g, variables), jit_compile=True)``. A jit variant that pins
``native_float16=False`` runs, on a CPU with AVX512-FP16, with XLA kept to
AVX2 (``XLA_FLAGS=--xla_cpu_max_isa=AVX2``, set before the backend is
imported: a CPU without AVX512-FP16 as far as XLA's code is concerned); the
limit changes float16 only (float32, float64 and bfloat16 give the same
bits with and without it, measured in /work/measurements/compiled_keras).
A ``tf_function`` variant runs ``tf.function(lambda g: optimizer.apply(g,
variables))``, uncompiled, as ``model.fit`` does on TensorFlow (traced once per case).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..._host import native_float16
from ...conventions import lookup
from ..cases import Spec, arrays
from . import LIMIT, Run, Trajectory, limit_xla, per_step


def start(variant: str | None) -> tuple[str, Run]:
    if variant is None:
        raise ValueError("the Keras driver needs the backend (the variant)")
    options = lookup("keras").variant(variant).options
    backend = str(options["backend"])
    callable_lr = options.get("learning_rate_dtype") == "float64"
    jit = bool(options.get("jit", False))
    graph = jit or bool(options.get("tf_function", False))
    limited = jit and options.get("native_float16") is False and native_float16()
    if limited:
        limit_xla()
    os.environ["KERAS_BACKEND"] = backend
    capability = options.get("cpu_capability")
    if capability is not None:
        os.environ["ATEN_CPU_CAPABILITY"] = str(capability)
    jax: Any = None
    tf: Any = None
    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    elif backend == "tensorflow" and graph:
        import tensorflow

        tf = tensorflow
    import keras

    torch: Any = None
    if backend == "torch":
        import torch

        running = str(torch.backends.cpu.get_cpu_capability()).lower()
        if capability is not None and running != capability:
            raise RuntimeError(
                f"ATEN_CPU_CAPABILITY={capability} was set, but torch runs its {running} kernels"
            )

    def run(spec: Spec) -> Trajectory:
        if torch is not None:
            torch.set_num_threads(int({**options, **spec.extra}.get("threads", 1)))
        param, grads = arrays(spec)
        var = keras.Variable(param.copy(), dtype=spec.dtype)
        lr = spec.lr[0]
        opt = keras.optimizers.SGD(
            learning_rate=(lambda: lr) if callable_lr else lr,
            momentum=spec.momentum or 0.0,
            nesterov=spec.nesterov,
            weight_decay=spec.weight_decay,
        )
        opt.build([var])
        steps = [keras.ops.convert_to_tensor(g, dtype=spec.dtype) for g in per_step(grads)]
        if jit and backend == "jax":
            return _stateless(jax, opt, var, steps, momentum=bool(spec.momentum))
        apply = (lambda g: opt.apply(g, [var])) if tf is None else _function(tf, opt, var, jit)
        out: Trajectory = []
        for g in steps:
            apply([g])
            state = opt.momentums[0].value if spec.momentum else None
            value = keras.ops.convert_to_numpy(var.value).copy()
            out.append((value, None if state is None else keras.ops.convert_to_numpy(state).copy()))
        return out

    version = f"keras {keras.__version__} ({backend})"
    if jit:
        version += ", " + (f"XLA_FLAGS={LIMIT}" if limited else "XLA")
    elif graph:
        version += ", tf.function"
    return version, run


def _function(tf: Any, opt: Any, var: Any, jit: bool) -> Any:
    """``optimizer.apply`` under ``tf.function`` (``jit_compile``: compiled by XLA), one
    trace (and compilation) per case."""
    return tf.function(lambda g: opt.apply(g, [var]), jit_compile=jit)


def _stateless(jax: Any, opt: Any, var: Any, steps: list[Any], *, momentum: bool) -> Trajectory:
    """The steps through ``jax.jit(optimizer.stateless_apply)``, the variables threaded through."""
    names = [v.path for v in opt.variables]
    where = names.index(opt.momentums[0].path) if momentum else None
    state = [v.value for v in opt.variables]
    values = [var.value]
    step = jax.jit(opt.stateless_apply)
    out: Trajectory = []
    for g in steps:
        values, state = step(state, [g], values)
        velocity = None if where is None else np.asarray(state[where]).copy()
        out.append((np.asarray(values[0]).copy(), velocity))
    return out
