"""Record a Keras 3 run: ``with nagref.record.keras(optimizer, path): model.fit(...)``.

Every backend's trainer reaches ``optimizer.apply(grads, variables)`` (the
JAX trainer through ``stateless_apply``, which calls ``apply`` in a
``StatelessScope``), so the recording wraps the instance's ``apply``: beside
the update it hands the host the gradients, the variables' values before the
step (those the previous step made) and the learning rate as the step
computes it (a schedule's value at this step's ``iterations``), through a
host callback of the backend: ``jax.debug.callback(..., ordered=True)`` (under
``jax.jit`` as eagerly), ``tf.numpy_function`` inside a ``tf.function``,
and a plain call on eager TensorFlow, torch and NumPy. The callback only reads
the update's inputs: tests prove ``model.fit``'s weights bit for bit the same
with and without it on TensorFlow, JAX (jitted) and torch. The variables after
the last step are read when the block ends.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

from .torch_hooks import _numpy as _torch_numpy
from .writer import TrajectoryWriter, check_steps, selection

__all__ = ["KerasRecording", "keras"]

#: Each recorded variable, its group (1: excluded from weight decay) and whether the
#: step has its gradient; fixed when the step is traced.
Layout = tuple[tuple[Any, int, bool], ...]

#: SGD's settings that change the update in ways the recording cannot write down.
_REFUSED = ("clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor",
            "gradient_accumulation_steps", "ema_overwrite_frequency")  # fmt: skip


class KerasRecording:
    """A ``nagref.record.keras`` block's recording: ``writer`` (None before the first
    step), ``calls`` (the optimizer's steps it saw), ``compiled`` and ``summary()``."""

    def __init__(self, optimizer: Any, path: str | os.PathLike[str], steps: int | None,
                 keep: Callable[[str], bool], quiet: bool) -> None:  # fmt: skip
        self._keras = importlib.import_module("keras")
        self.backend = str(self._keras.backend.backend())
        self.path = path
        self.writer: TrajectoryWriter | None = None
        self.calls = 0
        self.compiled: bool | None = None  # whether the step was traced (jit, tf.function)
        self._optimizer = optimizer
        self._original = optimizer.apply
        self._steps = steps
        self._keep = keep
        self._quiet = quiet
        self._chosen: list[Any] = []  # the recorded variables, in tensor order
        self._pending: list[int] = []  # tensors the last written step updated
        self._start = self._iterations()

    def summary(self) -> str:
        """One line: how much was recorded, and where."""
        if self.writer is None:
            return f"nagref: recorded 0 steps; {self.path} not written"
        return self.writer.summary()

    def _iterations(self) -> int:
        return int(np.asarray(self._keras.ops.convert_to_numpy(self._optimizer.iterations)))

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Any] | None = None) -> Any:
        """The optimizer's ``apply``, the step's inputs handed to the host beside it."""
        opt = self._optimizer
        variables = (list(trainable_variables) if trainable_variables is not None
                     else list(opt._trainable_variables))  # fmt: skip
        if len(grads) != len(variables):
            return self._original(grads, trainable_variables)  # Keras's own error
        picked = [(v, g) for v, g in zip(variables, grads, strict=True) if self._keep(v.path)
                  and not getattr(v, "overwrite_with_gradient", False)]  # fmt: skip
        if not picked:
            raise ValueError("no tensor was selected: tensors= matched no variable's path")
        for v, _ in picked:
            if v.constraint is not None:
                raise ValueError(f"variable {v.path} has a constraint, applied after the "
                                 "update: the recording records SGD without one")  # fmt: skip
        decayed = opt.weight_decay is not None
        layout = tuple((v, 0 if not decayed or opt._use_weight_decay(v) else 1, g is not None)
                       for v, g in picked)  # fmt: skip
        lr = opt.learning_rate  # a schedule's value at this step's iterations
        lr = lr.value if isinstance(lr, self._keras.Variable) else lr
        _call_host(self, layout, lr, [g for _, g in picked], [v.value for v, _ in picked])
        return self._original(grads, trainable_variables)

    def host(self, layout: Layout, lr: Any, grads: Sequence[Any], values: Sequence[Any]) -> None:
        """On the host: the values the previous step made, this step's gradients and lr."""
        self.calls += 1
        if self.writer is None:
            self.writer = _writer(self, self._optimizer, layout, values)
            self._chosen.extend(v for v, _, _ in layout)
        writer = self.writer
        if writer.closed:
            return
        if [id(v) for v, _, _ in layout] != [id(v) for v in self._chosen]:
            raise RuntimeError("the recorded variables changed between steps")
        for k in self._pending:  # what the previous step made
            writer.param(k, _host(values[k]))
        self._pending = []
        if self._steps is not None and writer.steps >= self._steps:
            self._finish()
            return
        opt = self._optimizer
        row = {"lr": float(np.asarray(lr)), "momentum": float(opt.momentum),
               "nesterov": bool(opt.nesterov)}  # fmt: skip
        decay = float(opt.weight_decay or 0.0)
        groups = max(g for _, g, _ in layout) + 1
        writer.step([{**row, "weight_decay": decay if g == 0 else 0.0} for g in range(groups)])
        for k, ((_, _, has_grad), grad) in enumerate(zip(layout, grads, strict=True)):
            if has_grad:
                writer.grad(k, _host(grad))
                self._pending.append(k)

    def _finish(self) -> None:
        assert self.writer is not None
        self.writer.close()
        if not self._quiet:
            print(self.summary())

    def end(self, finished: bool) -> None:
        """The block ends: the last step's variables (where it finished), the summary."""
        if self.backend == "jax":
            importlib.import_module("jax").effects_barrier()
        if self.writer is None:
            if not self._quiet:
                print(self.summary())
            return
        if not self.writer.closed:
            if finished:  # a failed run keeps the steps it finished
                for k in self._pending:
                    value = _value(self.backend, self._chosen[k].value)
                    self.writer.param(k, _host(value))
            self._pending = []
            self._finish()

    def check_every_step_seen(self) -> None:
        ran = self._iterations() - self._start
        if ran != self.calls:
            raise RuntimeError(f"{ran} optimizer steps ran in the block and {self.calls} were "
                               "recorded: a train function traced before the recording began "
                               "does not call it (model.make_train_function(force=True) "
                               "retraces it)")  # fmt: skip


