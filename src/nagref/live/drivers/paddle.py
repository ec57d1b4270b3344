"""The live driver of PaddlePaddle's ``paddle.optimizer.Momentum`` (CPU, dynamic graph).

Each case makes a parameter (``paddle.create_parameter``, its value set from
the case's array) and a ``Momentum`` optimizer over it; each step sets the
learning rate (``set_lr``, a Python float), assigns the step's gradient to
``param.grad`` exactly, calls ``step()`` and ``clear_grad()``, and reads the
parameter and its ``velocity`` accumulator. Paths that give the same bits are
taken in turn, by the case's seed: an odd seed passes the weight decay as
``paddle.regularizer.L2Decay(λ)``, an even one as the float; float32 cases
whose seed is 2 or 3 mod 4 run ``use_multi_tensor=True`` (``merged_momentum``).
A case's ``extra`` ``rescale_grad`` and ``multi_precision`` reach the optimizer
(and nagref) as given.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..cases import Spec, arrays
from . import Run, Trajectory, per_step


def start(variant: str | None) -> tuple[str, Run]:
    warnings.filterwarnings("ignore", module="paddle")  # ccache, 16-bit accumulators
    import paddle as framework

    paddle: Any = framework  # driven as untyped: its annotations are narrower than its API
    paddle.set_device("cpu")

    def run(spec: Spec) -> Trajectory:
        param, grads = arrays(spec)
        zero = paddle.nn.initializer.Constant(0.0)
        p = paddle.create_parameter(list(param.shape), spec.dtype, default_initializer=zero)
        p.set_value(_tensor(paddle, param))
        decay: Any = spec.weight_decay
        if decay is not None and spec.seed % 2:
            decay = paddle.regularizer.L2Decay(decay)
        optimizer = paddle.optimizer.Momentum(
            learning_rate=spec.lr[0],
            momentum=spec.momentum or 0.0,
            parameters=[p],
            use_nesterov=spec.nesterov,
            weight_decay=decay,
            rescale_grad=float(spec.extra.get("rescale_grad", 1.0)),
            multi_precision=bool(spec.extra.get("multi_precision", False)),
            use_multi_tensor=spec.dtype == "float32" and spec.seed % 4 >= 2,
        )
        out: Trajectory = []
        for lr, g in zip(spec.lr, per_step(grads), strict=True):
            optimizer.set_lr(lr)
            p.grad = _tensor(paddle, g)
            optimizer.step()
            optimizer.clear_grad()
            (velocity,) = optimizer._accumulators["velocity"].values()
            out.append((p.numpy().copy(), velocity.numpy().copy()))
        return out

    return f"paddlepaddle {paddle.__version__}", run


def _tensor(paddle: Any, a: np.ndarray) -> Any:
    """A Paddle tensor with ``a``'s values; bfloat16 (which Paddle does not take from NumPy)
    through float32, exactly."""
    if a.dtype.name == "bfloat16":
        return paddle.to_tensor(a.astype(np.float32)).astype("bfloat16")
    return paddle.to_tensor(a)
