"""Golden trajectories recorded from the live frameworks, as JSON test vectors.

One file per recorded case, ``{convention}-{variant}-{dtype}-{k}.json``, in
the test-vector format (``nagref/vectors/schema.json``; docs/vectors.md):
every float as an exact hex string and a decimal (:mod:`nagref.vectors.hexfloat`),
the hyperparameters of every step as nagref's convention function takes
them. Two members that nagref's own vectors lack say that the expected
values came from a framework, not from nagref:

* ``recorded_by``: ``{"framework": "torch 2.13.0+cpu"}``, the framework's
  name and version as its worker reported them;
* ``spec``: the live case (:class:`~.cases.Spec`, as ``Spec.to_json`` writes
  it), from which :func:`~.suite.run_nagref` replays the recorded inputs.

``k`` (the file's ``case``) is the case's place in its recorded run; case 0
always has special values and a SIMD tail. ``python -m nagref.live.recordings
DIR [CASES]`` records them (from the frameworks installed here, for minutes).
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._dtypes import numpy_dtype
from .._version import __version__
from ..conventions import lookup
from ..vectors.encode import (
    SCHEMA_VERSION,
    decode_floats,
    dumps,
    encode_floats,
    encode_hyperparameter,
    schema,
)
from .cases import VARIANTS, Spec, arrays, random_spec, worker_groups
from .suite import Trajectory, Worker

__all__ = ["MAX_BYTES", "Recorded", "encode", "filename", "read", "record", "write"]

#: The largest file :func:`read` accepts (a recorded case is well under 1 MiB).
MAX_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Recorded:
    """One recorded case: its spec, inputs, the framework's trajectory, its place in its run."""

    framework: str
    spec: Spec
    initial: npt.NDArray[Any]
    grads: npt.NDArray[Any]
    trajectory: Trajectory
    index: int = 0


def filename(case: Recorded) -> str:
    """``{convention}-{variant}-{dtype}-{index}.json``, the name :func:`write` gives ``case``."""
    spec = case.spec
    return f"{spec.convention}-{spec.variant}-{spec.dtype}-{case.index}.json"


def encode(case: Recorded) -> dict[str, Any]:
    """``case`` as a JSON-ready test vector with ``recorded_by`` and ``spec``.

    The hyperparameters of every step are the keyword arguments that
    :func:`~.suite.run_nagref` passes nagref's convention function, so the
    file replays from its JSON alone as well as from its spec.
    """
    spec = case.spec
    convention = lookup(spec.convention)
    variant = convention.variant(spec.variant)
    state_dtype = spec.state_dtype
    zeros = np.zeros(case.initial.shape, numpy_dtype(state_dtype))
    first = zeros if convention.first_state == "zeros" else None
    steps = []
    for t, (g, (p, s)) in enumerate(zip(case.grads, case.trajectory, strict=True)):
        keywords = convention.arguments(spec.hypers(t), variant, spec.extra)
        steps.append(
            {
                "hyperparameters": {
                    k: encode_hyperparameter(_scalar(k, v)) for k, v in keywords.items()
                },
                "grad": encode_floats(g),
                "expected": {"param": encode_floats(p), "state": [_maybe(s)]},
            }
        )
    return {
        "nagref_vectors": SCHEMA_VERSION,
        "generator": f"nagref {__version__}",
        "recorded_by": {"framework": case.framework},
        "spec": json.loads(json.dumps(spec.to_json(), allow_nan=False)),  # plain JSON types
        "convention": spec.convention,
        "variant": spec.variant,
        "dtype": spec.dtype,
        "case": str(case.index),
        "function": convention.qualname,
        "shape": list(spec.shape),
        "state_names": [convention.state],
        **({} if state_dtype == spec.dtype else {"state_dtype": state_dtype}),
        "initial": {"param": encode_floats(case.initial), "state": [_maybe(first)]},
        "steps": steps,
    }


def write(directory: Path, case: Recorded) -> Path:
    """Write ``case`` to ``directory / filename(case)`` (the directory must exist)."""
    path = directory / filename(case)
    path.write_text(dumps(encode(case)) + "\n", encoding="utf-8")
    return path


def read(path: Path) -> Recorded:
    """The case in a file written by :func:`write`, bit for bit (NaN as NaN).

    The file is checked against ``schema.json`` and for consistency (its spec
    against its members, every hex string exact in the dtype, every decimal
    against its hex string). Needs ``jsonschema``.

    Raises:
        ValueError: the file is not a valid recording; the message names the
            file and what is wrong.
    """
    try:
        return _decode(_load(path))
    except ValueError as error:
        raise ValueError(f"{path}: not a valid recording: {error}") from None


