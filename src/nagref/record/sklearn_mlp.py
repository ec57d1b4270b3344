"""Record scikit-learn's MLP SGD solver: ``with nagref.record.sklearn(estimator, path): ...``.

scikit-learn offers no seam inside ``fit``: the MLPs take no callbacks, and
``fit`` makes a new ``SGDOptimizer`` at each call, inside itself. So for the
``with`` block, and only then, the recorder puts a wrapper in place of one
attribute, ``sklearn.neural_network._stochastic_optimizers.SGDOptimizer.update_params``
(the public method every SGD step goes through, ``update_params(params,
grads)``, inherited from ``BaseOptimizer``): it calls the original with the
same arguments, reads the parameters before and after and the gradients,
and writes them only where ``params`` are the recorded estimator's own
``coefs_ + intercepts_``. The attribute is restored when the last recording
open leaves its block, on an exception too. Nothing the step computes is
touched; the tests prove a fit's parameters bit for bit the same with and
without the recorder.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .writer import TrajectoryWriter, check_steps, selection

__all__ = ["sklearn"]

#: What the file's run options keep of the estimator's parameters.
OPTIONS = ("learning_rate", "learning_rate_init", "power_t", "batch_size", "shuffle",
           "early_stopping", "n_iter_no_change")  # fmt: skip
_MODULE = "sklearn.neural_network._stochastic_optimizers"

_lock = threading.Lock()
_active: dict[int, _Recording] = {}  # id(estimator) -> its recording
#: While patched: [(SGDOptimizer, its own update_params attribute or None, the method called)]
_original: list[tuple[Any, Any, Callable[..., None]]] = []


@contextmanager
def sklearn(
    estimator: Any,
    path: str | os.PathLike[str],
    *,
    steps: int | None = None,
    tensors: Collection[str] | Callable[[str], bool] | None = None,
    quiet: bool = False,
) -> Iterator[TrajectoryWriter]:
    """Record every SGD update of ``estimator``'s ``fit``/``partial_fit`` inside the block.

    At each update (one mini-batch) it writes the learning rate the optimizer
    used (its ``learning_rate``: the schedule's value, constant, invscaling or
    adaptive), ``momentum`` and ``nesterov`` (``nesterovs_momentum``), every
    tensor's gradient as the optimizer received it and its value after. The
    tensors are named ``coefs_.0``, ``intercepts_.0``, ...; their values
    before the first update are written when it comes (a ``fit`` draws them
    first). The recording is one run of one optimizer: ``partial_fit`` calls
    continue it, a second ``fit`` (a new optimizer, its velocities from
    zero) is refused with a ValueError, as is an optimizer that has already
    stepped before the block, and float64 gradients of float32 parameters
    (a float32 ``X`` with a float64 ``y``), which a ``.trajectory`` cannot
    hold.

    Args:
        estimator: an ``MLPClassifier`` or ``MLPRegressor`` with ``solver="sgd"``.
        path: the file to write (``.trajectory``).
        steps: record only the first ``steps`` updates (default: all).
        tensors: record only these tensor names (a collection, or a
            predicate on the name).
        quiet: do not print the one-line summary at the end.
    """
    mlp = importlib.import_module("sklearn.neural_network._multilayer_perceptron")
    if not isinstance(estimator, mlp.BaseMultilayerPerceptron):
        raise TypeError(f"estimator must be an MLPClassifier or MLPRegressor, got "
                        f"{type(estimator).__name__}")  # fmt: skip
    if estimator.solver != "sgd":
        raise ValueError(f"estimator: solver={estimator.solver!r} is not recorded; "
                         "solver='sgd' is (scikit-learn's SGDOptimizer)")  # fmt: skip
    check_steps(steps)
    version = str(importlib.import_module("sklearn").__version__)
    options = {k: _plain(getattr(estimator, k)) for k in OPTIONS}
    options["numpy"] = np.__version__
    # NumPy's elementwise ufuncs, which are all the update is, run on one thread
    writer = TrajectoryWriter(path, framework="scikit-learn", version=version,
                              optimizer=type(estimator).__name__, threads=1,
                              options=options)  # fmt: skip
    recording = _Recording(estimator, writer, steps, selection(tensors))
    with _lock:
        if id(estimator) in _active:
            writer.discard()
            raise ValueError("estimator: it is being recorded already (one recording at a time)")
        _active[id(estimator)] = recording
        if not _original:
            optimizer = importlib.import_module(_MODULE).SGDOptimizer
            own = optimizer.__dict__.get("update_params")
            _original.append((optimizer, own, optimizer.update_params))
            optimizer.update_params = _update_params
    failed = True
    try:
        yield writer
        failed = False
    finally:
        with _lock:
            del _active[id(estimator)]
            if not _active:
                optimizer, own, _ = _original.pop()
                if own is None:
                    del optimizer.update_params  # BaseOptimizer's again
                else:
                    optimizer.update_params = own
        writer.finish(failed=failed, quiet=quiet)


def _update_params(self: Any, params: list[Any], grads: list[Any]) -> None:
    """``SGDOptimizer.update_params`` while a recording is open: the original, and a record."""
    update = _original[0][2]
    recording = _owner(params)
    if recording is None:
        update(self, params, grads)
        return
    chosen = recording.before(self, params, grads)
    update(self, params, grads)
    for index, i in chosen:
        recording.writer.param(index, params[i])


def _owner(params: list[Any]) -> _Recording | None:
    """The recording whose estimator's ``coefs_ + intercepts_`` these are, if any."""
    with _lock:
        for recording in _active.values():
            own = getattr(recording.estimator, "coefs_", None)
            if own and params and params[0] is own[0]:
                return recording
    return None


