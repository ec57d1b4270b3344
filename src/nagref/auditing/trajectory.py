"""A recorded trajectory, and its loaders: ``.npz`` and nagref's vector JSON.

Both loaders check everything before anything is replayed and raise
:class:`TrajectoryError` (a ``ValueError``) with one line that names the file
and the offending key or value. They never unpickle (``allow_pickle=False``)
and refuse files whose arrays would not fit the size limit before reading
them.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _dtypes
from ..vectors import schema

__all__ = ["MAX_BYTES", "NPZ_KEYS", "Trajectory", "TrajectoryError", "load"]

#: The largest file, and the largest total of uncompressed arrays, accepted.
MAX_BYTES = 1 << 30
#: The arrays an ``.npz`` trajectory may hold; the first five are required.
NPZ_KEYS = ("initial", "grads", "params", "lr", "momentum", "nesterov", "dampening", "weight_decay")
_DTYPES = _dtypes.REAL


class TrajectoryError(ValueError):
    """A trajectory file that cannot be audited, with the reason in one line."""


@dataclass(frozen=True)
class Trajectory:
    """T steps of an optimizer on one parameter array.

    ``params[t]`` is the parameter after step t + 1, computed from
    ``params[t - 1]`` (``initial`` for t = 0) and ``grads[t]``, with
    ``lr[t]`` and ``momentum[t]``.
    """

    initial: npt.NDArray[Any]
    grads: npt.NDArray[Any]
    params: npt.NDArray[Any]
    lr: tuple[float, ...]
    momentum: tuple[float, ...]
    nesterov: bool | None = None  # None: not recorded, try both
    dampening: float = 0.0
    weight_decay: float = 0.0
    source: str = ""

    @property
    def steps(self) -> int:
        return len(self.lr)

    @property
    def dtype(self) -> str:
        return str(self.initial.dtype)


def load(path: str | os.PathLike[str]) -> Trajectory:
    """Read a ``.npz`` trajectory or a test-vector ``.json`` file."""
    file = Path(path)
    if not file.is_file():
        raise TrajectoryError(f"{file}: no such file")
    size = file.stat().st_size
    if size == 0:
        raise TrajectoryError(f"{file}: the file is empty")
    if size > MAX_BYTES:
        raise TrajectoryError(f"{file}: {size} bytes is over the limit of {MAX_BYTES}")
    if file.suffix == ".json":
        return _from_json(file)
    if file.suffix == ".npz":
        return _from_npz(file)
    raise TrajectoryError(
        f"{file}: expected a .npz or .json file, got {file.suffix or 'no suffix'!r}"
    )


# -- .npz -------------------------------------------------------------------------------


def _from_npz(file: Path) -> Trajectory:
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise TrajectoryError(f"{file}: not a readable .npz archive ({error})") from None
    names = [m.filename.removesuffix(".npy") for m in members]
    unknown = sorted(set(names) - set(NPZ_KEYS))
    if unknown:
        raise TrajectoryError(
            f"{file}: unknown key {unknown[0]!r}; a trajectory holds {', '.join(NPZ_KEYS)}"
        )
    missing = [k for k in NPZ_KEYS[:5] if k not in names]
    if missing:
        raise TrajectoryError(f"{file}: missing key {missing[0]!r}")
    total = sum(m.file_size for m in members)
    if total > MAX_BYTES:
        raise TrajectoryError(f"{file}: {total} bytes of arrays is over the limit of {MAX_BYTES}")
    try:
        with np.load(file, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in names}
    except Exception as error:  # truncated members, bad headers, object arrays
        raise TrajectoryError(f"{file}: cannot read its arrays ({_reason(error)})") from None
    return _check(file, arrays)


def _reason(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]


def _check(file: Path, a: dict[str, npt.NDArray[Any]]) -> Trajectory:
    initial, grads, params = a["initial"], a["grads"], a["params"]
    for key in ("initial", "grads", "params"):
        if str(a[key].dtype) not in _DTYPES:
            raise TrajectoryError(
                f"{file}: {key} has dtype {a[key].dtype}; expected one of {', '.join(_DTYPES)}"
            )
    if grads.dtype != initial.dtype or params.dtype != initial.dtype:
        raise TrajectoryError(
            f"{file}: initial, grads and params must share a dtype, got "
            f"{initial.dtype}, {grads.dtype} and {params.dtype}"
        )
    if grads.ndim == 0 or grads.shape[1:] != initial.shape:
        raise TrajectoryError(
            f"{file}: grads has shape {grads.shape}; expected (T, *{initial.shape})"
        )
    if params.shape != grads.shape:
        raise TrajectoryError(
            f"{file}: params has shape {params.shape} but grads has shape {grads.shape}"
        )
    steps = grads.shape[0]
    if steps == 0:
        raise TrajectoryError(f"{file}: the trajectory has no steps (T = 0)")
    lr = _per_step(
        file, "lr", a["lr"], steps, ok=lambda x: 0.0 <= x < math.inf, wanted="finite and >= 0"
    )
    momentum = _per_step(
        file, "momentum", a["momentum"], steps, ok=lambda x: 0.0 <= x < 1.0, wanted="in [0, 1)"
    )
    nesterov = None
    if "nesterov" in a:
        value = a["nesterov"]
        if value.shape != () or value.dtype.kind not in "bi" or int(value) not in (0, 1):
            raise TrajectoryError(f"{file}: nesterov must be a scalar bool, got {_show(value)}")
        nesterov = bool(value)
    dampening = _scalar(file, "dampening", a, lambda x: 0.0 <= x <= 1.0, "in [0, 1]")
    weight_decay = _scalar(file, "weight_decay", a, lambda x: 0.0 <= x < math.inf, ">= 0")
    return Trajectory(
        initial.copy(),
        grads.copy(),
        params.copy(),
        lr,
        momentum,
        nesterov,
        dampening,
        weight_decay,
        str(file),
    )


def _per_step(
    file: Path, key: str, value: npt.NDArray[Any], steps: int, *, ok: Any, wanted: str
) -> tuple[float, ...]:
    if value.dtype.kind not in "fiu":
        raise TrajectoryError(f"{file}: {key} must be a real number, got {_show(value)}")
    if value.shape == ():
        values = (float(value),) * steps
    elif value.shape == (steps,):
        values = tuple(float(v) for v in value)
    else:
        raise TrajectoryError(
            f"{file}: {key} has shape {value.shape}; expected a scalar or ({steps},), one per step"
        )
    for t, v in enumerate(values):
        if not ok(v):
            where = "" if value.shape == () else f" at step {t + 1}"
            raise TrajectoryError(f"{file}: {key} must be {wanted}, got {v!r}{where}")
    return values


def _scalar(file: Path, key: str, a: dict[str, npt.NDArray[Any]], ok: Any, wanted: str) -> float:
    if key not in a:
        return 0.0
    value = a[key]
    if value.shape != () or value.dtype.kind not in "fiu":
        raise TrajectoryError(f"{file}: {key} must be a real scalar, got {_show(value)}")
    number = float(value)
    if not ok(number):
        raise TrajectoryError(f"{file}: {key} must be {wanted}, got {number!r}")
    return number


def _show(value: npt.NDArray[Any]) -> str:
    return f"an array of dtype {value.dtype} and shape {value.shape}"


# -- test-vector JSON --------------------------------------------------------------------

_LR_NAMES = ("lr", "learning_rate", "alpha", "epsilon", "eta")
_MU_NAMES = ("momentum", "mu", "beta")


def _from_json(file: Path) -> Trajectory:
    try:
        case = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TrajectoryError(f"{file}: not valid JSON ({error})") from None
    if not isinstance(case, dict) or case.get("nagref_vectors") != 1:
        raise TrajectoryError(f'{file}: not a nagref test vector (no "nagref_vectors": 1)')
    unknown = sorted(set(case) - set(schema()["properties"]))
    if unknown:
        raise TrajectoryError(f"{file}: unknown key {unknown[0]!r} for a nagref test vector")
    try:
        dtype = case["dtype"]
        if dtype not in _DTYPES:
            raise TrajectoryError(
                f"{file}: dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}"
            )
        shape = tuple(int(n) for n in case["shape"])
        initial = _floats(case["initial"]["param"], dtype, shape)
        grads, params, lr, momentum = [], [], [], []
        nesterov: bool | None = False
        for t, step in enumerate(case["steps"], 1):
            h = step["hyperparameters"]
            grads.append(_floats(step["grad"], dtype, shape))
            params.append(_floats(step["expected"]["param"], dtype, shape))
            lr.append(_hyper(h, _LR_NAMES, file, t))
            momentum.append(_hyper(h, _MU_NAMES, file, t, default=0.0))
            nesterov = bool(h.get("nesterov", h.get("use_nesterov", False)))
    except TrajectoryError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise TrajectoryError(
            f"{file}: malformed test vector ({type(error).__name__}: {error})"
        ) from None
    if not grads:
        raise TrajectoryError(f"{file}: the trajectory has no steps")
    if case.get("variant") in ("nag", "sutskever_nag", "bengio", "dozat", "nesterov_1983"):
        nesterov = True
    return Trajectory(
        initial,
        np.stack(grads),
        np.stack(params),
        tuple(lr),
        tuple(momentum),
        nesterov,
        source=str(file),
    )


def _floats(entry: Any, dtype: str, shape: tuple[int, ...]) -> npt.NDArray[Any]:
    words = entry["hex"]
    if not isinstance(words, list) or len(words) != math.prod(shape):
        raise ValueError(f"expected {math.prod(shape)} hex floats for shape {shape}")
    values = [float(w) if w in ("nan", "inf", "-inf") else float.fromhex(w) for w in words]
    return np.array(values, dtype=np.float64).astype(dtype).reshape(shape)


def _hyper(
    h: dict[str, Any], names: tuple[str, ...], file: Path, t: int, default: float | None = None
) -> float:
    for name in names:
        if name in h:
            value = float.fromhex(h[name]["hex"])
            if not math.isfinite(value) or value < 0:
                raise TrajectoryError(
                    f"{file}: {name} must be finite and >= 0, got {value!r} at step {t}"
                )
            return value
    if default is None:
        raise TrajectoryError(f"{file}: step {t} has no learning rate ({', '.join(names)})")
    return default
