"""The live driver of scikit-learn's MLP SGD solver: its own ``SGDOptimizer``, unpatched.

Each case builds ``SGDOptimizer([param], learning_rate_init=lr, momentum=...,
nesterov=...)`` (``sklearn/neural_network/_stochastic_optimizers.py``, the
class ``MLPClassifier`` and ``MLPRegressor`` build in ``_fit_stochastic``)
and calls its ``update_params([param], [grad])`` once per step, as
``_fit_stochastic`` does per batch. A step's learning rate is set as the
optimizer's documented ``learning_rate`` attribute (the current rate, which
its own ``iteration_ends`` and ``trigger_stopping`` assign between epochs);
the schedules themselves are checked against ``iteration_ends`` and
``trigger_stopping`` in tests/conventions/test_sklearn.py.
"""

from __future__ import annotations

import numpy as np

from ..cases import Spec, arrays
from . import Run, Trajectory, per_step


def start(variant: str | None) -> tuple[str, Run]:
    import sklearn
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    def run(spec: Spec) -> Trajectory:
        param, grads = arrays(spec)
        param = param.copy()
        optimizer = SGDOptimizer(
            [param],
            learning_rate_init=spec.lr[0],
            lr_schedule="constant",
            momentum=spec.momentum or 0.0,
            nesterov=spec.nesterov,
        )
        out: Trajectory = []
        for lr, g in zip(spec.lr, per_step(grads), strict=True):
            optimizer.learning_rate = lr
            optimizer.update_params([param], [g])
            out.append((param.copy(), np.array(optimizer.velocities[0])))
        return out

    return f"scikit-learn {sklearn.__version__}, numpy {np.__version__}", run