class _Recording:
    def __init__(self, estimator: Any, writer: TrajectoryWriter, steps: int | None,
                 keep: Callable[[str], bool]) -> None:  # fmt: skip
        self.estimator, self.writer, self.steps, self.keep = estimator, writer, steps, keep
        self.optimizer: Any = None
        self.chosen: list[tuple[int, int]] = []  # (tensor index, position in params)

    def before(self, optimizer: Any, params: list[Any], grads: list[Any]) -> list[tuple[int, int]]:
        """Checks, the step's hyperparameters and gradients; which params to write after."""
        writer = self.writer
        if writer.closed or (self.steps is not None and writer.steps >= self.steps):
            return []
        if self.optimizer is None:
            self._start(optimizer, params, grads)
        elif optimizer is not self.optimizer:
            raise ValueError(f"{writer.path}: a second fit() inside one recording: scikit-learn "
                             "starts a new optimizer (velocities from zero) at each fit(); "
                             "record each fit() in its own block (partial_fit() continues "
                             "one)")  # fmt: skip
        writer.step([{"lr": optimizer.learning_rate, "momentum": optimizer.momentum,
                      "nesterov": bool(optimizer.nesterov)}])  # fmt: skip
        for index, i in self.chosen:
            writer.grad(index, grads[i])
        return self.chosen

    def _start(self, optimizer: Any, params: list[Any], grads: list[Any]) -> None:
        if any(np.any(v) for v in optimizer.velocities):
            raise ValueError(f"{self.writer.path}: the estimator's optimizer stepped before the "
                             "recording began (its velocities are not zero); a recording "
                             "starts with the run: fit(), or the first partial_fit()")  # fmt: skip
        for p, g in zip(params, grads, strict=True):
            if g.dtype != p.dtype:
                raise ValueError(f"{self.writer.path}: scikit-learn computes {g.dtype} "
                                 f"gradients for these {p.dtype} parameters (X is {p.dtype}, y "
                                 f"is not), which a .trajectory cannot hold (a gradient has "
                                 f"its parameter's dtype); give y as {p.dtype} too")  # fmt: skip
        layers = len(self.estimator.coefs_)
        for i, p in enumerate(params):
            name = f"coefs_.{i}" if i < layers else f"intercepts_.{i - layers}"
            if self.keep(name):
                self.chosen.append((self.writer.tensor(name, p), i))
        if not self.chosen:
            raise ValueError("no tensor was selected: tensors= matched no coefs_.i or "
                             "intercepts_.i")  # fmt: skip
        self.optimizer = optimizer


def _plain(value: object) -> object:
    """An estimator parameter as JSON (a NumPy number as a Python one)."""
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