@contextmanager
def keras(
    optimizer: Any,
    path: str | os.PathLike[str],
    *,
    steps: int | None = None,
    tensors: Collection[str] | Callable[[str], bool] | None = None,
    quiet: bool = False,
) -> Iterator[KerasRecording]:
    """Record every step of ``optimizer`` inside the block (``model.fit`` or a loop).

    Args:
        optimizer: a ``keras.optimizers.SGD`` (Keras 3), without gradient
            clipping, loss scaling, gradient accumulation or EMA overwriting,
            whose variables have no constraint. Its ``momentum``,
            ``nesterov`` and ``weight_decay`` (Keras's decoupled decay; the
            variables it excludes form group 1, with weight_decay 0) are
            recorded, and the learning rate as each step computes it.
        path: the file to write (``.trajectory``).
        steps: record only the first ``steps`` steps (default: all).
        tensors: record only these variables, by ``variable.path``
            (``"sequential/dense/kernel"``): a collection or a predicate.
        quiet: do not print the one-line summary at the end.

    The run's framework is ``keras`` with its version; the options name the
    backend, its version and whether the step was traced (``compiled``:
    ``jax.jit`` or ``tf.function``); on torch the thread count is recorded.
    A train function traced before the block does not call the recording:
    then the block ends with a RuntimeError (its steps were not recorded;
    ``model.make_train_function(force=True)`` retraces it). TensorFlow under
    XLA (``jit_compile=True``) and torch's ``torch.compile`` cannot call back
    to the host and are refused when traced. The last step's variables and the
    optimizer's ``iterations`` are read from the Keras variables when the block
    ends: a JAX loop of one's own around ``stateless_apply`` assigns them back
    first, as ``model.fit`` does.
    """
    _check_optimizer(optimizer)
    check_steps(steps)
    rec = KerasRecording(optimizer, path, steps, selection(tensors), quiet)
    optimizer.apply = rec.apply
    finished = False
    try:
        yield rec
        finished = True
    finally:
        del optimizer.apply
        rec.end(finished)
    rec.check_every_step_seen()


