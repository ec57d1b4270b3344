"""The live driver of ``jax.example_libraries.optimizers`` (CPU, float64 enabled).

Each case builds ``momentum(step_size, mass)``, ``nesterov(step_size, mass)``
or, without a mass, ``sgd(step_size)``, and runs its ``update(i, g,
opt_state)`` at i = 0, 1, ...: eagerly (``step_size`` the constant, or a
schedule returning each step's Python float), or under ``jax.jit`` (``jit``:
the constant; ``jit-schedule``: ``exponential_decay(step_size, 1, 1.0)``,
which computes the same value from the traced step index at run time). The
``*-avx512fp16`` variants are the same code paths on a CPU with native
float16 arithmetic; the float16 cases of the others run, on such a CPU, in a
helper worker whose XLA is kept to AVX2 (as the Optax driver's).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...conventions import lookup
from ..cases import Spec, arrays
from . import Run, Trajectory, described, per_step, xla_process


def start(variant: str | None) -> tuple[str, Run]:
    convention = lookup("jax_example_libraries")
    limited, elsewhere = xla_process("jax_example_libraries", variant)
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.example_libraries import optimizers

    def run(spec: Spec) -> Trajectory:
        if (handed := elsewhere(spec)) is not None:
            return handed
        options = convention.variant(spec.variant).options
        param, grads = arrays(spec)
        jit = bool(options["jit"])
        lrs = spec.lr
        if options["step_size_form"] == "schedule":
            step_size: Any = optimizers.exponential_decay(lrs[0], 1, 1.0)
        elif jit or len(set(lrs)) == 1:
            step_size = lrs[0]  # make_schedule's constant
        else:

            def step_size(i: int) -> float:  # a schedule of Python floats
                return lrs[i]

        if spec.momentum is None:
            init, update, get_params = optimizers.sgd(step_size)
        elif spec.nesterov:
            init, update, get_params = optimizers.nesterov(step_size, spec.momentum)
        else:
            init, update, get_params = optimizers.momentum(step_size, spec.momentum)
        step = jax.jit(update) if jit else update
        state = init(jnp.asarray(param))
        out: Trajectory = []
        for i, g in enumerate(per_step(grads)):
            state = step(i, jnp.asarray(g), state)
            (leaf,) = state.packed_state  # one parameter: (x, velocity), or x
            velocity = None if spec.momentum is None else np.asarray(leaf[1]).copy()
            out.append((np.asarray(get_params(state)).copy(), velocity))
        return out

    version = f"jax.example_libraries, jax {jax.__version__}"
    return described(version, limited, "float16"), run
