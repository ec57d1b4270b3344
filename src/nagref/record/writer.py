"""Write a run's ``.trajectory`` file (:mod:`nagref.auditing.model_trajectory`), step by step."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from .. import _dtypes
from ..auditing.model_trajectory import (
    HYPERS,
    LENGTH,
    MAGIC,
    MAX_HEADER,
    MAX_NAME,
    hyper_type_ok,
    stored_dtype,
)
from ..auditing.trajectory import RULES, check

__all__ = ["TrajectoryWriter", "check_steps", "selection"]


def _as_stored(value: npt.NDArray[Any], name: str) -> npt.NDArray[Any]:
    """The bytes a record holds: C order, little-endian, bfloat16 as bits."""
    if name == "bfloat16":
        value = value.view(np.uint16)
    return np.ascontiguousarray(value, dtype=stored_dtype(name))


class TrajectoryWriter:
    """Write a run's ``.trajectory`` file, one step at a time.

    ``tensor()`` declares each recorded tensor (before the first step),
    ``step()`` starts a step with every group's hyperparameters, and
    ``update()`` writes a tensor's gradient and its value after the step.
    ``close()`` (or leaving the ``with`` block) ends the file. Arrays are
    NumPy arrays of a dtype in nagref's table (bfloat16 from ``ml_dtypes``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        framework: str,
        version: str,
        optimizer: str = "",
        threads: int | None = None,
        options: Mapping[str, object] | None = None,
    ) -> None:
        for key, text in (("framework", framework), ("version", version), ("optimizer", optimizer)):
            if not isinstance(text, str) or len(text) > MAX_NAME:
                raise TypeError(f"{key} must be a str of at most {MAX_NAME} characters")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be None or an int >= 1, got {threads!r}")
        run = {"record": "run", "framework": framework, "version": version, "optimizer": optimizer,
               "threads": threads, "options": dict(options or {})}  # fmt: skip
        header = json.dumps(run).encode()  # a non-JSON option fails here, before any file
        self.path = Path(path)
        self._file: IO[bytes] | None = open(self.path, "wb")  # noqa: SIM115  (closed in close())
        self._file.write(MAGIC)
        self._write_header(header)
        self._tensors: list[tuple[str, tuple[int, ...], int]] = []
        self._names: set[str] = set()
        self._groups = 0
        self.steps = 0
        self.elements = 0  # recorded grads and params, over every step
        self._updated: set[int] = set()  # a grad written, its param not yet
        self._done: set[int] = set()  # both written, this step

    def _write_header(self, header: bytes, payload: npt.NDArray[Any] | None = None) -> None:
        assert self._file is not None
        if len(header) > MAX_HEADER:
            raise ValueError(f"a record header of {len(header)} bytes is over {MAX_HEADER}")
        self._file.write(LENGTH.pack(len(header)) + header)
        if payload is not None:
            self._file.write(payload.tobytes())

    def _open(self) -> IO[bytes]:
        if self._file is None:
            raise ValueError(f"{self.path}: the recording is closed")
        return self._file

    def tensor(self, name: str, value: npt.NDArray[Any], *, group: int = 0) -> int:
        """Declare a tensor and its value before the first step; its index."""
        self._open()
        if self.steps:
            raise ValueError(f"tensor {name!r}: tensors are declared before the first step")
        if not isinstance(name, str) or len(name) > MAX_NAME or name in self._names:
            raise ValueError(f"tensor name must be a new str of at most {MAX_NAME} characters, "
                             f"got {name!r:.80}")  # fmt: skip
        dtype = _dtype_name(value)
        stored = _as_stored(value, dtype)
        header = {"record": "tensor", "name": name, "group": int(group), "dtype": dtype,
                  "shape": list(value.shape), "nbytes": stored.nbytes}  # fmt: skip
        self._write_header(json.dumps(header).encode(), stored)
        self._tensors.append((dtype, tuple(value.shape), int(group)))
        self._names.add(name)
        self._groups = max(self._groups, int(group) + 1)
        return len(self._tensors) - 1

    def step(self, groups: Sequence[Mapping[str, object]]) -> int:
        """Start the next step with each group's hyperparameters; its number (from 1).

        Each group is a mapping of :data:`~nagref.auditing.model_trajectory.HYPERS`
        keys; one left out takes its default. lr and momentum may be left out
        or None where the loop does not know them: the audit then infers
        them from the first two steps (``nagref audit --infer``).
        """
        self._open()
        if len(groups) < self._groups:
            raise ValueError(f"step {self.steps + 1}: {len(groups)} groups for tensors of "
                             f"{self._groups}")  # fmt: skip
        if self._updated:
            raise ValueError(f"step {self.steps}: tensors {sorted(self._updated)} have no param")
        rows = [{k: _hyper(k, g.get(k, d)) for k, (_, d) in HYPERS.items()} for g in groups]
        self.steps += 1
        self._done.clear()
        header = {"record": "step", "step": self.steps, "groups": rows}
        self._write_header(json.dumps(header).encode())
        return self.steps

    def grad(self, tensor: int, value: npt.NDArray[Any]) -> None:
        """Write tensor ``tensor``'s gradient at this step (its ``param`` follows)."""
        self._record("grad", tensor, value)
        self._updated.add(tensor)

    def param(self, tensor: int, value: npt.NDArray[Any]) -> None:
        """Write tensor ``tensor``'s value after this step (after its ``grad``)."""
        if tensor not in self._updated:
            raise ValueError(f"tensor {tensor}: its param before its grad in step {self.steps}")
        self._record("param", tensor, value)
        self._updated.discard(tensor)
        self._done.add(tensor)

    def update(self, tensor: int, grad: npt.NDArray[Any], param: npt.NDArray[Any]) -> None:
        """Write tensor ``tensor``'s gradient at this step and its value after it."""
        self.grad(tensor, grad)
        self.param(tensor, param)

    def _record(self, role: str, tensor: int, value: npt.NDArray[Any]) -> None:
        file = self._open()
        if not self.steps:
            raise ValueError(f"{role}(): comes after step()")
        if not 0 <= tensor < len(self._tensors):
            raise ValueError(f"tensor {tensor}: not declared (there are {len(self._tensors)})")
        if role == "grad" and (tensor in self._updated or tensor in self._done):
            raise ValueError(f"tensor {tensor}: a second grad in step {self.steps}")
        dtype, shape, _ = self._tensors[tensor]
        if _dtype_name(value) != dtype or tuple(value.shape) != shape:
            raise ValueError(f"tensor {tensor} {role}: {value.dtype} {value.shape}, "
                             f"declared {dtype} {shape}")  # fmt: skip
        stored = _as_stored(value, dtype)
        header = {"record": role, "step": self.steps, "tensor": tensor, "nbytes": stored.nbytes}
        self._write_header(json.dumps(header).encode(), stored)
        self.elements += value.size
        file.flush()

    @property
    def closed(self) -> bool:
        return self._file is None

    def close(self) -> None:
        """End the file (``end`` record). Closing twice does nothing."""
        if self._file is None:
            return
        self._write_header(json.dumps({"record": "end", "steps": self.steps}).encode())
        self._file.close()
        self._file = None

    def discard(self) -> None:
        """Close the file and remove it: a recording refused before it wrote anything."""
        self.close()
        self.path.unlink(missing_ok=True)

    def finish(self, *, failed: bool, quiet: bool) -> None:
        """End a recorder's run: a run that failed before its first step leaves no file
        (it would hold nothing); otherwise the file is closed and, unless ``quiet``,
        :meth:`summary` printed."""
        if failed and self.steps == 0:
            self.discard()
            return
        self.close()
        if not quiet:
            print(self.summary())

    def summary(self) -> str:
        """One line: how much was recorded, and where."""
        size = self.path.stat().st_size if self.path.exists() else 0
        return (f"nagref: recorded {self.steps} steps of {len(self._tensors)} tensors "
                f"({self.elements:,} gradient and parameter values, {size / 1e6:.1f} MB) "
                f"to {self.path}")  # fmt: skip

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dtype_name(value: object) -> str:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"expected a NumPy array, got {type(value).__name__}")
    name = str(value.dtype)
    if name not in _dtypes.REAL:
        raise ValueError(f"dtype {name} is not one of {', '.join(_dtypes.REAL)}")
    return name


def _hyper(key: str, value: object) -> object:
    kinds, default = HYPERS[key]
    if value is None and default is None:
        return None  # lr or momentum not known: the audit infers it (nesterov: try both)
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, np.bool_):
        value = bool(value)
    if not hyper_type_ok(key, value):
        raise TypeError(f"{key} must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    if key in RULES:
        check("step", key, float(value))  # type: ignore[arg-type]
        return float(value)  # type: ignore[arg-type]
    return value


def check_steps(steps: object) -> None:
    """``steps`` is None or a count of steps >= 1; else a ValueError naming it."""
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise ValueError(f"steps must be None or an int >= 1, got {steps!r}")


def selection(tensors: Collection[str] | Callable[[str], bool] | None) -> Callable[[str], bool]:
    """Which tensor names ``tensors`` chooses: all, a collection's, or a predicate's."""
    if tensors is None:
        return lambda name: True
    if callable(tensors):
        return tensors
    if isinstance(tensors, str):
        raise TypeError("tensors must be a collection of names or a predicate, got a str")
    chosen = frozenset(tensors)
    return lambda name: name in chosen