def _check_optimizer(optimizer: Any) -> None:
    """A ``keras.optimizers.SGD`` whose update receives the gradients as recorded."""
    if not isinstance(optimizer, importlib.import_module("keras").optimizers.SGD):
        raise TypeError(f"optimizer must be a keras.optimizers.SGD, got {type(optimizer).__name__}")
    for name in _REFUSED:
        value = getattr(optimizer, name, None)
        if value is not None and (name != "ema_overwrite_frequency" or optimizer.use_ema):
            raise ValueError(f"optimizer.{name}={value!r}: the recording writes the gradients "
                             "as the update gets them, so it records SGD without it")  # fmt: skip
    if "apply" in vars(optimizer):
        raise ValueError("optimizer is already being recorded")


def _writer(rec: KerasRecording, optimizer: Any, layout: Layout,
            values: Sequence[Any]) -> TrajectoryWriter:  # fmt: skip
    backend = rec.backend
    version = str(importlib.import_module(backend).__version__)
    threads = None
    if backend == "torch":
        threads = int(importlib.import_module("torch").get_num_threads())
    options = {"backend": backend, backend: version, "compiled": rec.compiled}
    writer = TrajectoryWriter(rec.path, framework="keras", version=str(rec._keras.__version__),
                              optimizer=type(optimizer).__name__, threads=threads,
                              options=options)  # fmt: skip
    for (variable, group, _), value in zip(layout, values, strict=True):
        writer.tensor(variable.path, _host(value), group=group)
    return writer


def _call_host(rec: KerasRecording, layout: Layout, lr: Any, grads: list[Any],
               values: list[Any]) -> None:  # fmt: skip
    """``rec.host(layout, lr, grads, values)`` with NumPy arrays, beside the step."""
    backend = rec.backend
    present = [g for g in grads if g is not None]
    number = lr if isinstance(lr, (int, float)) else None  # a callable's Python float

    def call(lr: Any, *arrays: Any) -> None:
        it = iter(arrays[: len(present)])
        rec.host(layout, lr if number is None else number,
                 [next(it) if g is not None else None for g in grads],
                 list(arrays[len(present):]))  # fmt: skip

    if number is not None:
        lr = np.float32(0)  # not sent: the Python float itself is recorded

    if backend == "jax":
        jax = importlib.import_module("jax")
        rec.compiled = any(isinstance(x, jax.core.Tracer) for x in (*present, *values))
        jax.debug.callback(call, lr, *present, *values, ordered=True)
    elif backend == "tensorflow":
        tf = importlib.import_module("tensorflow")
        dense = [tf.convert_to_tensor(g) for g in present]  # IndexedSlices: dense
        if tf.executing_eagerly():
            rec.compiled = False
            call(np.asarray(lr), *(x.numpy() for x in (*dense, *values)))
            return
        from tensorflow.python.ops import control_flow_util  # noqa: PLC0415

        if control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()):
            raise ValueError("TensorFlow under XLA (jit_compile=True) cannot call back to the "
                             "host: record model.fit with jit_compile=False")  # fmt: skip
        rec.compiled = True
        tf.numpy_function(call, [tf.convert_to_tensor(lr), *dense, *values], Tout=[],
                          stateful=True)  # fmt: skip
    else:
        if backend == "torch" and importlib.import_module("torch").compiler.is_compiling():
            raise ValueError("torch.compile (jit_compile=True) cannot be recorded: a host "
                             "call breaks its graph; fit with jit_compile=False")  # fmt: skip
        rec.compiled = False
        call(_value(backend, lr), *(_value(backend, x) for x in (*present, *values)))


def _value(backend: str, x: Any) -> Any:
    """An eager tensor's values as NumPy (torch: bfloat16 through its bits)."""
    if backend == "torch" and hasattr(x, "detach"):
        return _torch_numpy(x)
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        return x.numpy()
    return np.asarray(x)


def _host(x: Any) -> npt.NDArray[Any]:
    return np.array(x)  # a copy: TensorFlow and torch may hand over their own buffers
