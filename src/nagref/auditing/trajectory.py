"""A recorded trajectory, and its loaders: ``.npz`` and nagref's vector JSON.

Both loaders check everything before anything is replayed and raise
:class:`TrajectoryError` (a ``ValueError``) with one line naming the file and
the offending key or value, as a hand-built :class:`Trajectory` is checked.
They never unpickle, refuse a file or an array over :data:`MAX_BYTES` before
reading it, and hold no more than the arrays: an ``.npz`` member is read into
its own array once; a JSON vector is streamed (:mod:`.vectorfile`).

``.npy`` has no bfloat16: an ``.npz`` says ``dtype="bfloat16"`` and holds the bits,
as ``uint16`` or the ``|V2`` ``np.save`` writes for ``ml_dtypes.bfloat16``, viewed,
not copied. Raw ``|V2`` without that ``dtype`` is refused, never guessed at.
"""

from __future__ import annotations

import math
import numbers
import os
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np
import numpy.typing as npt

from .. import _dtypes
from ..vectors.hexfloat import BITS_DTYPES, numpy_dtype
from . import vectorfile

__all__ = ["MAX_BYTES", "NPZ_KEYS", "RULES", "Trajectory", "TrajectoryError", "check", "load"]

#: The largest file, and the largest total of uncompressed arrays, accepted.
MAX_BYTES = 1 << 30
#: The arrays an ``.npz`` trajectory may hold; the first three are required (without lr or
#: momentum, the audit infers them). ``dtype`` names the arrays' dtype where not theirs.
NPZ_KEYS = ("initial", "grads", "params", "lr", "momentum", "nesterov", "dampening",
            "weight_decay", "maximize", "dtype")  # fmt: skip
#: What each hyperparameter must be, for both loaders and a hand-built Trajectory.
RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr": (lambda x: 0.0 <= x < math.inf, "finite and >= 0"),
    "momentum": (lambda x: 0.0 <= x < 1.0, "in [0, 1)"),
    "dampening": (lambda x: 0.0 <= x <= 1.0, "in [0, 1]"),
    "weight_decay": (lambda x: 0.0 <= x < math.inf, ">= 0"),
}
_DTYPES = _dtypes.REAL
_ARRAYS = ("initial", "grads", "params")
_NESTEROV_VARIANTS = ("nag", "sutskever_nag", "bengio", "dozat", "nesterov_1983")


class TrajectoryError(ValueError):
    """A trajectory file that cannot be audited, with the reason in one line."""


def check(where: str, rule: str, value: float, *, name: str = "", step: int = 0) -> float:
    """``value`` if it satisfies ``RULES[rule]``; else one line naming it (and its step)."""
    ok, wanted = RULES[rule]
    if not ok(value):
        at = f" at step {step}" if step else ""
        raise TrajectoryError(f"{where}: {name or rule} must be {wanted}, got {value!r}{at}")
    return value


@dataclass(frozen=True)
class Trajectory:
    """T steps of an optimizer on one parameter array.

    ``params[t]`` is the parameter after step t + 1, computed from
    ``params[t - 1]`` (``initial`` for t = 0) and ``grads[t]``, with
    ``lr[t]`` and ``momentum[t]`` (None: not recorded, inferred). Checked on
    construction: a wrong type is a ``TypeError``, a wrong shape, dtype or
    value a :class:`TrajectoryError`, each naming the field.
    """

    initial: npt.NDArray[Any]
    grads: npt.NDArray[Any]
    params: npt.NDArray[Any]
    lr: tuple[float, ...] | None
    momentum: tuple[float, ...] | None
    nesterov: bool | None = None  # None: not recorded, try both
    dampening: float = 0.0
    weight_decay: float = 0.0
    source: str = ""
    maximize: bool = False  # the gradient ascended (torch's maximize=True)

    def __post_init__(self) -> None:
        if not isinstance(self.source, str):
            raise TypeError(f"Trajectory: source must be a str, got {type(self.source).__name__}")
        where = self.source or "Trajectory"
        for key in ("initial", "grads", "params"):
            if not isinstance(getattr(self, key), np.ndarray):
                got = type(getattr(self, key)).__name__
                raise TypeError(f"{where}: {key} must be a NumPy array, got {got}")
        steps = _check_arrays(where, self.initial, self.grads, self.params)
        for key in ("lr", "momentum"):
            if (values := getattr(self, key)) is None:
                continue
            if not isinstance(values, (tuple, list)) or not all(map(_real, values)):
                raise TypeError(f"{where}: {key} must be a tuple of floats, one per step, or None")
            if len(values) != steps:
                raise TrajectoryError(f"{where}: {len(values)} {key} values for {steps} steps")
            values = tuple(check(where, key, float(v), step=t) for t, v in enumerate(values, 1))
            object.__setattr__(self, key, values)
        if self.nesterov is not None and not isinstance(self.nesterov, (bool, np.bool_)):
            raise TypeError(f"{where}: nesterov must be True, False or None, got {self.nesterov!r}")
        if self.nesterov is not None:
            object.__setattr__(self, "nesterov", bool(self.nesterov))
        if not isinstance(self.maximize, (bool, np.bool_)):
            raise TypeError(f"{where}: maximize must be True or False, got {self.maximize!r}")
        object.__setattr__(self, "maximize", bool(self.maximize))
        for key in ("dampening", "weight_decay"):
            if not _real(getattr(self, key)):
                raise TypeError(f"{where}: {key} must be a real number, got {getattr(self, key)!r}")
            object.__setattr__(self, key, check(where, key, float(getattr(self, key))))

    @property
    def steps(self) -> int:
        return int(self.grads.shape[0])

    @property
    def dtype(self) -> str:
        return str(self.initial.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.initial.shape)

    threads: ClassVar[None] = None  # the run's thread count: an .npz or a vector does not say


