"""nagref's test-vector JSON, read strictly and in bounded memory: :func:`read`.

The file is never built as Python objects. A walk over its tokens
(:mod:`.jsontokens`) directed by the schema knows which keys each object may
hold, refuses an unknown or repeated key before reading its value, and takes
every value as the schema types it: ``"nagref_vectors"`` the integer 1, a
shape's items integers (not ``"37"``, ``37.9``, ``1e999`` or ``true``), a
hyperparameter a ``{"hex", "decimal"}`` float, a boolean, a string or null.
Each list of hex floats goes, a run at a time, straight into one growing
array of the case's dtype, every value checked to be exactly one of that
dtype's; the decimal lists are checked lexically and counted, never built.
So the peak memory is the arrays themselves and a few MB, whatever the file.
"""

from __future__ import annotations

import json
import math
import mmap
from dataclasses import dataclass
from functools import cache
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from .. import _dtypes
from ..vectors import schema
from ..vectors.hexfloat import from_hex
from .jsontokens import MAX_MEMBERS, MalformedError, Tokens

__all__ = ["KEYS", "LR_NAMES", "MU_NAMES", "REQUIRED", "MalformedError", "Vector", "read"]

#: The hyperparameters that name the learning rate and the momentum, the first found first.
LR_NAMES = ("lr", "learning_rate", "alpha", "epsilon", "eta")
MU_NAMES = ("momentum", "mu", "beta")


def _objects() -> dict[str, Any]:
    """The schema of each object a vector holds, by the name the reader uses."""
    vector = schema()
    members = vector["properties"]
    step = members["steps"]["items"]
    return {
        "vector": vector,
        "initial": members["initial"],
        "step": step,
        "expected": step["properties"]["expected"],
        "floats": vector["$defs"]["floats"],
        "recorded_by": members["recorded_by"],
        "spec": members["spec"],
    }


_OBJECTS = _objects()
#: The members the objects of a vector must hold, as the schema requires them.
REQUIRED: dict[str, tuple[str, ...]] = {
    name: tuple(node["required"]) for name, node in _OBJECTS.items()
}
#: The members they may hold; ``spec`` and ``hyperparameters`` are open.
KEYS: dict[str, frozenset[str]] = {
    name: frozenset(node["properties"]) for name, node in _OBJECTS.items() if name != "spec"
}
_MIN_BYTES = 10  # the fewest bytes an element takes in a valid file: "nan", and "nan",


@dataclass(frozen=True)
class Vector:
    """What the audit takes from a test vector: the arrays, and each step's hyperparameters."""

    dtype: str
    shape: tuple[int, ...]
    variant: str
    initial: npt.NDArray[Any]
    grads: npt.NDArray[Any]  # [T, *shape]
    params: npt.NDArray[Any]  # [T, *shape]
    lr: tuple[float, ...]  # each step's
    lr_names: tuple[str, ...]  # the name it goes by in each step
    momentum: tuple[float, ...]  # 0.0 for a step that names none
    momentum_names: tuple[str, ...]  # "momentum" for a step that names none
    nesterov: bool


def read(handle: IO[bytes]) -> Vector:
    """The test vector in ``handle``, an open, non-empty file.

    Raises:
        MalformedError: anything the schema, or the audit, does not allow (one line).
    """
    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _Walk(Tokens(data), len(data)).vector()


@cache
def _conventions() -> frozenset[str]:
    return frozenset(schema()["properties"]["convention"]["enum"])


