"""Record a training run while it runs, as a ``.trajectory`` file for ``nagref audit``.

``with nagref.record.torch(optimizer, "run.trajectory"): ...`` around the
user's own loop; ``with nagref.record.keras(optimizer, "run.trajectory"):
model.fit(...)`` on any Keras 3 backend; ``nagref.record.optax(optax.sgd(...), "run.trajectory",
learning_rate=..., momentum=...)`` in place of the transformation;
``with nagref.record.sklearn(estimator, "run.trajectory"): estimator.fit(X, y)``
for scikit-learn's MLP SGD solver; ``with nagref.record.mlx(optimizer,
"run.trajectory"): ...`` around an eager MLX loop;
:class:`TrajectoryWriter` for any other.
"""

from __future__ import annotations

from .keras_optimizer import keras
from .mlx_optimizer import mlx
from .optax_transformation import optax
from .sklearn_mlp import sklearn
from .torch_hooks import torch
from .writer import TrajectoryWriter

__all__ = ["TrajectoryWriter", "keras", "mlx", "optax", "sklearn", "torch"]
