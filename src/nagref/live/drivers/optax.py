"""The live driver of ``optax.sgd`` + ``optax.apply_updates`` on JAX (CPU, float64 enabled).

The ``*-avx512fp16`` variants are the same code paths, on a CPU with native
float16 arithmetic: the driver runs what this machine runs. The
``*-float32-trace`` variants pass ``accumulator_dtype=jnp.float32``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...conventions import lookup
from ..cases import Spec, arrays
from . import Run, Trajectory, per_step


def start(variant: str | None) -> tuple[str, Run]:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    def run(spec: Spec) -> Trajectory:
        param, grads = arrays(spec)
        # a fixed length, so that jax.jit compiles once per shape, not per run length
        lrs = jnp.asarray(spec.lr + (0.0,) * (256 - len(spec.lr)), dtype=jnp.float64)
        wide = lookup("optax").variant(spec.variant).options.get("accumulator_dtype")
        opt = optax.sgd(
            lambda count: lrs[count],
            momentum=spec.momentum,
            nesterov=spec.nesterov,
            accumulator_dtype=None if wide is None else jnp.dtype(str(wide)),
        )

        def step(p: Any, g: Any, state: Any) -> Any:
            updates, state = opt.update(g, state, p)
            return optax.apply_updates(p, updates), state

        if spec.variant.startswith("jit"):
            step = jax.jit(step)
        p = jnp.asarray(param)
        state = opt.init(p)
        out: Trajectory = []
        for g in per_step(grads):
            p, state = step(p, jnp.asarray(g), state)
            trace = None if spec.momentum is None else np.asarray(state[0].trace).copy()
            out.append((np.asarray(p).copy(), trace))
        return out

    return f"optax {optax.__version__}, jax {jax.__version__}", run