class _Sink:
    """A flat array that grows in place: the allocator moves its pages, it does not copy them."""

    def __init__(self, dtype: str) -> None:
        self.array: npt.NDArray[Any] = np.empty(0, dtype)
        self.count = 0

    def reserve(self, n: int) -> None:
        if n > self.array.size:
            bigger = np.empty(n, self.array.dtype)  # its pages cost nothing until written
            bigger[: self.count] = self.array[: self.count]
            self.array = bigger

    def extend(self, values: npt.NDArray[Any]) -> None:
        end = self.count + values.size
        if end > self.array.size:
            self.array.resize(max(end, self.array.size * 5 // 4 + 4096), refcheck=False)
        self.array[self.count : end] = values
        self.count = end

    def take(self) -> npt.NDArray[Any]:
        self.array.resize(self.count, refcheck=False)
        return self.array


class _Walk:
    def __init__(self, tokens: Tokens, nbytes: int) -> None:
        self.t, self.nbytes = tokens, nbytes
        self.dtype: str | None = None
        self.shape: tuple[int, ...] | None = None
        self.states: int | None = None
        self.pending: list[tuple[str, int, str]] = []  # (where, count, of what) to check later
        self.sinks = {role: _Sink("float64") for role in ("initial", "grads", "params")}
        self.variant = ""
        self.steps = 0
        self.lr: tuple[list[str], list[float]] = ([], [])  # names (constants) and values
        self.momentum: tuple[list[str], list[float]] = ([], [])
        self.nesterov: bool | None = None

    def vector(self) -> Vector:
        seen = set()
        for key in self.t.members("the file", None):
            if key not in KEYS["vector"]:
                if "nagref_vectors" not in seen:
                    raise MalformedError(f"not a nagref test vector (unknown key {key!r})")
                raise MalformedError(f"unknown key {key!r} for a nagref test vector")
            seen.add(key)
            self.member(key)
        self.t.end()
        if "nagref_vectors" not in seen:
            raise MalformedError('not a nagref test vector (no "nagref_vectors": 1)')
        missing = [k for k in REQUIRED["vector"] if k not in seen]
        if missing:
            raise MalformedError(f"missing key {missing[0]!r}")
        if ("spec" in seen) != ("recorded_by" in seen):
            raise MalformedError("a recording holds both recorded_by and spec, a vector neither")
        assert self.dtype is not None
        assert self.shape is not None
        for where, count, what in self.pending:
            self.check(where, count, what)
        if self.steps == 0:
            raise MalformedError("steps: the trajectory has no steps")
        return Vector(
            self.dtype,
            self.shape,
            self.variant,
            self.array("initial", "initial.param").reshape(self.shape),
            self.array("grads", "grad").reshape((self.steps, *self.shape)),
            self.array("params", "expected.param").reshape((self.steps, *self.shape)),
            tuple(self.lr[1]),
            tuple(self.lr[0]),
            tuple(self.momentum[1]),
            tuple(self.momentum[0]),
            bool(self.nesterov),
        )

    def member(self, key: str) -> None:
        t = self.t
        if key == "nagref_vectors":
            if t.peek() != ord("1") or t.number(key) != b"1":
                raise MalformedError('not a nagref test vector ("nagref_vectors" must be 1)')
        elif key in ("generator", "variant", "case", "function"):
            text = t.string(key)
            if key == "variant":
                self.variant = text
        elif key == "convention":
            if (name := t.string(key)) not in _conventions():
                raise MalformedError(f"convention: {name!r} is not one nagref knows")
        elif key == "dtype":
            if (dtype := t.string(key)) not in _dtypes.REAL:
                wanted = ", ".join(_dtypes.REAL)
                raise MalformedError(f"dtype must be one of {wanted}, got {dtype!r}")
            self.dtype = dtype
        elif key == "shape":
            self.shape = tuple(t.integer(f"shape[{i - 1}]") for i in t.items(key, 32))
            if math.prod(self.shape) * _MIN_BYTES > self.nbytes:
                raise MalformedError(f"shape {list(self.shape)}: more elements than the file holds")
            if math.prod(max(n, 1) for n in self.shape) >= 1 << 48:  # empty, but not a NumPy shape
                raise MalformedError(f"shape {list(self.shape)}: too large for an array")
        elif key == "state_names":
            self.states = 0
            for i in t.items(key, MAX_MEMBERS):
                t.string(f"{key}[{i - 1}]")
                self.states = i
        elif key == "recorded_by":
            for k in t.members(key, KEYS[key], REQUIRED[key]):
                if not t.string(f"{key}.{k}"):
                    raise MalformedError(f"{key}.{k}: an empty string")
        elif key == "spec":
            for k in t.members(key, None, REQUIRED[key]):
                t.skip(f"spec.{k}")
        elif key == "initial":
            for k in t.members(key, KEYS[key], REQUIRED[key]):
                self.param_or_state(key, k, "initial")
        else:
            self.read_steps()

    def read_steps(self) -> None:
        start = self.t.pos
        for step in self.t.items("steps"):
            where = f"step {step}"
            for key in self.t.members(where, KEYS["step"], REQUIRED["step"]):
                if key == "hyperparameters":
                    self.hyperparameters(where)
                elif key == "grad":
                    self.floats(f"{where}: grad", "grads")
                else:
                    inner = f"{where}: expected"
                    for k in self.t.members(inner, KEYS["expected"], REQUIRED["expected"]):
                        self.param_or_state(inner, k, "params")
            self.steps = step
            if step == 1 and self.shape is not None:  # room for the steps the rest can hold
                estimate = 2 + (self.nbytes - self.t.pos) * 21 // 20 // max(self.t.pos - start, 1)
                for role in ("grads", "params"):
                    self.sinks[role].reserve(estimate * math.prod(self.shape))

    def param_or_state(self, where: str, key: str, role: str) -> None:
        if key == "param":
            self.floats(f"{where}.param", role)
            return
        n = 0
        for n in self.t.items(f"{where}.state", MAX_MEMBERS):
            if self.t.peek() != ord("{"):
                if self.t.literal(f"{where}.state[{n - 1}]") is not None:
                    raise self.t.fail(f"{where}.state[{n - 1}]", "an object or null")
            else:
                self.floats(f"{where}.state[{n - 1}]", None)
        self.check(f"{where}.state", n, "states")

    def floats(self, where: str, role: str | None) -> None:
        """A ``{"hex": [...], "decimal": [...]}`` entry; its values go to the sink ``role``."""
        counts = {}
        for key in self.t.members(where, KEYS["floats"], REQUIRED["floats"]):
            if key == "hex":
                counts[key] = self.hex(f"{where}.hex", role)
            else:
                counts[key] = self.t.decimals(f"{where}.decimal")
        if counts["hex"] != counts["decimal"]:
            raise MalformedError(
                f"{where}: {counts['hex']} hex and {counts['decimal']} decimal values"
            )
        self.check(where, counts["hex"], "values")

    def hex(self, where: str, role: str | None) -> int:
        sink = None if role is None else self.sinks[role]
        if sink is not None and sink.count == 0 and self.dtype is not None:
            sink.array = np.empty(sink.array.size, self.dtype)
            if role == "initial" and self.shape is not None:
                sink.reserve(math.prod(self.shape))
        limit = math.inf if self.shape is None else math.prod(self.shape)
        n = 0
        for values in self.t.hex_floats(where, self.dtype or "float64"):
            n += values.size
            if n > limit:
                raise MalformedError(f"{where}: more than {limit} values for the shape")
            if sink is not None:
                sink.extend(values)
        return n

    def check(self, where: str, count: int, what: str) -> None:
        """``count`` values (or states) must match the shape (or the state names)."""
        if what == "states":
            wanted = self.states
        else:
            wanted = None if self.shape is None else math.prod(self.shape)
        if wanted is None:  # not read yet: check at the end
            self.pending.append((where, count, what))
        elif count != wanted:
            raise MalformedError(f"{where}: {count} {what}, expected {wanted}")

    def hyperparameters(self, where: str) -> None:
        given: dict[str, float | bool | str | None] = {}
        for key in self.t.members(f"{where}: hyperparameters", None):
            name = f"{where}: hyperparameter {key!r}"
            c = self.t.peek()
            if c == ord("{"):
                given[key] = self.scalar(name)
            else:
                given[key] = self.t.string(name) if c == ord('"') else self.t.literal(name)
        for (names, values), group in ((self.lr, LR_NAMES), (self.momentum, MU_NAMES)):
            name, value = self.named(where, group, given, required=group is LR_NAMES)
            names.append(name)
            values.append(value)
        key = "nesterov" if "nesterov" in given else "use_nesterov"
        flag = given.get(key, False)
        if not isinstance(flag, bool):
            raise MalformedError(f"{where}: {key} must be true or false, got {json.dumps(flag)}")
        if self.nesterov is not None and flag != self.nesterov:
            raise MalformedError(f"{where}: {key} is {json.dumps(flag)}, unlike the step before")
        self.nesterov = flag

    @staticmethod
    def named(
        where: str, names: tuple[str, ...], given: dict[str, Any], *, required: bool
    ) -> tuple[str, float]:
        for name in names:
            if name in given:
                value = given[name]
                if isinstance(value, float):
                    return name, value
                got = json.dumps(value)
                raise MalformedError(f'{where}: {name} must be a float {{"hex", ...}}, got {got}')
        if required:
            raise MalformedError(f"{where} has no learning rate ({', '.join(names)})")
        return names[0], 0.0

    def scalar(self, where: str) -> float:
        value = 0.0
        for key in self.t.members(where, KEYS["floats"], REQUIRED["floats"]):
            text = self.t.string(f"{where}.{key}", 64 if key == "hex" else 4096)
            if key == "hex":
                try:
                    value = from_hex(text)
                except ValueError as error:
                    raise MalformedError(f"{where}.hex: {error}") from None
        return value

    def array(self, role: str, where: str) -> npt.NDArray[Any]:
        """The sink ``role``'s values in the case's dtype (checked, if read before the dtype)."""
        values = self.sinks[role].take()
        assert self.dtype is not None
        if values.dtype != self.dtype:  # the floats came before the dtype in the file
            with np.errstate(over="ignore", under="ignore"):
                narrow = values.astype(self.dtype)
            same = np.isnan(values) | (narrow.astype(np.float64) == values)
            same &= np.signbit(narrow) == np.signbit(values)
            if not same.all():
                i = int(np.argmin(same))
                raise MalformedError(f"{where}: value {i} is not a {self.dtype} value")
            values = narrow
        return values
