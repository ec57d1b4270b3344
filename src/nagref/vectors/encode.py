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
from .hexfloat import (
    BITS_DTYPES,
    array_from_bits,
    array_from_hex,
    array_to_bits,
    array_to_hex,
    bits_rule,
    disagreement,
    reads_back,
    shortest_decimal,
    to_hex,
)

__all__ = [
    "SCHEMA_VERSION",
    "decode_floats",
    "dumps",
    "encode",
    "encode_floats",
    "encode_hyperparameter",
    "members",
    "schema",
    "write",
]

#: The format's version, written into every file as ``"nagref_vectors"``. Still 1
#: with the recordings' ``recorded_by`` and ``spec``, with bfloat16 and its
#: ``bits``, and with ``state_dtype``: each was only added (optional members; a
#: dtype no earlier file could name, whose arrays, and only whose, hold a third
#: list, ``bits``; a state dtype written only where it is not the parameters'),
#: so every file version 1 allowed before is still valid and reads the same, and
#: every float16, float32 and float64 vector and recording nagref wrote before
#: is written again byte for byte.
SCHEMA_VERSION = 1


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every vector file satisfies.

    ``schema.json`` in this package, with the enums of its ``dtype`` fields
    and ``state_dtype`` fields filled from the dtype table (the real floating
    dtypes), of the dtypes whose arrays hold ``bits`` from
    :data:`~.hexfloat.BITS_DTYPES`, and of its ``convention`` field from the
    convention registry.
    """
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    loaded = dict(json.loads(text))
    properties = loaded["properties"]
    for field in (
        properties["dtype"],
        properties["state_dtype"],
        properties["spec"]["properties"]["dtype"],
    ):
        field["enum"] = list(_dtypes.REAL)
    arrays, states = loaded["allOf"]
    arrays["if"]["properties"]["dtype"]["enum"] = list(BITS_DTYPES)
    declared, implied = states["if"]["anyOf"]
    declared["properties"]["state_dtype"]["enum"] = list(BITS_DTYPES)
    implied["properties"]["dtype"]["enum"] = list(BITS_DTYPES)
    properties["convention"]["enum"] = list(CONVENTIONS)
    return loaded


def members() -> tuple[dict[str, tuple[str, ...]], dict[str, frozenset[str]]]:
    """The members each object of a vector must hold, and those it may hold, by name.

    As :func:`schema` says; the names are those the audit's reader
    (:mod:`nagref.auditing.vectorfile`) uses: ``vector``, ``initial``,
    ``step``, ``expected``, ``floats`` (an array), ``float`` (a
    hyperparameter), ``recorded_by`` and ``spec`` (whose members are open).
    """
    vector = schema()
    properties = vector["properties"]
    step = properties["steps"]["items"]
    objects = {
        "vector": vector,
        "initial": properties["initial"],
        "step": step,
        "expected": step["properties"]["expected"],
        "floats": vector["$defs"]["floats"],
        "float": vector["$defs"]["float"],
        "recorded_by": properties["recorded_by"],
        "spec": properties["spec"],
    }
    required = {name: tuple(node["required"]) for name, node in objects.items()}
    allowed = {name: frozenset(node["properties"]) for name, node in objects.items()}
    del allowed["spec"]
    return required, allowed


def encode(case: Case) -> dict[str, Any]:
    """One case as a JSON-ready dict (see ``schema.json``).

    ``"state_dtype"`` is there only where the state's dtype is not the
    parameters' (Optax's float32 trace of bfloat16 or float16 parameters).
    """
    optional = {} if case.state_dtype is None else {"state_dtype": case.state_dtype}
    return optional | {
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
    """An array's elements in row-major order, as exact hex strings and as decimals.

    An array of a dtype NumPy has no type of its own for (bfloat16:
    :data:`~.hexfloat.BITS_DTYPES`) gets its bit patterns too, as ``"bits"``;
    the other dtypes' entries are as they always were.
    """
    values = x.reshape(-1)
    entry = {"hex": array_to_hex(values), "decimal": [_decimal(v) for v in values]}
    if values.dtype.name in BITS_DTYPES:
        entry["bits"] = array_to_bits(values)
    return entry


def decode_floats(entry: dict[str, Any], dtype: str, shape: Sequence[int]) -> npt.NDArray[Any]:
    """The array an :func:`encode_floats` entry holds, bit for bit.

    NaN reads back as NaN; in a bfloat16 entry, from its ``bits``, with its
    payload and sign. Each decimal must read back (rounded once) to its hex
    string's value, and each bit pattern be that value too.

    Raises:
        ValueError: the entry has the wrong number of elements, a hex string
            is malformed or not a ``dtype`` value, a decimal disagrees with
            its hex string, or (bfloat16) the bits are missing, malformed or
            disagree with the hex strings; or a dtype without bit patterns
            has some. The message names the field and the element.
    """
    size = math.prod(shape)
    words, decimals = entry["hex"], entry["decimal"]
    if len(words) != size or len(decimals) != size:
        raise ValueError(
            f"{len(words)} hex and {len(decimals)} decimal values for shape {list(shape)}"
        )
    exact = array_from_hex(words, dtype)
    if dtype in BITS_DTYPES:
        exact = _with_bits(entry, exact, dtype, size)
        with np.errstate(invalid="ignore"):
            values = exact.astype(np.float64).tolist()
        for i, (text, value) in enumerate(zip(decimals, values, strict=True)):
            if not isinstance(text, str) or not reads_back(text, value, dtype):
                raise ValueError(f"element {i}: decimal {str(text)[:40]!r} is not hex {words[i]!r}")
        return exact.reshape(tuple(shape))
    if "bits" in entry:
        raise ValueError(f"bits: {bits_rule(True, dtype)}")
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


def _with_bits(
    entry: dict[str, Any], exact: npt.NDArray[Any], dtype: str, size: int
) -> npt.NDArray[Any]:
    """The entry's bit patterns as ``dtype``, once they agree with its hex strings."""
    if "bits" not in entry:
        raise ValueError(f"bits: {bits_rule(False, dtype)}")
    patterns = entry["bits"]
    if not isinstance(patterns, list) or len(patterns) != size:
        got = len(patterns) if isinstance(patterns, list) else type(patterns).__name__
        raise ValueError(f"bits: {got} bit patterns for {size} hex values")
    try:
        held = array_from_bits(patterns, dtype)
    except ValueError as error:
        raise ValueError(f"bits: {error}") from None
    if (problem := disagreement(held.view(np.uint16), exact, dtype)) is not None:
        raise ValueError(problem)
    return held


def _state(state: tuple[npt.NDArray[Any] | None, ...]) -> list[dict[str, list[str]] | None]:
    return [None if s is None else encode_floats(s) for s in state]


def encode_hyperparameter(value: float | bool | str | None) -> Any:
    """A hyperparameter as JSON: a float as ``{"hex", "decimal"}``, anything else as is."""
    if value is None or isinstance(value, (bool, str)):
        return value
    return {"hex": to_hex(value), "decimal": repr(float(value))}


def _decimal(value: Any) -> str:
    """The shortest decimal that reads back to ``value`` in its own dtype (rounded once).

    NumPy's Dragon4 for its own dtypes; :func:`~.hexfloat.shortest_decimal`,
    the same algorithm, for bfloat16, which NumPy would format as the float64
    it widens to (``3.33984375e-01`` for bfloat16 1/3, not ``3.34e-01``).
    """
    dtype = np.asarray(value).dtype
    if dtype.name in BITS_DTYPES:
        return shortest_decimal(float(value), dtype.name)
    if np.isnan(value):
        return "nan"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return np.format_float_scientific(value, unique=True, trim="-")
