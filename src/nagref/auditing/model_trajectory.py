"""A whole model's trajectory (``.trajectory``): written step by step, read lazily.

A run's file holds named tensors (a ``state_dict``'s names, a pytree's
paths), each tensor's group, the groups' hyperparameters at every step and
what recorded it (framework, version, threads). :class:`nagref.record.TrajectoryWriter`
appends one step at a time, so a recording never holds the run in memory
and a run that stops midway leaves every step it finished readable.
:func:`open_model` reads only the records' headers and keeps their offsets;
an array is read when the audit asks for it, so the audit holds about one
step of one tensor beyond its replays.

Layout, version 1 (integers little-endian)::

    b"NAGREF-TRAJECTORY 1\\n"
    then records, each: uint32 n | n bytes: a JSON object | "nbytes" bytes of payload

in this order:

* ``{"record": "run", "framework", "version", "optimizer", "threads", "options"}``, once;
* ``{"record": "tensor", "name", "group", "dtype", "shape", "nbytes"}`` and the tensor
  before the first step, one per recorded tensor;
* for each step t = 1, 2, ...: ``{"record": "step", "step": t, "groups": [{"lr",
  "momentum", "dampening", "weight_decay", "nesterov", "maximize"}, ...]}``, then for
  each tensor the step updated ``{"record": "grad", "step": t, "tensor": k, "nbytes"}``
  with its gradient and ``{"record": "param", ...}`` with the tensor after the step;
* ``{"record": "end", "steps": T}`` when the recording was closed.

Arrays are C-ordered and little-endian; bfloat16 as its 16-bit patterns. A
tensor without a gradient at a step (PyTorch's ``grad is None``) has no
records there: the optimizer left it and its state alone.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from .. import _dtypes
from .trajectory import RULES, TrajectoryError, check

__all__ = ["HYPERS", "LENGTH", "MAGIC", "MAX_HEADER", "MAX_NAME", "SUFFIX", "GroupSteps",
           "ModelTrajectory", "TensorEntry", "hyper_type_ok", "open_model",
           "stored_dtype"]  # fmt: skip

MAGIC = b"NAGREF-TRAJECTORY 1\n"
SUFFIX = ".trajectory"
#: A record's JSON header is at most this long; a name, this long.
MAX_HEADER = 1 << 16
MAX_NAME = 1000
#: A record header's length, before it.
LENGTH = struct.Struct("<I")
#: A group's hyperparameters: name -> (JSON types accepted, default). lr and momentum
#: may change at every step; the others are the run's, fixed.
HYPERS: dict[str, tuple[tuple[type, ...], object]] = {
    "lr": ((int, float), None),
    "momentum": ((int, float), None),
    "dampening": ((int, float), 0.0),
    "weight_decay": ((int, float), 0.0),
    "nesterov": ((bool, type(None)), None),
    "maximize": ((bool,), False),
}
_FIXED = ("dampening", "weight_decay", "nesterov", "maximize")


def hyper_type_ok(key: str, value: object) -> bool:
    """Whether ``value`` is the JSON type :data:`HYPERS` wants for ``key``, a bool no number."""
    kinds, _ = HYPERS[key]
    if float in kinds:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kinds)


def stored_dtype(name: str) -> np.dtype[Any]:
    """The dtype a record stores dtype ``name`` as: little-endian; bfloat16 as uint16 bits."""
    kind: np.dtype[Any] = np.dtype(np.uint16) if name == "bfloat16" else _dtypes.numpy_dtype(name)
    little: np.dtype[Any] = kind.newbyteorder("<")
    return little


# -- reading -------------------------------------------------------------------------------


@dataclass
class TensorEntry:
    """One recorded tensor: where its arrays lie in the file, by step."""

    index: int
    name: str
    group: int
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    initial_at: int
    steps: array[int] = field(default_factory=lambda: array("q"))  # the steps it was updated
    grad_at: array[int] = field(default_factory=lambda: array("q"))
    param_at: array[int] = field(default_factory=lambda: array("q"))

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass
class GroupSteps:
    """A group's hyperparameters: lr and momentum at each step (NaN where the recording
    does not say), the rest fixed."""

    lr: array[float] = field(default_factory=lambda: array("d"))
    momentum: array[float] = field(default_factory=lambda: array("d"))
    fixed: dict[str, object] = field(default_factory=dict)
    recorded: dict[str, bool] = field(default_factory=dict)  # lr, momentum: given or not


@dataclass
class ModelTrajectory:
    """A ``.trajectory`` file's index: its run, tensors and groups; arrays read on demand."""

    source: str
    run: dict[str, object]
    tensors: list[TensorEntry]
    groups: list[GroupSteps]
    steps: int
    complete: bool  # the recording was closed (its ``end`` record), not cut off
    _path: Path
    _handle: IO[bytes] | None = None

    def __enter__(self) -> ModelTrajectory:
        """Hold one open handle that every :meth:`read` uses, until the ``with`` ends."""
        if self._handle is None:
            try:
                self._handle = open(self._path, "rb")  # closed by __exit__
            except OSError as error:
                why = error.strerror or error
                raise TrajectoryError(f"{self.source}: cannot read: {why}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def read(self, entry: TensorEntry, offset: int) -> npt.NDArray[Any]:
        """The array at ``offset`` of ``entry``'s dtype and shape (outside a ``with``, the
        file is opened for this one read)."""
        if self._handle is None:
            with self:
                return self.read(entry, offset)
        self._handle.seek(offset)
        data = np.fromfile(self._handle, dtype=stored_dtype(entry.dtype), count=entry.size)
        if data.size != entry.size:
            raise TrajectoryError(f"{self.source}: the file changed while it was read")
        # native byte order, as NumPy's own dtype (a "<f" buffer is no "f" to the C kernels)
        if sys.byteorder != "little":
            data = data.byteswap()
        native: npt.NDArray[Any] = data.view(_dtypes.numpy_dtype(entry.dtype))
        return native.reshape(entry.shape)


def open_model(path: str | os.PathLike[str]) -> ModelTrajectory:
    """Index a ``.trajectory`` file: every header checked, no array read.

    Raises:
        TrajectoryError: the file is not a readable, consistent recording.
    """
    file = Path(path)
    where = str(file)
    try:
        size = file.stat().st_size
        handle = open(file, "rb")  # noqa: SIM115
    except OSError as error:
        raise TrajectoryError(f"{where}: cannot read: {error.strerror or error}") from None
    with handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise TrajectoryError(f"{where}: not a nagref trajectory (no {MAGIC[:-1]!r} header)")
        return _Indexer(where, file, handle, size).index()


class _Indexer:
    def __init__(self, where: str, file: Path, handle: IO[bytes], size: int) -> None:
        self.where, self.file, self.handle, self.size = where, file, handle, size
        self.tensors: list[TensorEntry] = []
        self.names: set[str] = set()
        self.groups: list[GroupSteps] = []
        self.run: dict[str, object] | None = None
        self.step = 0
        self.pending: dict[int, int] = {}  # tensor -> its grad's offset, this step

    def fail(self, why: str) -> TrajectoryError:
        return TrajectoryError(f"{self.where}: {why}")

    def index(self) -> ModelTrajectory:
        complete = False
        while (record := self._next()) is not None:
            header, offset = record
            kind = header.get("record")
            if self.run is None and kind != "run":
                raise self.fail("the first record must be the run's, got " + repr(kind)[:40])
            if kind == "end":
                if header.get("steps") != self.step or self.pending:
                    raise self.fail(f"the end record says {header.get('steps')!r} steps after "
                                    f"{self.step}")  # fmt: skip
                if self.handle.read(1):
                    raise self.fail("data after the end record")
                complete = True
                break
            getattr(self, f"_{kind}", self._unknown)(header, offset)
        # Cut off (no end record): the last step may be half written, and is dropped.
        steps = self.step if complete else max(self.step - 1, 0)
        if not complete:
            for entry in self.tensors:
                while entry.steps and entry.steps[-1] > steps:
                    entry.steps.pop(), entry.grad_at.pop(), entry.param_at.pop()
            for group in self.groups:
                del group.lr[steps:], group.momentum[steps:]
        if self.run is None:
            raise self.fail("no run record")
        if not self.tensors:
            raise self.fail("no tensors were recorded")
        if steps == 0:
            raise self.fail("no complete step was recorded")
        return ModelTrajectory(self.where, self.run, self.tensors, self.groups, steps, complete,
                               self.file)  # fmt: skip

    def _next(self) -> tuple[dict[str, Any], int] | None:
        raw = self.handle.read(4)
        if len(raw) < 4:
            return None  # the end, or a length cut off: the run stopped there
        (length,) = LENGTH.unpack(raw)
        if not 2 <= length <= MAX_HEADER:
            raise self.fail(f"a record header of {length} bytes (from 2 to at most {MAX_HEADER})")
        text = self.handle.read(length)
        if len(text) < length:
            return None
        try:
            header = json.loads(text)
        except (ValueError, RecursionError):
            raise self.fail(f"a record header at byte {self.handle.tell() - length} is not "
                            "JSON") from None  # fmt: skip
        if not isinstance(header, dict):
            raise self.fail("a record header is not a JSON object")
        offset = self.handle.tell()
        nbytes = header.get("nbytes", 0)
        if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 0:
            raise self.fail(f"nbytes must be an int >= 0, got {nbytes!r:.40}")
        if offset + nbytes > self.size:
            return None  # its payload cut off
        self.handle.seek(offset + nbytes)
        return header, offset

    def _unknown(self, header: dict[str, Any], offset: int) -> None:
        raise self.fail(f"unknown record {header.get('record')!r:.40}")

    def _run(self, header: dict[str, Any], offset: int) -> None:
        if self.run is not None:
            raise self.fail("a second run record")
        for key in ("framework", "version", "optimizer"):
            if not isinstance(header.get(key), str):
                raise self.fail(f"the run's {key} must be a string, got {header.get(key)!r:.40}")
        threads = header.get("threads")
        if threads is not None and (type(threads) is not int or threads < 1):
            raise self.fail(f"the run's threads must be null or an int >= 1, got {threads!r:.40}")
        if not isinstance(header.get("options", {}), dict):
            raise self.fail("the run's options must be an object")
        self.run = {k: v for k, v in header.items() if k != "record"}

    def _tensor(self, header: dict[str, Any], offset: int) -> None:
        if self.step:
            raise self.fail("a tensor record after the first step")
        name, group, dtype = header.get("name"), header.get("group"), header.get("dtype")
        shape = header.get("shape")
        if not isinstance(name, str) or len(name) > MAX_NAME or name in self.names:
            raise self.fail(f"a tensor's name must be a new string, got {name!r:.60}")
        if type(group) is not int or not 0 <= group < 10_000:
            raise self.fail(f"tensor {name!r}: group must be an int in [0, 10000), "
                            f"got {group!r:.40}")  # fmt: skip
        if dtype not in _dtypes.REAL:
            raise self.fail(f"tensor {name!r}: dtype must be one of {', '.join(_dtypes.REAL)}, "
                            f"got {dtype!r:.40}")  # fmt: skip
        if (not isinstance(shape, list) or len(shape) > 32
                or not all(type(d) is int and d >= 0 for d in shape)):  # fmt: skip
            raise self.fail(f"tensor {name!r}: shape must be a list of ints >= 0, "
                            f"got {shape!r:.60}")  # fmt: skip
        nbytes = math.prod(shape) * stored_dtype(dtype).itemsize
        if header["nbytes"] != nbytes:
            raise self.fail(f"tensor {name!r}: shape {shape} of {dtype} is {nbytes} bytes, "
                            f"but its record holds {header['nbytes']}")  # fmt: skip
        self.tensors.append(TensorEntry(len(self.tensors), name, group, dtype, tuple(shape),
                                        nbytes, offset))  # fmt: skip
        self.names.add(name)

    def _step(self, header: dict[str, Any], offset: int) -> None:
        if self.pending:
            raise self.fail(f"step {self.step}: a grad without its param")
        if header.get("step") != self.step + 1:
            raise self.fail(f"step {header.get('step')!r:.20} follows step {self.step}")
        rows = header.get("groups")
        needed = max((t.group for t in self.tensors), default=-1) + 1
        if not isinstance(rows, list) or not needed <= len(rows) <= 10_000:
            raise self.fail(f"step {self.step + 1}: groups must be a list of at least {needed}")
        if self.groups and len(rows) != len(self.groups):
            raise self.fail(f"step {self.step + 1}: {len(rows)} groups after {len(self.groups)}")
        self.step += 1
        while len(self.groups) < len(rows):
            self.groups.append(GroupSteps())
        for number, (row, group) in enumerate(zip(rows, self.groups, strict=False)):
            self._hypers(number, row, group)

    def _hypers(self, number: int, row: object, group: GroupSteps) -> None:
        at = f"step {self.step}, group {number}"
        if not isinstance(row, dict):
            raise self.fail(f"{at}: hyperparameters must be an object")
        for key, (kinds, default) in HYPERS.items():
            value = row.get(key, default)
            if key in ("lr", "momentum"):  # absent or null: not recorded, the audit infers it
                given = group.recorded.setdefault(key, value is not None)
                if given != (value is not None):
                    raise self.fail(f"{at}: {key} is recorded at some steps and not at others")
                if value is None:
                    continue
            if not hyper_type_ok(key, value):
                raise self.fail(f"{at}: {key} must be {' or '.join(k.__name__ for k in kinds)}, "
                                f"got {value!r:.40}")  # fmt: skip
            if key in RULES:
                check(f"{self.where}: {at}", key, float(value))
            if key in _FIXED:
                known = group.fixed.setdefault(key, value)
                if known != value:
                    raise self.fail(f"{at}: {key} changed from {known!r} to {value!r}; the audit "
                                    "replays a run whose only per-step hyperparameters are lr "
                                    "and momentum")  # fmt: skip
        group.lr.append(math.nan if row.get("lr") is None else float(row["lr"]))
        group.momentum.append(math.nan if row.get("momentum") is None else float(row["momentum"]))

    def _tensor_of(self, header: dict[str, Any], role: str) -> TensorEntry:
        k = header.get("tensor")
        if header.get("step") != self.step or self.step == 0:
            raise self.fail(f"a {role} record of step {header.get('step')!r:.20} "
                            f"in step {self.step}")  # fmt: skip
        if type(k) is not int or not 0 <= k < len(self.tensors):
            raise self.fail(f"step {self.step}: a {role} record of unknown tensor {k!r:.20}")
        entry = self.tensors[k]
        if header["nbytes"] != entry.nbytes:
            raise self.fail(f"step {self.step}: tensor {entry.name!r}'s {role} holds "
                            f"{header['nbytes']} bytes, not {entry.nbytes}")  # fmt: skip
        return entry

    def _grad(self, header: dict[str, Any], offset: int) -> None:
        entry = self._tensor_of(header, "grad")
        if entry.index in self.pending or (entry.steps and entry.steps[-1] == self.step):
            raise self.fail(f"step {self.step}: tensor {entry.name!r} has two grads")
        self.pending[entry.index] = offset

    def _param(self, header: dict[str, Any], offset: int) -> None:
        entry = self._tensor_of(header, "param")
        if entry.index not in self.pending:
            raise self.fail(f"step {self.step}: tensor {entry.name!r}'s param before its grad")
        entry.steps.append(self.step)
        entry.grad_at.append(self.pending.pop(entry.index))
        entry.param_at.append(offset)
