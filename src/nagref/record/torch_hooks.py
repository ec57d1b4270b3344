"""Record a PyTorch optimizer's run: ``with nagref.record.torch(optimizer, path): ...``."""

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

__all__ = ["check_steps", "selection", "torch"]

#: What each group's hyperparameters are called in ``torch.optim.SGD``'s param_groups.
GROUP_KEYS = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
#: The run's options, from the first group: the implementation torch picks by.
OPTIONS = ("foreach", "fused", "differentiable")


@contextmanager
def torch(
    optimizer: Any,
    path: str | os.PathLike[str],
    *,
    model: Any = None,
    steps: int | None = None,
    tensors: Collection[str] | Callable[[str], bool] | None = None,
    quiet: bool = False,
) -> Iterator[TrajectoryWriter]:
    """Record every ``optimizer.step()`` inside the block to a ``.trajectory`` file.

    Through the optimizer's step hooks, before each step it writes each
    group's hyperparameters (lr, momentum, dampening, weight_decay, nesterov,
    maximize: as the step will read them, after any LR scheduler) and every
    parameter's gradient, and after it the parameters. A parameter whose
    ``grad`` is None at a step is not recorded there (SGD leaves it and its
    buffer alone). The run's torch version, thread count and the first
    group's ``foreach``/``fused`` go into the file. Nothing the step computes
    is touched.

    Args:
        optimizer: a ``torch.optim.Optimizer`` (``SGD``, or any with the same
            group keys).
        path: the file to write (``.trajectory``).
        model: an ``nn.Module`` whose ``named_parameters()`` name the
            tensors; without one they are ``"group{g}.param{i}"``.
        steps: record only the first ``steps`` steps (default: all).
        tensors: record only these tensor names (a collection, or a
            predicate on the name).
        quiet: do not print the one-line summary at the end.
    """
    _torch = importlib.import_module("torch")
    check_steps(steps)
    keep = selection(tensors)
    named = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
    params: list[tuple[int, Any]] = []  # (tensor index, parameter) of the recorded ones
    groups = optimizer.param_groups
    first = groups[0]
    options = {k: first.get(k) for k in OPTIONS if k in first}
    writer = TrajectoryWriter(path, framework="torch", version=str(_torch.__version__),
                              optimizer=type(optimizer).__name__,
                              threads=int(_torch.get_num_threads()), options=options)  # fmt: skip
    try:
        for g, group in enumerate(groups):
            for i, p in enumerate(group["params"]):
                name = named.get(id(p), f"group{g}.param{i}")
                if keep(name):
                    params.append((writer.tensor(name, _numpy(p), group=g), p))
        if not params:
            raise ValueError("no tensor was selected: tensors= matched no parameter's name")
    except BaseException:
        writer.discard()
        raise
    pending: list[tuple[int, Any]] = []

    def before(opt: Any, args: Any, kwargs: Any) -> None:
        if steps is not None and writer.steps >= steps:
            return
        writer.step([{k: _plain(group[k]) for k in GROUP_KEYS if k in group} for group in groups])
        for index, p in params:
            if p.grad is not None:
                writer.grad(index, _numpy(p.grad))
                pending.append((index, p))

    def after(opt: Any, args: Any, kwargs: Any) -> None:
        for index, p in pending:
            writer.param(index, _numpy(p))
        pending.clear()

    hooks = [optimizer.register_step_pre_hook(before), optimizer.register_step_post_hook(after)]
    failed = True
    try:
        yield writer
        failed = False
    finally:
        for hook in hooks:
            hook.remove()
        writer.finish(failed=failed, quiet=quiet)


def _plain(value: Any) -> Any:
    """A group's hyperparameter as a Python scalar (a 0-d tensor lr included)."""
    return value.item() if hasattr(value, "item") else value


def _numpy(tensor: Any) -> npt.NDArray[Any]:
    """A tensor's values on the host, as NumPy sees them (bfloat16 through its bits)."""
    _torch = importlib.import_module("torch")
    t = tensor.detach()
    if t.dtype == _torch.bfloat16:
        bits: npt.NDArray[Any] = t.cpu().view(_torch.int16).numpy().view(np.uint16)
        return bits.view(_dtypes.numpy_dtype("bfloat16"))
    out: npt.NDArray[Any] = t.cpu().numpy()
    return out
