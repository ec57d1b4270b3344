"""The JSON form of a test vector, its schema, and writing a directory of them."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _dtypes
from .._compare import bitwise_equal
from .._version import __version__
from .catalogue import CONVENTIONS, Case, cases
from .hexfloat import array_from_hex, array_to_hex, to_hex

__all__ = [
    "SCHEMA_VERSION",
    "decode_floats",
    "dumps",
    "encode",
    "encode_floats",
    "encode_hyperparameter",
    "schema",
    "write",
]

#: The format's version, written into every file as ``"nagref_vectors"``. Still 1
#: with the recordings' ``recorded_by`` and ``spec``: both are optional and only
#: added, so every file version 1 allowed is still valid and reads the same, and
#: nagref's own vectors (which hold neither) are byte-identical.
SCHEMA_VERSION = 1


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every vector file satisfies.

    ``schema.json`` in this package, with the enums of its ``dtype`` fields
    filled from the dtype table (the real floating dtypes) and of its
    ``convention`` field from the convention registry.
    """
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    loaded = dict(json.loads(text))
    properties = loaded["properties"]
    for fields in (properties, properties["spec"]["properties"]):
        fields["dtype"]["enum"] = list(_dtypes.REAL)
    properties["convention"]["enum"] = list(CONVENTIONS)
    return loaded


def encode(case: Case) -> dict[str, Any]:
    """One case as a JSON-ready dict (see ``schema.json``)."""
    return {
        "nagref_vectors": SCHEMA_VERSION,
        "generator": f"nagref {__version__}",
        "convention": case.convention,
        "variant": case.variant,
        "dtype": case.dtype,
        "case": case.name,
        "function": case.function,
        "shape": list(case.initial_param.shape),
        "state_names": list(case.state_names),
        "initial": {
            "param": encode_floats(case.initial_param),
            "state": _state(case.initial_state),
        },
        "steps": [
            {
                "hyperparameters": {k: encode_hyperparameter(v) for k, v in h.items()},
                "grad": encode_floats(g),
                "expected": {"param": encode_floats(p), "state": _state(s)},
            }
            for h, g, p, s in zip(case.hypers, case.grads, case.params, case.states, strict=True)
        ],
    }


def write(
    out: Path, conventions: tuple[str, ...] | None = None, dtypes: tuple[str, ...] | None = None
) -> list[Path]:
    """Write one ``.json`` file per case into ``out`` (created if need be); return the paths.

    Each file is written to a new temporary name in ``out`` and then renamed
    over its own name, so a symbolic link already there is replaced, never
    followed, and no file is ever left half written.
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in cases(conventions, dtypes):
        path = out / f"{case.convention}-{case.variant}-{case.dtype}-{case.name}.json"
        _replace(path, dumps(encode(case)) + "\n")
        paths.append(path)
    return paths


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to a new file in ``path``'s directory and rename it to ``path``."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def dumps(value: Any, indent: str = "") -> str:
    """JSON with sorted keys, objects one member per line, arrays of scalars on one line."""
    inner = indent + " "
    if isinstance(value, dict):
        if not value:
            return "{}"
        members = [f"{inner}{json.dumps(k)}: {dumps(value[k], inner)}" for k in sorted(value)]
        return "{\n" + ",\n".join(members) + "\n" + indent + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [inner + dumps(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False)


def encode_floats(x: npt.NDArray[Any]) -> dict[str, list[str]]:
    """An array's elements in row-major order, as exact hex strings and as decimals."""
    values = x.reshape(-1)
    return {"hex": array_to_hex(values), "decimal": [_decimal(v) for v in values]}


def decode_floats(entry: dict[str, Any], dtype: str, shape: Sequence[int]) -> npt.NDArray[Any]:
    """The array an :func:`encode_floats` entry holds, bit for bit (NaN as NaN).

    Raises:
        ValueError: the entry has the wrong number of elements, a hex string
            is malformed or not a ``dtype`` value, or a decimal disagrees with
            its hex string.
    """
    size = math.prod(shape)
    words, decimals = entry["hex"], entry["decimal"]
    if len(words) != size or len(decimals) != size:
        raise ValueError(
            f"{len(words)} hex and {len(decimals)} decimal values for shape {list(shape)}"
        )
    exact = array_from_hex(words, dtype)
    try:
        with np.errstate(over="ignore", under="ignore"):
            rounded = np.array([float(d) for d in decimals], dtype=np.float64).astype(dtype)
    except ValueError:
        raise ValueError("a decimal is not a number") from None
    same = bitwise_equal(rounded, exact)
    if not same.all():
        i = int(np.argmin(same))
        raise ValueError(f"element {i}: decimal {decimals[i]!r} is not hex {words[i]!r}")
    return exact.reshape(tuple(shape))


def _state(state: tuple[npt.NDArray[Any] | None, ...]) -> list[dict[str, list[str]] | None]:
    return [None if s is None else encode_floats(s) for s in state]


def encode_hyperparameter(value: float | bool | str | None) -> Any:
    """A hyperparameter as JSON: a float as ``{"hex", "decimal"}``, anything else as is."""
    if value is None or isinstance(value, (bool, str)):
        return value
    return {"hex": to_hex(value), "decimal": repr(float(value))}


def _decimal(value: Any) -> str:
    """The shortest decimal that reads back to ``value`` in its own dtype."""
    if np.isnan(value):
        return "nan"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return np.format_float_scientific(value, unique=True, trim="-")
