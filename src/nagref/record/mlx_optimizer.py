"""Record an MLX run: ``with nagref.record.mlx(optimizer, path): ...`` around the loop.

For the ``with`` block the optimizer's ``apply_gradients`` (which
``optimizer.update(model, grads)`` calls) is wrapped on that one object, an
instance attribute removed on exit: the wrapper calls MLX's own method with
the same arguments and reads its inputs and outputs. Eager steps only: under
``mx.compile`` the Python code runs once, while the graph is traced, with
placeholders no recorder can read, and never again, so a compiled step is
refused with a ValueError when it is traced inside the block, and steps the
recording did not see (a step compiled before the block) are reported as
an error when it notices them. A compiled run is audited by recording the
same run eagerly: MLX's compiled SGD kernel has the eager bits on x86-64
(:mod:`nagref.conventions.mlx`). A compiled loss-and-gradient function
with ``optimizer.update`` outside it records as usual.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _dtypes
from .writer import TrajectoryWriter, check_steps, selection

__all__ = ["mlx"]

_COMPILED = (
    "a step traced by mx.compile cannot be recorded: MLX runs the Python code of a compiled "
    "function once, on placeholders, and then only its graph; record the run eagerly (the "
    "same optimizer.update without mx.compile: MLX's compiled SGD has the eager bits, "
    "nagref.conventions.mlx)"
)


@contextmanager
def mlx(
    optimizer: Any,
    path: str | os.PathLike[str],
    *,
    steps: int | None = None,
    tensors: Collection[str] | Callable[[str], bool] | None = None,
    quiet: bool = False,
) -> Iterator[TrajectoryWriter]:
    """Record every eager ``optimizer.update(model, grads)`` inside the block.

    At each step it writes the hyperparameters as the step used them (the
    learning rate after MLX's schedule, ``optimizer.learning_rate``;
    momentum, dampening, weight_decay, nesterov), each tensor's gradient and
    its value after the step. Tensors are named by their paths in the
    parameter tree (``"layers.0.weight"``, MLX's ``tree_flatten``); their
    values before the first step are written at the first step. A tensor
    without a gradient at a step is not recorded there (MLX leaves it and
    its velocity alone).

    Args:
        optimizer: an ``mlx.optimizers.SGD`` that has not stepped yet (its
            velocities start at zero with the recording).
        path: the file to write (``.trajectory``).
        steps: record only the first ``steps`` steps (default: all).
        tensors: record only these tensor names (a collection, or a
            predicate on the name).
        quiet: do not print the one-line summary at the end.

    Raises:
        ValueError: inside the block, at a step traced by ``mx.compile`` or
            after steps the recording did not see; at its end, for steps it
            did not see.
    """
    mx = importlib.import_module("mlx.core")
    optimizers = importlib.import_module("mlx.optimizers")
    flatten = importlib.import_module("mlx.utils").tree_flatten
    if not isinstance(optimizer, optimizers.SGD):
        raise TypeError(f"optimizer must be an mlx.optimizers.SGD, got "
                        f"{type(optimizer).__name__}")  # fmt: skip
    if "apply_gradients" in vars(optimizer):
        raise ValueError("optimizer: it is being recorded already (one recording at a time)")
    taken = int(optimizer.step)
    if taken:
        raise ValueError(f"optimizer: it has taken {taken} steps already; a recording starts "
                         "with the run (its velocities from zero)")  # fmt: skip
    check_steps(steps)
    keep = selection(tensors)
    writer = TrajectoryWriter(path, framework="mlx", version=str(mx.__version__),
                              optimizer=type(optimizer).__name__, threads=None,
                              options={"device": str(mx.default_device())})  # fmt: skip
    recording = _Recording(optimizer, writer, steps, keep, flatten)
    optimizer.apply_gradients = recording.apply_gradients
    failed = True
    try:
        yield writer
        failed = False
    finally:
        del optimizer.apply_gradients  # MLX's method again
        writer.finish(failed=failed, quiet=quiet)
    if not failed:
        recording.check_seen()


class _Recording:
    def __init__(self, optimizer: Any, writer: TrajectoryWriter, steps: int | None,
                 keep: Callable[[str], bool], flatten: Callable[[Any], Any]) -> None:  # fmt: skip
        self.optimizer, self.writer, self.steps, self.keep = optimizer, writer, steps, keep
        self.flatten = flatten
        self.original = optimizer.apply_gradients  # MLX's, bound
        self.chosen: dict[str, int] = {}  # name -> tensor index
        self.calls = 0  # steps through the wrapper, recorded or not

    def check_seen(self) -> None:
        """A ValueError where the optimizer took steps that did not go through the wrapper."""
        unseen = int(self.optimizer.step) - self.calls
        if unseen:
            raise ValueError(f"{self.writer.path}: the optimizer took {unseen} steps the "
                             f"recording did not see (mx.compile'd before the block?); "
                             f"{_COMPILED}")  # fmt: skip

    def apply_gradients(self, gradients: Any, parameters: Any) -> Any:
        """MLX's ``apply_gradients``, its inputs and outputs recorded."""
        writer, opt = self.writer, self.optimizer
        if writer.closed or (self.steps is not None and writer.steps >= self.steps):
            self.calls += 1
            return self.original(gradients, parameters)
        try:
            grads = {n: _numpy(g) for n, g in self.flatten(gradients) if self.keep(n)}
        except ValueError as error:
            if "transformation" in str(error):
                raise ValueError(_COMPILED) from error
            raise
        self.check_seen()
        if not writer.steps:
            before = dict(self.flatten(parameters))
            for name in grads:
                self.chosen[name] = writer.tensor(name, _numpy(before[name]))
            if not self.chosen:
                raise ValueError("no tensor was selected: tensors= matched no parameter's path")
        for name in grads.keys() - self.chosen.keys():
            raise ValueError(f"{writer.path}: tensor {name!r} has no gradient at the first "
                             "step, and tensors are declared there")  # fmt: skip
        new = self.original(gradients, parameters)
        self.calls += 1
        writer.step([{
            "lr": float(_numpy(opt.learning_rate)),  # after MLX's schedule, as the step used it
            "momentum": float(opt.momentum), "dampening": float(opt.dampening),
            "weight_decay": float(opt.weight_decay), "nesterov": bool(opt.nesterov),
        }])  # fmt: skip
        after = dict(self.flatten(new))
        for name, grad in grads.items():
            writer.update(self.chosen[name], grad, _numpy(after[name]))
        return new


def _numpy(array: Any) -> npt.NDArray[Any]:
    """An MLX array's values as NumPy sees them (bfloat16 through its bits)."""
    mx = importlib.import_module("mlx.core")
    if array.dtype == mx.bfloat16:
        bits: npt.NDArray[Any] = np.array(array.view(mx.uint16))
        return bits.view(_dtypes.numpy_dtype("bfloat16"))
    out: npt.NDArray[Any] = np.array(array)
    return out
