"""The JSON form of a test vector, its schema, and writing a directory of them."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._version import __version__
from .catalogue import Case, cases

__all__ = ["SCHEMA_VERSION", "dumps", "encode", "schema", "write"]

#: The format's version, written into every file as ``"nagref_vectors"``.
SCHEMA_VERSION = 1


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every vector file satisfies."""
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


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
        "initial": {"param": _floats(case.initial_param), "state": _state(case.initial_state)},
        "steps": [
            {
                "hyperparameters": {k: _scalar(v) for k, v in h.items()},
                "grad": _floats(g),
                "expected": {"param": _floats(p), "state": _state(s)},
            }
            for h, g, p, s in zip(case.hypers, case.grads, case.params, case.states, strict=True)
        ],
    }


def write(
    out: Path, conventions: tuple[str, ...] | None = None, dtypes: tuple[str, ...] | None = None
) -> list[Path]:
    """Write one ``.json`` file per case into ``out`` (created if need be); return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in cases(conventions, dtypes):
        path = out / f"{case.convention}-{case.variant}-{case.dtype}-{case.name}.json"
        path.write_text(dumps(encode(case)) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


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


def _floats(x: npt.NDArray[Any]) -> dict[str, list[str]]:
    values = x.reshape(-1)
    return {
        "hex": [_hex(float(v)) for v in values.tolist()],
        "decimal": [_decimal(v) for v in values],
    }


def _state(state: tuple[npt.NDArray[Any] | None, ...]) -> list[dict[str, list[str]] | None]:
    return [None if s is None else _floats(s) for s in state]


def _scalar(value: float | bool | str | None) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    return {"hex": _hex(value), "decimal": repr(float(value))}


def _hex(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value.hex()


def _decimal(value: Any) -> str:
    """The shortest decimal that reads back to ``value`` in its own dtype."""
    if np.isnan(value):
        return "nan"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return np.format_float_scientific(value, unique=True, trim="-")
