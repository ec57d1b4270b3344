"""The live driver of MLX's ``mlx.optimizers.SGD`` (the CPU backend, ``mlx[cpu]``).

Each case builds ``SGD(learning_rate, momentum, weight_decay, dampening,
nesterov)``, initialises its state on the parameter (``{"w": ...}``) and
steps it with ``apply_gradients``, setting the step's learning rate first
(``optimizer.learning_rate = lr``, MLX's float32 array). Variant
``compiled`` runs the step as MLX's training loops do, ``mx.compile(step,
inputs=optimizer.state, outputs=optimizer.state)``, compiled afresh for each
case (its momentum, weight decay and dampening are constants of the
kernel). Arrays cross between NumPy and MLX by their bits (bfloat16 too).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np

from ...conventions import lookup
from ..cases import Spec, arrays
from . import Run, Trajectory

#: unsigned integers of each width, to carry a dtype's bits
_BITS = {2: "uint16", 4: "uint32", 8: "uint64"}


def start(variant: str | None) -> tuple[str, Run]:
    convention = lookup("mlx")
    import mlx.core as mx
    import mlx.optimizers as optim

    mx.set_default_device(mx.cpu)

    def to_mlx(a: np.ndarray) -> Any:
        bits = _BITS[a.dtype.itemsize]
        return mx.array(a.view(bits).copy()).view(getattr(mx, a.dtype.name))

    def to_numpy(x: Any, like: np.dtype[Any]) -> np.ndarray:
        bits = _BITS[like.itemsize]
        values = np.array(x.view(getattr(mx, bits)))  # a copy of the bits
        copied: np.ndarray = values.view(like)
        return copied

    def run(spec: Spec) -> Trajectory:
        compiled = bool(convention.variant(spec.variant).options.get("compiled"))
        param, grads = arrays(spec)
        optimizer = optim.SGD(
            learning_rate=spec.lr[0],
            momentum=spec.momentum or 0.0,
            weight_decay=spec.weight_decay or 0.0,
            dampening=spec.dampening,
            nesterov=spec.nesterov,
        )
        params = {"w": to_mlx(param)}
        optimizer.init(params)

        def step(g: Any, params: Any) -> Any:
            return optimizer.apply_gradients({"w": g}, params)

        if compiled:
            state = optimizer.state
            step = mx.compile(step, inputs=state, outputs=state)
        out: Trajectory = []
        for lr, g in zip(spec.lr, grads, strict=True):
            optimizer.learning_rate = lr
            params = step(to_mlx(g), params)
            mx.eval(params, optimizer.state)
            v = optimizer.state["w"]["v"]
            out.append((to_numpy(params["w"], param.dtype), to_numpy(v, param.dtype)))
        return out

    return f"mlx {version('mlx')} (cpu)", run
