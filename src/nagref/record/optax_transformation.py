"""Record an Optax run: ``tx = nagref.record.optax(optax.sgd(...), path, ...)``.

The wrapped transformation is the user's own, with a host callback beside
it: at each ``update(grads, state, params)`` the callback writes the
parameters the previous step made (``params``) and this step's gradients;
``tx.close(params)`` writes the last step's parameters and ends the file.
Eagerly and under ``jax.jit`` alike the update's arithmetic is Optax's: the
callback only reads its inputs (``jax.debug.callback``, ordered), and a
test proves a jitted step's parameters bit for bit the same with and
without it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import numpy as np

from .writer import TrajectoryWriter, check_steps, selection

__all__ = ["Recording", "RecordingState", "optax"]

Schedule = Callable[[int], Any]


class RecordingState(NamedTuple):
    """The wrapped transformation's state, and the step count a schedule is called with."""

    inner: Any
    count: Any


class Recording(NamedTuple):
    """An Optax ``GradientTransformation`` (``init``, ``update``) that records, and ``close``."""

    init: Callable[..., Any]
    update: Callable[..., Any]
    close: Callable[[Any], None]
    writer: TrajectoryWriter


def optax(
    transformation: Any,
    path: str | os.PathLike[str],
    *,
    learning_rate: float | Schedule,
    momentum: float = 0.0,
    nesterov: bool | None = None,
    steps: int | None = None,
    tensors: Collection[str] | Callable[[str], bool] | None = None,
    quiet: bool = False,
) -> Recording:
    """Wrap ``transformation`` so that every update is recorded to ``path``.

    The transformation's own hyperparameters are closed over, out of
    reach: give them as ``optax.sgd`` took them (``learning_rate``, a number
    or the schedule, called with the step count from 0; ``momentum``;
    ``nesterov``, or None to let the audit try both): a schedule is called
    in the step, on the step count the recording keeps in its state
    (:class:`RecordingState`), so the recorded lr is the value the step
    computed (under ``jax.jit``, XLA's). ``init`` must be
    called eagerly; ``update`` needs ``params`` (the parameters before the
    step, which are those the previous step made); ``close(params)`` with
    the final parameters ends the recording. Tensors are named by their
    pytree paths (``"layer.w"``, ``"0"``). ``steps`` and ``tensors`` choose
    what is recorded, as :func:`nagref.record.torch`'s do.
    """
    jax = importlib.import_module("jax")
    check_steps(steps)
    keep = selection(tensors)
    version = str(importlib.import_module("optax").__version__)
    writer = TrajectoryWriter(path, framework="optax", version=version, optimizer="",
                              threads=None, options={"jax": str(jax.__version__)})  # fmt: skip
    chosen: list[tuple[int, int]] = []  # (leaf index, tensor index)
    started = [False]

    def init(params: Any) -> Any:
        leaves = jax.tree_util.tree_flatten_with_path(params)[0]
        if writer.steps or chosen:
            raise ValueError("init() was called twice on one recording")
        for i, (key_path, leaf) in enumerate(leaves):
            if isinstance(leaf, jax.core.Tracer):
                raise TypeError("call init() eagerly (outside jax.jit): it writes the "
                                "parameters before the first step")  # fmt: skip
            name = _name(key_path)
            if keep(name):
                chosen.append((i, writer.tensor(name, np.asarray(leaf))))
        if not chosen:
            raise ValueError("no tensor was selected: tensors= matched no leaf's path")
        started[0] = True
        return RecordingState(transformation.init(params), jax.numpy.zeros([], "int32"))

    def record(grads: list[Any], params: list[Any], lr: Any) -> None:
        if writer.closed:
            return
        _write_params(params)  # what the previous step made
        if steps is not None and writer.steps >= steps:
            _finish()
            return
        group = {"lr": float(np.asarray(lr)), "momentum": float(momentum), "nesterov": nesterov}
        writer.step([group])
        for leaf, index in chosen:
            writer.grad(index, np.asarray(grads[leaf]))

    def _finish() -> None:
        writer.close()
        if not quiet:
            print(writer.summary())

    def _write_params(params: list[Any]) -> None:
        if writer.steps:
            for leaf, index in chosen:
                writer.param(index, np.asarray(params[leaf]))

    def update(updates: Any, state: Any, params: Any = None, **extra: Any) -> Any:
        if params is None:
            raise ValueError("update(grads, state, params): the recording needs params, the "
                             "parameters the previous step made")  # fmt: skip
        if not started[0]:
            raise ValueError("call init(params) on the recording first")
        # a schedule's value as this step computes it (under jit: as XLA does), by its count
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        leaves = jax.tree_util.tree_leaves
        jax.debug.callback(record, leaves(updates), leaves(params), lr, ordered=True)
        updates, inner = transformation.update(updates, state.inner, params, **extra)
        return updates, RecordingState(inner, state.count + 1)

    def close(params: Any) -> None:
        jax.effects_barrier()  # every callback of the steps run so far has written
        if not writer.closed:
            _write_params(jax.tree_util.tree_leaves(params))
            _finish()

    return Recording(init, update, close, writer)


def _name(key_path: tuple[Any, ...]) -> str:
    """A pytree path as a dotted name: ``("layer", "w")`` -> ``"layer.w"``."""
    parts = []
    for key in key_path:
        for attribute in ("key", "idx", "name"):
            if hasattr(key, attribute):
                parts.append(str(getattr(key, attribute)))
                break
        else:
            parts.append(str(key))
    return ".".join(parts) or "params"
