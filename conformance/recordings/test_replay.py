"""Replay the golden trajectories recorded from the live frameworks.

Each JSON file here is one case, recorded with
``python -m nagref.live.recordings conformance/recordings 4`` from the
framework its ``recorded_by`` names, in the test-vector format
(docs/vectors.md). Replaying them needs only NumPy, so the conventions stay
checked where the frameworks are not installed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from nagref._compare import bitwise_equal
from nagref.conventions import REGISTRY, lookup
from nagref.live import VARIANTS, compare, run_nagref
from nagref.live.recordings import Recorded, filename, read
from nagref.vectors.encode import decode_floats
from nagref.vectors.hexfloat import from_hex

HERE = Path(__file__).parent
FILES = sorted(HERE.glob("*.json"))

#: Every (convention, variant, dtype) the live suite runs on some machine: the
#: rows of VARIANTS here, and the registry's rows that other CPUs run.
ROWS = sorted(
    {
        (c, v, d)
        for c, variants in VARIANTS.items()
        for v, dtypes in variants.items()
        for d in dtypes
    }
    | {(c.name, v.name, d) for c in REGISTRY.values() for v in c.variants for d in v.dtypes}
)


@functools.cache
def _read(path: Path) -> Recorded:
    return read(path)


@pytest.mark.parametrize("row", [pytest.param(row, id="-".join(row)) for row in ROWS])
def test_every_live_row_has_recordings(row: tuple[str, str, str]) -> None:
    prefix = "-".join(row) + "-"
    indices = sorted(
        int(p.stem.removeprefix(prefix))
        for p in FILES
        if p.stem.startswith(prefix) and p.stem.removeprefix(prefix).isdigit()
    )
    assert indices, f"no recording of {prefix}*.json: this row would go unchecked"
    assert indices == list(range(len(indices))), f"{prefix}*.json: cases {indices}"
    assert len(indices) >= 4


def test_the_directory_holds_only_recordings() -> None:
    others = {p.name for p in HERE.iterdir() if p.is_file() and p.suffix != ".json"}
    assert others <= {"__init__.py", "test_replay.py"}
    assert len(FILES) >= 4 * len(ROWS)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_nagref_replays_the_recorded_trajectory(path: Path) -> None:
    case = _read(path)
    assert path.name == filename(case)
    spec = case.spec
    with np.errstate(all="ignore"):
        result = compare(spec, case.trajectory, run_nagref(spec, (case.initial, case.grads)))
    assert result.bitwise, f"{path.name}: {result.first} ({case.framework})"


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_the_recording_replays_from_its_json_alone(path: Path) -> None:
    """The hyperparameters and initial state in the file, not the spec, reproduce it."""
    data = json.loads(path.read_text(encoding="utf-8"))
    case = _read(path)
    convention = lookup(data["convention"])
    assert data["function"] == convention.qualname
    param = case.initial
    first = data["initial"]["state"][0]
    state_dtype = data.get("state_dtype", data["dtype"])  # Optax's float32 trace
    state = None if first is None else decode_floats(first, state_dtype, data["shape"])
    for t, (step, grad) in enumerate(zip(data["steps"], case.grads, strict=True)):
        keywords = {
            k: from_hex(v["hex"]) if isinstance(v, dict) else v
            for k, v in step["hyperparameters"].items()
        }
        with np.errstate(all="ignore"):
            param, state = convention.call(param, grad, state, **keywords)
        want_param, want_state = case.trajectory[t]
        assert bitwise_equal(np.asarray(param), want_param).all(), f"step {t + 1}: param"
        assert (state is None) == (want_state is None), f"step {t + 1}: state"
        if state is not None:
            assert bitwise_equal(np.asarray(state), want_state).all(), f"step {t + 1}: state"


def test_the_first_case_of_every_row_has_special_values_and_a_simd_tail() -> None:
    firsts = [p for p in FILES if p.stem.endswith("-0")]
    assert firsts
    for path in firsts:
        spec = _read(path).spec
        assert spec.shape == (37,), path.name
        assert spec.special > 0, path.name
