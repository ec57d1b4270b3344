"""A worker process that runs one framework on cases sent as JSON lines.

``python -m nagref.live.worker CONVENTION [KERAS_BACKEND]``
reads one :class:`~.cases.Spec` per line on stdin and answers, per case, one
JSON line: the parameters and the state after every step, as raw bytes in
base64 (or an error message). It prints the framework's version first.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from .cases import Spec, arrays

Trajectory = list[tuple[np.ndarray, np.ndarray | None]]


def _per_step(grads: np.ndarray) -> list[np.ndarray]:
    """Each step's gradient as its own array, 0-d for a scalar parameter.

    Iterating a 1-d array yields NumPy scalars, and ``np.float64`` is a
    Python ``float``: TensorFlow's eager conversion caches Python numbers by
    value, so +0.0 and -0.0 share an entry and a -0.0 gradient could arrive
    as an earlier +0.0. Arrays are never cached.
    """
    return [np.array(g) for g in grads]


def _pytorch() -> tuple[str, Callable[[Spec], Trajectory]]:
    import torch

    torch.set_num_threads(1)

    def run(spec: Spec) -> Trajectory:
        param, grads = arrays(spec)
        p = torch.tensor(param.copy())
        variant = {"single-tensor": {"foreach": False}, "foreach": {"foreach": True}}
        opt = torch.optim.SGD(
            [p],
            lr=spec.lr[0],
            momentum=spec.momentum or 0.0,
            dampening=spec.dampening,
            weight_decay=spec.weight_decay or 0.0,
            nesterov=spec.nesterov,
            maximize=spec.maximize,
            **variant.get(spec.variant, {"fused": True}),
        )
        out: Trajectory = []
        for lr, g in zip(spec.lr, _per_step(grads), strict=True):
            opt.param_groups[0]["lr"] = lr
            p.grad = torch.tensor(g.copy())
            opt.step()
            buf = opt.state[p].get("momentum_buffer")
            out.append((p.detach().numpy().copy(), None if buf is None else buf.numpy().copy()))
        return out

    return f"torch {torch.__version__}", run


def _keras(backend: str) -> tuple[str, Callable[[Spec], Trajectory]]:
    os.environ["KERAS_BACKEND"] = backend
    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    import keras

    def run(spec: Spec) -> Trajectory:
        param, grads = arrays(spec)
        var = keras.Variable(param.copy(), dtype=spec.dtype)
        opt = keras.optimizers.SGD(
            learning_rate=spec.lr[0],
            momentum=spec.momentum or 0.0,
            nesterov=spec.nesterov,
            weight_decay=spec.weight_decay,
        )
        opt.build([var])
        out: Trajectory = []
        for g in _per_step(grads):
            opt.apply([keras.ops.convert_to_tensor(g, dtype=spec.dtype)], [var])
            state = opt.momentums[0].value if spec.momentum else None
            value = keras.ops.convert_to_numpy(var.value).copy()
            out.append((value, None if state is None else keras.ops.convert_to_numpy(state).copy()))
        return out

    return f"keras {keras.__version__} ({backend})", run


def _optax() -> tuple[str, Callable[[Spec], Trajectory]]:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    def run(spec: Spec) -> Trajectory:
        param, grads = arrays(spec)
        # a fixed length, so that jax.jit compiles once per shape, not per run length
        lrs = jnp.asarray(spec.lr + (0.0,) * (256 - len(spec.lr)), dtype=jnp.float64)
        opt = optax.sgd(lambda count: lrs[count], momentum=spec.momentum, nesterov=spec.nesterov)

        def step(p: Any, g: Any, state: Any) -> Any:
            updates, state = opt.update(g, state, p)
            return optax.apply_updates(p, updates), state

        if spec.variant == "jit":
            step = jax.jit(step)
        p = jnp.asarray(param)
        state = opt.init(p)
        out: Trajectory = []
        for g in _per_step(grads):
            p, state = step(p, jnp.asarray(g), state)
            trace = None if spec.momentum is None else np.asarray(state[0].trace).copy()
            out.append((np.asarray(p).copy(), trace))
        return out

    return f"optax {optax.__version__}, jax {jax.__version__}", run


def _tensorflow() -> tuple[str, Callable[[Spec], Trajectory]]:
    import tensorflow as tf

    def run(spec: Spec) -> Trajectory:
        param, grads = arrays(spec)
        var = tf.Variable(param.copy())
        accum = tf.Variable(np.zeros_like(param))
        out: Trajectory = []
        for lr, g in zip(spec.lr, _per_step(grads), strict=True):
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


def _encode(x: np.ndarray | None) -> str | None:
    return None if x is None else base64.b64encode(np.ascontiguousarray(x).tobytes()).decode()


def main(argv: list[str]) -> int:
    convention = argv[0]
    if convention == "keras":
        version, run = _keras(argv[1])
    else:
        version, run = {"pytorch": _pytorch, "optax": _optax, "tensorflow": _tensorflow}[
            convention
        ]()
    print(json.dumps({"version": version}), flush=True)
    for line in sys.stdin:
        spec = Spec.from_json(json.loads(line))
        try:
            steps = run(spec)
            reply: dict[str, Any] = {"steps": [[_encode(p), _encode(s)] for p, s in steps]}
        except Exception as error:  # reported to the caller, who decides
            reply = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