def record(
    directory: Path,
    cases: int,
    seed: int = 2026,
    rows: set[tuple[str, str, str]] | None = None,
) -> list[Path]:
    """Record ``cases`` cases per convention, variant and dtype from the live frameworks.

    ``rows``: only these ``(convention, variant, dtype)`` (default: every live row here).
    """
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for convention, worker_variant, variants in worker_groups():
        wanted = [(convention, v, d) for v in variants for d in VARIANTS[convention][v]]
        if rows is not None and not rows.intersection(wanted):
            continue
        worker = Worker(convention, worker_variant)
        for variant in variants:
            for dtype in VARIANTS[convention][variant]:
                if rows is not None and (convention, variant, dtype) not in rows:
                    continue
                for k in range(cases):
                    spec = random_spec(rng, convention, variant, dtype, max_steps=40)
                    if k == 0:  # always one run with special values and a SIMD tail
                        spec = replace(spec, shape=(37,), special=0.1)
                    initial, grads = arrays(spec)
                    with np.errstate(all="ignore"):
                        trajectory = worker.run(spec)
                    case = Recorded(worker.version, spec, initial, grads, trajectory, k)
                    written.append(write(directory, case))
        worker.close()
    return written


def _scalar(name: str, value: object) -> float | bool | str | None:
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, int):
        return float(value)
    raise TypeError(f"hyperparameter {name}={value!r} is not a float, switch or name")


def _maybe(x: npt.NDArray[Any] | None) -> dict[str, list[str]] | None:
    return None if x is None else encode_floats(x)


@functools.cache
def _validator() -> Any:
    try:
        jsonschema = importlib.import_module("jsonschema")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "reading a recording checks it against schema.json: pip install jsonschema"
        ) from None
    return jsonschema.Draft202012Validator(schema())


def _load(path: Path) -> dict[str, Any]:
    """The file's JSON, checked against the schema; bounded by :data:`MAX_BYTES`."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
    except OSError as error:
        raise ValueError(f"cannot read it ({error.strerror})") from None
    if len(raw) > MAX_BYTES:
        raise ValueError(f"over {MAX_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg} at line {error.lineno})") from None
    except RecursionError:
        raise ValueError("not JSON (nested too deeply)") from None
    errors = _validator().iter_errors(data)
    worst = importlib.import_module("jsonschema.exceptions").best_match(errors)
    if worst is not None:
        message = worst.message if len(worst.message) <= 200 else worst.message[:200] + "..."
        raise ValueError(f"{message} (at {worst.json_path})")
    if "recorded_by" not in data:
        raise ValueError("a test vector computed by nagref: it has no recorded_by")
    return dict(data)


def _decode(data: dict[str, Any]) -> Recorded:
    """A recording from its schema-checked JSON; a ValueError says what does not fit."""
    try:
        spec = Spec.from_json(data["spec"])
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"spec: not a live case ({error})") from None
    for key in ("convention", "variant", "dtype"):
        if getattr(spec, key) != data[key]:
            raise ValueError(f"spec: {key} {getattr(spec, key)!r}, but the file's is {data[key]!r}")
    if list(spec.shape) != data["shape"]:
        raise ValueError(f"spec: shape {list(spec.shape)}, but the file's is {data['shape']}")
    if spec.steps != len(data["steps"]):
        raise ValueError(f"spec: {spec.steps} learning rates for {len(data['steps'])} steps")
    if len(data["state_names"]) != 1:
        raise ValueError(f"state_names: one state expected, got {data['state_names']}")
    if re.fullmatch("[0-9]+", data["case"]) is None:
        raise ValueError(f"case: a recording's case is its index (0, 1, ...), got {data['case']!r}")

    if data.get("state_dtype", spec.dtype) != spec.state_dtype:
        raise ValueError(
            f"state_dtype: {spec.state_dtype!r} for this variant, but the file's is "
            f"{data.get('state_dtype', spec.dtype)!r}"
        )

    def floats(entry: Any, where: str, dtype: str = spec.dtype) -> npt.NDArray[Any]:
        try:
            return decode_floats(entry, dtype, spec.shape)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None

    def state(entries: list[Any], where: str) -> npt.NDArray[Any] | None:
        if len(entries) != 1:
            raise ValueError(f"{where}: one state expected, got {len(entries)}")
        return None if entries[0] is None else floats(entries[0], f"{where}[0]", spec.state_dtype)

    initial = floats(data["initial"]["param"], "initial.param")
    state(data["initial"]["state"], "initial.state")
    grads, trajectory = [], []
    for t, step in enumerate(data["steps"]):
        where = f"steps[{t}]"
        grads.append(floats(step["grad"], f"{where}.grad"))
        expected = step["expected"]
        param = floats(expected["param"], f"{where}.expected.param")
        trajectory.append((param, state(expected["state"], f"{where}.expected.state")))
    framework = data["recorded_by"]["framework"]
    return Recorded(framework, spec, initial, np.stack(grads), trajectory, int(data["case"]))


if __name__ == "__main__":
    for written_path in record(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 4):
        print(written_path)