def _real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_arrays(
    where: str, initial: npt.NDArray[Any], grads: npt.NDArray[Any], params: npt.NDArray[Any]
) -> int:
    """The number of steps, once the three arrays' dtypes and shapes agree."""
    for key, value in (("initial", initial), ("grads", grads), ("params", params)):
        if str(value.dtype) not in _DTYPES:
            raise TrajectoryError(
                f"{where}: {key} has dtype {value.dtype}; expected one of {', '.join(_DTYPES)}"
            )
    if grads.dtype != initial.dtype or params.dtype != initial.dtype:
        raise TrajectoryError(
            f"{where}: initial, grads and params must share a dtype, got "
            f"{initial.dtype}, {grads.dtype} and {params.dtype}"
        )
    if grads.ndim == 0 or grads.shape[1:] != initial.shape:
        raise TrajectoryError(
            f"{where}: grads has shape {grads.shape}; expected (T, *{initial.shape})"
        )
    if params.shape != grads.shape:
        raise TrajectoryError(
            f"{where}: params has shape {params.shape} but grads has shape {grads.shape}"
        )
    if grads.shape[0] == 0:
        raise TrajectoryError(f"{where}: the trajectory has no steps (T = 0)")
    return int(grads.shape[0])


def load(path: str | os.PathLike[str]) -> Trajectory:
    """Read a ``.npz`` trajectory or a test-vector ``.json`` file.

    Raises:
        TrajectoryError: the file cannot be read or is not a valid trajectory.
        TypeError: ``path`` is not a str or ``os.PathLike`` of one.
    """
    try:
        name = os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    if not isinstance(name, str):
        got = f"{type(name).__name__} {name!r:.60}"
        raise TypeError(f"path must be a str or os.PathLike of one, got {got}")
    file = Path(name)
    try:
        info = file.stat()
    except FileNotFoundError:
        raise TrajectoryError(f"{file}: no such file") from None
    except (OSError, ValueError) as error:
        raise TrajectoryError(f"{file}: cannot read: {_reason(error)}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "is a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise TrajectoryError(f"{file}: {kind}")
    if info.st_size == 0:
        raise TrajectoryError(f"{file}: the file is empty")
    if info.st_size > MAX_BYTES:
        raise TrajectoryError(f"{file}: {info.st_size} bytes is over the limit of {MAX_BYTES}")
    if file.suffix not in (".json", ".npz"):  # a whole run's .trajectory: audit_model
        run = " (a whole run: nagref.audit reads it)" if file.suffix == ".trajectory" else ""
        got = f"{file.suffix or 'no suffix'!r}{run}"
        raise TrajectoryError(f"{file}: expected a .npz or .json file, got {got}")
    try:
        handle = open(file, "rb")  # noqa: SIM115  (closed below)
    except OSError as error:
        raise TrajectoryError(f"{file}: cannot read: {_reason(error)}") from None
    with handle:
        return _from_json(file, handle) if file.suffix == ".json" else _from_npz(file, handle)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return (str(error).splitlines()[0] if str(error) else type(error).__name__)[:200]


# -- .npz -------------------------------------------------------------------------------


def _from_npz(file: Path, handle: IO[bytes]) -> Trajectory:
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise TrajectoryError(f"{file}: not a readable .npz archive ({_reason(error)})") from None
    with archive:
        members = _members(file, archive)
        arrays = {}
        for key, member in members.items():
            try:
                with archive.open(member) as stream:
                    arrays[key] = np.lib.format.read_array(stream, allow_pickle=False)
            except Exception as error:  # truncated or corrupt members
                raise TrajectoryError(
                    f"{file}: cannot read its arrays ({key}: {_reason(error)})"
                ) from None
    return _check(file, arrays)


def _members(file: Path, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by key, each header checked before any array is allocated."""
    members: dict[str, zipfile.ZipInfo] = {}
    for member in archive.infolist():
        key = member.filename.removesuffix(".npy")
        if key not in NPZ_KEYS:
            raise TrajectoryError(
                f"{file}: unknown key {key!r}; a trajectory holds {', '.join(NPZ_KEYS)}"
            )
        if key in members:
            raise TrajectoryError(f"{file}: the key {key!r} appears twice")
        members[key] = member
    missing = [k for k in NPZ_KEYS[:3] if k not in members]
    if missing:
        raise TrajectoryError(f"{file}: missing key {missing[0]!r}")
    total = sum(m.file_size for m in members.values())
    if total > MAX_BYTES:
        raise TrajectoryError(f"{file}: {total} bytes of arrays is over the limit of {MAX_BYTES}")
    for key, member in members.items():
        try:
            with archive.open(member) as stream:
                version = np.lib.format.read_magic(stream)
                if version not in ((1, 0), (2, 0)):
                    raise ValueError(f"unsupported .npy format version {version}")
                read = np.lib.format.read_array_header_1_0
                if version == (2, 0):
                    read = np.lib.format.read_array_header_2_0
                shape, _, dtype = read(stream)
                held = member.file_size - stream.tell()
        except Exception as error:
            reason = f"{key}: {_reason(error)}"
            raise TrajectoryError(f"{file}: cannot read its arrays ({reason})") from None
        if dtype.hasobject:
            raise TrajectoryError(
                f"{file}: cannot read its arrays ({key} holds Python objects, which would "
                "need pickle; nothing is ever unpickled)"
            )
        if math.prod(shape) * dtype.itemsize != held:
            raise TrajectoryError(
                f"{file}: {key} declares shape {shape} of {dtype}, "
                f"{math.prod(shape) * dtype.itemsize} bytes, but holds {held}"
            )
    return members


def _check(file: Path, a: dict[str, npt.NDArray[Any]]) -> Trajectory:
    """The trajectory in an archive's arrays, which it keeps (no copies)."""
    where = str(file)
    declared = _declared(where, a.get("dtype"))
    for key in _ARRAYS:
        a[key] = _as_declared(where, key, a[key], declared)
    steps = _check_arrays(where, a["initial"], a["grads"], a["params"])
    lr = _per_step(where, "lr", a["lr"], steps) if "lr" in a else None
    momentum = _per_step(where, "momentum", a["momentum"], steps) if "momentum" in a else None
    nesterov = _flag(where, "nesterov", a)
    dampening, weight_decay = (_scalar(where, k, a) for k in ("dampening", "weight_decay"))
    maximize = bool(_flag(where, "maximize", a))
    return Trajectory(a["initial"], a["grads"], a["params"], lr, momentum, nesterov,
                      dampening, weight_decay, where, maximize)  # fmt: skip


def _flag(where: str, key: str, a: dict[str, npt.NDArray[Any]]) -> bool | None:
    """A scalar bool ``key`` (0 or 1 counts), or None where the archive has none."""
    if key not in a:
        return None
    value = a[key]
    if value.shape != () or value.dtype.kind not in "bi" or int(value) not in (0, 1):
        raise TrajectoryError(f"{where}: {key} must be a scalar bool, got {_show(value)}")
    return bool(value)


def _declared(where: str, value: npt.NDArray[Any] | None) -> str | None:
    """The dtype the ``dtype`` member names, or None without one."""
    if value is None:
        return None
    if value.shape != () or value.dtype.kind != "U":
        raise TrajectoryError(f"{where}: dtype must be a string naming a dtype, got {_show(value)}")
    if (name := str(value[()])) not in _DTYPES:
        raise TrajectoryError(
            f"{where}: dtype must name one of {', '.join(_DTYPES)}, got {name[:40]!r}"
        )
    return name


def _as_declared(
    where: str, key: str, value: npt.NDArray[Any], declared: str | None
) -> npt.NDArray[Any]:
    """The array ``key`` as its declared dtype: bit patterns viewed (not copied) as it."""
    stored = value.dtype
    raw = stored.kind == "V" and stored.fields is None and stored.subdtype is None
    if declared is None:
        if raw:
            raise TrajectoryError(
                f"{where}: {key} holds raw {stored.itemsize}-byte values ({stored.str}, what "
                "np.save writes for an ml_dtypes array), whose dtype the file does not say; "
                "if they are bfloat16, declare it: np.savez(..., dtype='bfloat16')"
            )
        if stored == np.dtype(np.uint16):
            raise TrajectoryError(
                f"{where}: {key} has dtype {stored}; expected one of {', '.join(_DTYPES)} (if it "
                "holds bfloat16 bit patterns, declare it: np.savez(..., dtype='bfloat16'))"
            )
        return value
    kind = numpy_dtype(declared)
    if declared not in BITS_DTYPES and stored != kind:  # a dtype .npy has: the arrays are of it
        raise TrajectoryError(f"{where}: dtype says {declared}, but {key} has dtype {stored.str}")
    if declared not in BITS_DTYPES:
        return value
    if stored != np.dtype(np.uint16) and not (raw and stored.itemsize == kind.itemsize):
        got = f"{stored.str} ({stored})"
        if stored.itemsize != kind.itemsize:
            got = f"{stored.itemsize}-byte values ({stored.str}, {stored})"
        raise TrajectoryError(
            f"{where}: dtype says {declared}, stored as its {kind.itemsize}-byte bit patterns "
            f"(uint16, or the |V{kind.itemsize} np.save writes for ml_dtypes.{declared}), "
            f"but {key} holds {got}"
        )
    return value.view(kind)


def _per_step(where: str, key: str, value: npt.NDArray[Any], steps: int) -> tuple[float, ...]:
    if value.dtype.kind not in "fiu":
        raise TrajectoryError(f"{where}: {key} must be a real number, got {_show(value)}")
    if value.shape == ():
        return (check(where, key, float(value)),) * steps
    if value.shape != (steps,):
        raise TrajectoryError(
            f"{where}: {key} has shape {value.shape}; expected a scalar or ({steps},), one per step"
        )
    return tuple(check(where, key, float(v), step=t) for t, v in enumerate(value, 1))


def _scalar(where: str, key: str, a: dict[str, npt.NDArray[Any]]) -> float:
    if key not in a:
        return 0.0
    value = a[key]
    if value.shape != () or value.dtype.kind not in "fiu":
        raise TrajectoryError(f"{where}: {key} must be a real scalar, got {_show(value)}")
    return check(where, key, float(value))


def _show(value: npt.NDArray[Any]) -> str:
    return f"an array of dtype {value.dtype} and shape {value.shape}"


# -- test-vector JSON --------------------------------------------------------------------


def _from_json(file: Path, handle: IO[bytes]) -> Trajectory:
    try:
        vector = vectorfile.read(handle)
    except vectorfile.MalformedError as error:
        raise TrajectoryError(f"{file}: {error}") from None
    except (OSError, ValueError) as error:  # the map could not be made
        raise TrajectoryError(f"{file}: cannot read: {_reason(error)}") from None
    where = str(file)
    lr = tuple(
        check(where, "lr", x, name=n, step=t)
        for t, (n, x) in enumerate(zip(vector.lr_names, vector.lr, strict=True), 1)
    )
    momentum = tuple(
        check(where, "momentum", x, name=n, step=t)
        for t, (n, x) in enumerate(zip(vector.momentum_names, vector.momentum, strict=True), 1)
    )
    nesterov = True if vector.variant in _NESTEROV_VARIANTS else vector.nesterov
    d, wd = (check(where, k, getattr(vector, k)) for k in ("dampening", "weight_decay"))
    return Trajectory(vector.initial, vector.grads, vector.params, lr, momentum, nesterov,
                      d, wd, where, vector.maximize)  # fmt: skip
