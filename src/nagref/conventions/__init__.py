"""Framework conventions: PyTorch, Keras 3, TensorFlow and Optax, bit for bit.

Each submodule is one framework's update, written as a short recipe of
primitive operations (:mod:`nagref._recipe`) under that
framework's rounding model, with the framework's own parameter names. All of
them are pure: they take the state as an argument and return the new state.

* :func:`nagref.conventions.pytorch.sgd`: ``torch.optim.SGD`` (CPU).
* :func:`nagref.conventions.keras.sgd`: Keras 3 ``SGD.apply`` per backend.
* :func:`nagref.conventions.optax.sgd`: ``optax.sgd`` + ``apply_updates``.
* :func:`nagref.conventions.tensorflow.apply_momentum`: TF ``ApplyMomentum``.

docs/conventions.md compares them side by side.
"""

from . import keras, optax, pytorch, tensorflow

__all__ = ["keras", "optax", "pytorch", "tensorflow"]
