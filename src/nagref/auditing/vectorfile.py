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
A bfloat16 array's ``bits`` go into 16-bit words, which become the array
once each is checked to be its hex float's value. The states are checked
(against every dtype, as ``state_dtype`` may come last), not kept.
So the peak memory is the arrays themselves and a few MB, whatever the file.
"""

from __future__ import annotations

import json
import math
import mmap
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from .. import _dtypes
from ..conventions import keyword_names
from ..vectors import hexfloat
from ..vectors.catalogue import CONVENTIONS
from ..vectors.encode import members
from .jsontokens import MAX_MEMBERS, MalformedError, Tokens

__all__ = ["KEYS", "LR_NAMES", "MU_NAMES", "REQUIRED", "MalformedError", "Vector", "read"]

#: The hyperparameters that name the learning rate and the momentum, the first found first
#: (the rules' and formulations' names, then each convention's own).
LR_NAMES = keyword_names("lr", "lr", "learning_rate", "alpha", "epsilon", "eta")
MU_NAMES = keyword_names("momentum", "momentum", "mu", "beta")
#: The hyperparameters one value holds for a whole run: each name it goes by, and its default.
FIXED: dict[str, tuple[tuple[str, ...], bool | float]] = {  # weight_decay: the framework's own
    name: (keyword_names(name, name), default) for name, default in
    (("nesterov", False), ("dampening", 0.0), ("weight_decay", 0.0), ("maximize", False))
}  # fmt: skip

#: The members the objects of a vector must hold, and may hold (``spec`` and
#: ``hyperparameters`` are open), as the schema says: :func:`..vectors.encode.members`.
REQUIRED, KEYS = members()
_MIN_BYTES = 10  # the fewest bytes an element takes in a valid file: "nan", and "nan",
assert len(hexfloat.BITS_DTYPES) == 1  # bits read before the dtype are taken to be its
_BITS_KIND = hexfloat.numpy_dtype(hexfloat.BITS_DTYPES[0])


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
    dampening: float = 0.0
    weight_decay: float = 0.0
    maximize: bool = False


def read(handle: IO[bytes]) -> Vector:
    """The test vector in ``handle``, an open, non-empty file.

    Raises:
        MalformedError: anything the schema, or the audit, does not allow (one line).
    """
    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _Walk(Tokens(data), len(data)).vector()


class _Sink:
    """A flat array that grows in place: the allocator moves its pages, it does not copy them."""

    def __init__(self, dtype: str | np.dtype[Any]) -> None:
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
        self.kind: np.dtype[Any] | None = None  # the dtype's NumPy dtype
        self.state_kind: np.dtype[Any] | None = None  # state_dtype's, where the file has one
        # a state value that is not of each dtype, the first one's place and why
        self.misfit: dict[str, str] = {}
        self.shape: tuple[int, ...] | None = None
        self.states: int | None = None
        self.pending: list[tuple[str, int, str]] = []  # (where, count, of what) to check later
        roles = ("initial", "grads", "params", "state")  # "state": one entry at a time
        self.sinks = {role: _Sink("float64") for role in roles}
        self.bits = {role: _Sink(np.dtype(np.uint16)) for role in roles}
        # the first parameter (state) array with bits, and without: checked against the dtype
        self.first: dict[tuple[str, bool], str] = {}
        self.variant = ""
        self.steps = 0
        self.lr: tuple[list[str], list[float]] = ([], [])  # names (constants) and values
        self.momentum: tuple[list[str], list[float]] = ([], [])
        self.fixed: dict[str, bool | float] = {}  # FIXED's, as the first step gives them

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
        assert self.kind is not None
        assert self.shape is not None
        for where, count, what in self.pending:
            self.check(where, count, what)
        if self.steps == 0:
            raise MalformedError("steps: the trajectory has no steps")
        state = self.state_kind or self.kind
        if state.name in self.misfit:
            raise MalformedError(self.misfit[state.name])
        for (category, bits), where in self.first.items():
            self.bits_allowed(where, bits, self.kind if category == "param" else state)
        fixed = self.fixed
        return Vector(
            self.dtype, self.shape, self.variant,
            self.array("initial", "initial.param").reshape(self.shape),
            self.array("grads", "grad").reshape((self.steps, *self.shape)),
            self.array("params", "expected.param").reshape((self.steps, *self.shape)),
            tuple(self.lr[1]), tuple(self.lr[0]), tuple(self.momentum[1]), tuple(self.momentum[0]),
            bool(fixed["nesterov"]), float(fixed["dampening"]), float(fixed["weight_decay"]),
            bool(fixed["maximize"]),
        )  # fmt: skip

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
            if (name := t.string(key)) not in CONVENTIONS:
                raise MalformedError(f"convention: {name!r} is not one nagref knows")
        elif key in ("dtype", "state_dtype"):  # the parameters', and the state's if not theirs
            if (dtype := t.string(key)) not in _dtypes.REAL:
                raise MalformedError(
                    f"{key} must be one of {', '.join(_dtypes.REAL)}, got {dtype!r}"
                )
            kind, category = hexfloat.numpy_dtype(dtype), "param" if key == "dtype" else "state"
            if key == "dtype":
                self.dtype, self.kind = dtype, kind
            else:
                self.state_kind = kind
            for (where_category, bits), where in self.first.items():
                if where_category == category:
                    self.bits_allowed(where, bits, kind)
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
                    sink = self.bits[role] if self.kind == _BITS_KIND else self.sinks[role]
                    sink.reserve(estimate * math.prod(self.shape))

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
        """A ``{"hex", "decimal"[, "bits"]}`` entry, into the sink ``role`` (a state's: scratch)."""
        role = role or "state"
        values, bits = self.sinks[role], self.bits[role]
        if role == "state":
            values.count = bits.count = 0
        start, first = values.count, bits.count
        counts = {}
        for key in self.t.members(where, KEYS["floats"], REQUIRED["floats"]):
            if key == "hex":
                counts[key] = self.hex(f"{where}.hex", role)
            elif key == "bits":
                counts[key] = 0
                for words in self.t.bit_patterns(f"{where}.bits"):
                    counts[key] = self.extend(f"{where}.bits", role, bits, words, counts[key])
            else:
                counts[key] = self.t.decimals(f"{where}.decimal")
        if counts["hex"] != counts["decimal"]:
            raise MalformedError(
                f"{where}: {counts['hex']} hex and {counts['decimal']} decimal values"
            )
        has_bits = "bits" in counts
        category = "state" if role == "state" else "param"
        self.first.setdefault((category, has_bits), where)
        kind = self.kind if category == "param" else self.state_kind
        if kind is not None:  # a state's dtype is the parameters' only if no state_dtype follows
            self.bits_allowed(where, has_bits, kind)
        if has_bits:
            if counts["bits"] != counts["hex"]:
                n, m = counts["bits"], counts["hex"]
                raise MalformedError(f"{where}: {n} bits and {m} hex values")
            words, hexes = bits.array[first : bits.count], values.array[start : values.count]
            if (problem := hexfloat.disagreement(words, hexes, _BITS_KIND)) is not None:
                raise MalformedError(f"{where}.{problem}")
            values.count = start  # the bits hold the values: the hex floats were a check
        self.check(where, counts["hex"], "values")

    @staticmethod
    def bits_allowed(where: str, has_bits: bool, kind: np.dtype[Any]) -> None:
        """Bits in every bfloat16 array of a vector, and in no other."""
        if (problem := hexfloat.bits_rule(has_bits, kind.name)) is not None:
            raise MalformedError(f"{where}: {problem}")

    def hex(self, where: str, role: str) -> int:
        """Hex floats into the sink ``role``; a state's checked against every dtype."""
        sink, kind = self.sinks[role], None if role == "state" else self.kind
        if sink.count == 0 and kind is not None:
            sink.array = np.empty(sink.array.size, kind)
        n = 0
        for values in self.t.hex_floats(where, kind or np.dtype(np.float64)):
            for name in _dtypes.REAL if role == "state" else ():
                if name not in self.misfit and (i := hexfloat.misfit(values, name)) is not None:
                    value = hexfloat.to_hex(float(values[i]))
                    self.misfit[name] = f"{where}[{n + i}]: {value} is not a {name} value"
            n = self.extend(where, role, sink, values, n)
        return n

    def extend(self, where: str, role: str, sink: _Sink, values: npt.NDArray[Any], n: int) -> int:
        """``n`` values of a list read, and ``values`` more: into ``sink``, within the shape."""
        limit = math.inf if self.shape is None else math.prod(self.shape)
        if n + values.size > limit:
            raise MalformedError(f"{where}: more than {limit} values for the shape")
        if role == "initial" and n == 0 and sink.count == 0 and self.shape is not None:
            sink.reserve(math.prod(self.shape))
        sink.extend(values)
        return n + values.size

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
        for field, (aliases, default) in FIXED.items():
            key = next((alias for alias in aliases if alias in given), aliases[0])
            found = given.get(key, default)
            setting = default if found is None and not isinstance(default, bool) else found
            if not isinstance(setting, bool | float) or type(setting) is not type(default):
                wanted = "true or false" if isinstance(default, bool) else 'a float {"hex", ...}'
                raise MalformedError(f"{where}: {key} must be {wanted}, got {json.dumps(setting)}")
            if self.fixed.setdefault(field, setting) != setting:
                got = json.dumps(setting)
                raise MalformedError(f"{where}: {key} is {got}, unlike the step before")

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
        for key in self.t.members(where, KEYS["float"], REQUIRED["float"]):
            text = self.t.string(f"{where}.{key}", 64 if key == "hex" else 4096)
            if key == "hex":
                try:
                    value = hexfloat.from_hex(text)
                except ValueError as error:
                    raise MalformedError(f"{where}.hex: {error}") from None
        return value

    def array(self, role: str, where: str) -> npt.NDArray[Any]:
        """The sink ``role``'s values in the case's dtype (checked, if read before the dtype)."""
        assert self.kind is not None
        if (
            self.kind.name in hexfloat.BITS_DTYPES
        ):  # every array had bits (checked): they are the values
            return self.bits[role].take().view(self.kind)
        values = self.sinks[role].take()
        if values.dtype != self.kind:  # the floats came before the dtype in the file
            if (i := hexfloat.misfit(values, self.kind)) is not None:
                raise MalformedError(f"{where}: value {i} is not a {self.dtype} value")
            with np.errstate(over="ignore", under="ignore"):
                values = values.astype(self.kind)
        return values
