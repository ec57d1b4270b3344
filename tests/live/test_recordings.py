"""Recordings as JSON test vectors: exact round trips, the schema, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from nagref import vectors
from nagref._compare import bitwise_equal
from nagref.live import Spec, recordings
from nagref.live.recordings import Recorded, filename, read, write


def _values(dtype: str) -> np.ndarray:
    info = np.finfo(dtype)
    return np.array(
        [
            0.0,
            -0.0,
            info.smallest_subnormal,
            -info.smallest_subnormal,
            info.smallest_normal / 3,
            info.smallest_normal,
            -info.max,
            np.inf,
            -np.inf,
            np.nan,
            0.1,
            1 / 3,
        ],
        dtype,
    )


def _case(dtype: str, index: int = 0, extra: dict[str, Any] | None = None) -> Recorded:
    values = _values(dtype)
    spec = Spec("tensorflow", "apply_momentum", dtype, (2, 6), 1, (0.1, 0.2), extra=extra or {})
    grid = values.reshape(2, 6)
    trajectory = [(grid, grid[::-1].copy()), (-grid, None)]
    grads = np.stack([grid, grid.T.reshape(2, 6)])
    return Recorded("tensorflow 2.21.0", spec, grid[::-1].copy(), grads, trajectory, index)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool(bitwise_equal(a, b).all())


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_a_write_read_round_trip_is_bit_exact(tmp_path: Path, dtype: str) -> None:
    case = _case(dtype, index=3)
    path = write(tmp_path, case)
    assert path.name == f"tensorflow-apply_momentum-{dtype}-3.json" == filename(case)
    back = read(path)
    assert back.framework == "tensorflow 2.21.0"
    assert back.spec == case.spec
    assert back.index == 3
    assert _same(back.initial, case.initial)
    assert _same(back.grads, case.grads)
    assert len(back.trajectory) == 2
    for (p, s), (want_p, want_s) in zip(back.trajectory, case.trajectory, strict=True):
        assert _same(p, want_p)
        assert (s is None) == (want_s is None)
        if s is not None and want_s is not None:
            assert _same(s, want_s)
    # signed zeros and subnormals survive, NaN reads back as NaN
    flat = back.initial[::-1].reshape(-1)
    assert np.signbit(flat[1])
    assert not np.signbit(flat[0])
    assert flat[2] == np.finfo(dtype).smallest_subnormal
    assert np.isnan(flat[9])


def test_a_recording_is_a_test_vector_with_recorded_by_and_spec(tmp_path: Path) -> None:
    case = _case("float32", extra={"native_float16": False})
    data = json.loads(write(tmp_path, case).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(vectors.schema()).validate(data)
    assert data["recorded_by"] == {"framework": "tensorflow 2.21.0"}
    assert data["spec"] == json.loads(json.dumps(case.spec.to_json()))
    assert data["spec"]["extra"] == {"native_float16": False}
    assert data["case"] == "0"
    assert data["function"] == "nagref.conventions.tensorflow.apply_momentum"
    assert data["state_names"] == ["accum"]
    assert data["steps"][1]["expected"]["state"] == [None]
    lr = data["steps"][1]["hyperparameters"]["lr"]
    assert lr == {"hex": (0.2).hex(), "decimal": "0.2"}
    assert read(tmp_path / filename(case)).spec.extra == {"native_float16": False}


def _edit(tmp_path: Path, change: Any) -> Path:
    path = write(tmp_path, _case("float16"))
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _set_hex(data: dict[str, Any], value: str) -> None:
    data["steps"][0]["grad"]["hex"][0] = value


def _set_decimal(data: dict[str, Any], value: str) -> None:
    data["steps"][0]["grad"]["decimal"][0] = value


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("recorded_by"), "'recorded_by' is a dependency of 'spec'"),
        (lambda d: [d.pop("recorded_by"), d.pop("spec")], "computed by nagref"),
        (lambda d: d["recorded_by"].update(framework=""), r"\$\.recorded_by\.framework"),
        (lambda d: d.update(nagref_vectors=2), r"1 was expected \(at \$\.nagref_vectors\)"),
        (lambda d: _set_hex(d, "0x1.8p"), r"does not match .* \$\.steps\[0\]\.grad\.hex\[0\]"),
        (lambda d: _set_hex(d, "0x1.0000000000001p+0"), r"steps\[0\]\.grad: element 0: .*float16"),
        (lambda d: _set_hex(d, "0x1.0p-1075"), "would be rounded"),
        (lambda d: _set_decimal(d, "5e-01"), r"steps\[0\]\.grad: element 0: decimal '5e-01'"),
        (lambda d: d["steps"][0]["grad"]["hex"].pop(), "11 hex and 12 decimal values"),
        (lambda d: d["spec"].update(dtype="float32"), "spec: dtype 'float32'"),
        (lambda d: d["spec"].update(lr=[0.1]), "spec: 1 learning rates for 2 steps"),
        (lambda d: d["spec"].update(colour="red"), "spec: not a live case"),
        (lambda d: d.update(case="first"), "a recording's case is its index"),
        (lambda d: d["steps"][0]["expected"].update(state=[]), "one state expected, got 0"),
    ],
)
def test_a_bad_recording_is_refused_saying_what_is_wrong(
    tmp_path: Path, change: Any, message: str
) -> None:
    path = _edit(tmp_path, change)
    with pytest.raises(ValueError, match=message) as error:
        read(path)
    assert str(error.value).startswith(f"{path}: not a valid recording: ")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"nagref-vectors 1\nframework torch\n", "not JSON"),
        (b'{"nagref_vectors": 1', "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b"[]", "is not of type 'object'"),
        (b"{}", "is a required property"),
    ],
)
def test_a_file_that_is_not_a_recording_is_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"x.json: not a valid recording: .*{message}"):
        read(path)


def test_a_test_vector_nagref_computed_is_not_a_recording(tmp_path: Path) -> None:
    case = next(vectors.cases(("tensorflow",), ("float32",)))
    path = tmp_path / "v.json"
    path.write_text(json.dumps(vectors.encode(case)), encoding="utf-8")
    with pytest.raises(ValueError, match="computed by nagref: it has no recorded_by"):
        read(path)


def test_a_file_over_the_size_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, _case("float64"))
    monkeypatch.setattr(recordings, "MAX_BYTES", path.stat().st_size - 1)
    with pytest.raises(ValueError, match="not a valid recording: over"):
        read(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nothing\.json: not a valid recording: cannot read it"):
        read(tmp_path / "nothing.json")
