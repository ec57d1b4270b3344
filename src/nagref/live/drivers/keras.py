"""The live driver of Keras 3's ``keras.optimizers.SGD``, one backend per process.

The variant's ``backend`` option picks the backend; a variant whose
``learning_rate_dtype`` is ``"float64"`` passes the learning rate as a
callable that returns the Python float (the value reaches the update as
float64 on the JAX and torch backends). On the torch backend, the variant's
``cpu_capability`` is set as ``ATEN_CPU_CAPABILITY`` before Keras imports
torch, and its ``threads`` (or a case's ``extra`` threads) as torch's
intra-op threads.
"""

from __future__ import annotations

import os
from typing import Any

from ...conventions import lookup
from ..cases import Spec, arrays
from . import Run, Trajectory, per_step


def start(variant: str | None) -> tuple[str, Run]:
    if variant is None:
        raise ValueError("the Keras driver needs the backend (the variant)")
    options = lookup("keras").variant(variant).options
    backend = str(options["backend"])
    callable_lr = options.get("learning_rate_dtype") == "float64"
    os.environ["KERAS_BACKEND"] = backend
    capability = options.get("cpu_capability")
    if capability is not None:
        os.environ["ATEN_CPU_CAPABILITY"] = str(capability)
    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
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
        out: Trajectory = []
        for g in per_step(grads):
            opt.apply([keras.ops.convert_to_tensor(g, dtype=spec.dtype)], [var])
            state = opt.momentums[0].value if spec.momentum else None
            value = keras.ops.convert_to_numpy(var.value).copy()
            out.append((value, None if state is None else keras.ops.convert_to_numpy(state).copy()))
        return out

    return f"keras {keras.__version__} ({backend})", run
