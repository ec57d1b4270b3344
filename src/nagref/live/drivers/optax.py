"""The live driver of ``optax.sgd`` + ``optax.apply_updates`` on JAX (CPU, float64 enabled).

The ``*-avx512fp16`` variants are the same code paths, on a CPU with native
float16 arithmetic. A variant that pins ``native_float16=False`` runs its
float16 cases, on such a CPU, in a helper worker whose XLA is kept to AVX2
(``XLA_FLAGS=--xla_cpu_max_isa=AVX2``: a CPU without AVX512-FP16 as far as
XLA's code is concerned). The ``*-float32-trace`` variants pass
``accumulator_dtype=jnp.float32``. The learning rate reaches ``optax.sgd``
in the variant's ``learning_rate_form``: a schedule indexing a float64 array
by the step count (``"schedule"``), or, rebuilt and recompiled at each step
for that step's value, a Python float, a schedule returning one, or a
schedule returning a float64 ``jnp`` constant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...conventions import lookup
from ..cases import Spec, arrays
from . import Run, Trajectory, described, per_step, xla_process


def start(variant: str | None) -> tuple[str, Run]:
    convention = lookup("optax")
    limited, elsewhere = xla_process("optax", variant)
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    def run(spec: Spec) -> Trajectory:
        if (handed := elsewhere(spec)) is not None:
            return handed
        options = convention.variant(spec.variant).options
        param, grads = arrays(spec)
        wide = options.get("accumulator_dtype")
        form = options.get("learning_rate_form", "schedule")

        def sgd(learning_rate: Any) -> Any:
            return optax.sgd(
                learning_rate,
                momentum=spec.momentum,
                nesterov=spec.nesterov,
                accumulator_dtype=None if wide is None else jnp.dtype(str(wide)),
            )

        def stepper(opt: Any) -> Callable[..., Any]:
            def step(p: Any, g: Any, state: Any) -> Any:
                updates, state = opt.update(g, state, p)
                return optax.apply_updates(p, updates), state

            return jax.jit(step) if options.get("jit") else step

        def given(lr: float) -> Any:
            # the step's learning rate in the variant's form (one compilation per
            # step under jax.jit; the state's structure is the same in every form)
            if form == "float":
                return lr
            if form == "float_schedule":
                return lambda count: lr
            constant = jnp.asarray(lr, dtype=jnp.float64)
            return lambda count: constant

        # a fixed length, so that jax.jit compiles once per shape, not per run length
        lrs = jnp.asarray(spec.lr + (0.0,) * (256 - len(spec.lr)), dtype=jnp.float64)
        schedule = sgd(lambda count: lrs[count])
        scheduled = stepper(schedule)
        p = jnp.asarray(param)
        state = schedule.init(p)
        out: Trajectory = []
        for lr, g in zip(spec.lr, per_step(grads), strict=True):
            if form == "schedule":
                step = scheduled
            else:  # this step's optimizer, with the trace so far
                opt = sgd(given(lr))
                state = (state[0], *opt.init(p)[1:])
                step = stepper(opt)
            p, state = step(p, jnp.asarray(g), state)
            trace = None if spec.momentum is None else np.asarray(state[0].trace).copy()
            out.append((np.asarray(p).copy(), trace))
        return out

    return described(f"optax {optax.__version__}, jax {jax.__version__}", limited, "float16"), run
