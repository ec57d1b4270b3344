"""The .trajectory format: what the writer writes the reader indexes; every bad file is one line."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from nagref.auditing import TrajectoryError, open_model
from nagref.auditing.model_trajectory import MAGIC, MAX_HEADER
from nagref.record import TrajectoryWriter


def _run(path: Path, *, close: bool = True) -> TrajectoryWriter:
    w = TrajectoryWriter(path, framework="numpy", version="2", threads=1)
    a = w.tensor("w", np.arange(6, dtype=np.float32).reshape(2, 3))
    b = w.tensor("b", np.ones(3, ml_dtypes.bfloat16), group=1)
    for t in range(3):
        second = {"lr": 0.2, "momentum": 0.5, "nesterov": True}
        w.step([{"lr": 0.1 * (t + 1), "momentum": 0.9}, second])
        w.update(a, np.full((2, 3), t, np.float32), np.full((2, 3), -t, np.float32))
        if t != 1:  # b has no gradient at step 2
            w.update(b, np.full(3, t, ml_dtypes.bfloat16), np.full(3, 2 * t, ml_dtypes.bfloat16))
    if close:
        w.close()
    return w


def test_what_is_written_is_read_back_lazily(tmp_path: Path) -> None:
    _run(tmp_path / "r.trajectory")
    m = open_model(tmp_path / "r.trajectory")
    assert (m.steps, m.complete, m.run["framework"], m.run["threads"]) == (3, True, "numpy", 1)
    w, b = m.tensors
    assert (w.name, w.shape, w.dtype, list(w.steps)) == ("w", (2, 3), "float32", [1, 2, 3])
    assert (b.name, b.group, b.dtype, list(b.steps)) == ("b", 1, "bfloat16", [1, 3])
    assert np.array_equal(m.read(w, w.initial_at), np.arange(6, dtype=np.float32).reshape(2, 3))
    assert m.read(b, b.param_at[1]).dtype == ml_dtypes.bfloat16
    # NumPy's own native dtype: a "<f" buffer would send the replay past the C kernels
    assert memoryview(m.read(w, w.grad_at[0])).format == "f"
    assert np.array_equal(m.read(b, b.param_at[1]).astype(np.float32), np.full(3, 4.0))
    assert list(m.groups[0].lr) == pytest.approx([0.1, 0.2, 0.3])
    assert m.groups[1].fixed == {"dampening": 0.0, "weight_decay": 0.0, "nesterov": True,
                                 "maximize": False}  # fmt: skip


def test_a_run_cut_off_keeps_its_finished_steps(tmp_path: Path) -> None:
    data = (_run(tmp_path / "r.trajectory").path).read_bytes()
    cut = tmp_path / "cut.trajectory"
    cut.write_bytes(data[: len(data) - 30])  # inside the end record: step 3 may be unfinished
    m = open_model(cut)
    assert (m.steps, m.complete) == (2, False)
    assert [list(t.steps) for t in m.tensors] == [[1, 2], [1]]
    cut.write_bytes(data[:300])  # before any step finished
    with pytest.raises(TrajectoryError, match="no complete step was recorded"):
        open_model(cut)


def _file(tmp_path: Path, *headers: object, payload: bytes = b"") -> Path:
    out = bytearray(MAGIC)
    for h in headers:
        raw = h if isinstance(h, bytes) else json.dumps(h).encode()
        out += struct.pack("<I", len(raw)) + raw
    out += payload
    path = tmp_path / "bad.trajectory"
    path.write_bytes(bytes(out))
    return path


RUN = {"record": "run", "framework": "x", "version": "1", "optimizer": "", "threads": None}
TENSOR = {"record": "tensor", "name": "w", "group": 0, "dtype": "float32", "shape": [2],
          "nbytes": 8}  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ((b"[" * 5000,), "is not JSON"),
        ((b"[7]",), "not a JSON object"),
        ((TENSOR,), "the first record must be the run's"),
        ((RUN, RUN), "a second run record"),
        ((RUN, {"record": "spam"}), "unknown record 'spam'"),
        ((RUN, {**TENSOR, "nbytes": 12}), "is 8 bytes, but its record holds 12"),
        ((RUN, {**TENSOR, "shape": [-1]}), "shape must be a list of ints >= 0"),
        ((RUN, {**TENSOR, "dtype": "int8"}), "dtype must be one of"),
        ((RUN, {**TENSOR, "nbytes": -1}), "nbytes must be an int >= 0"),
        ((RUN, {"record": "step", "step": 2, "groups": []}), "step 2 follows step 0"),
        (
            (RUN, {"record": "step", "step": 1, "groups": [{"lr": True, "momentum": 0}]}),
            "lr must be int or float",
        ),
        (
            (RUN, {"record": "step", "step": 1, "groups": [{"lr": -1, "momentum": 0}]}),
            "lr must be finite and >= 0",
        ),
        (
            (RUN, {"record": "step", "step": 1, "groups": [{"lr": 1, "momentum": "0.9"}]}),
            "momentum must be int or float",
        ),
        ((RUN, {"record": "end", "steps": 4}), "the end record says 4 steps after 0"),
    ],
)
def test_a_bad_file_is_refused_in_one_line(
    tmp_path: Path, headers: tuple[object, ...], message: str
) -> None:
    with pytest.raises(TrajectoryError, match=message) as info:
        open_model(_file(tmp_path, *headers, payload=b"\0" * 64))
    assert "\n" not in str(info.value)
    assert "bad.trajectory" in str(info.value)


def test_records_out_of_order_are_refused(tmp_path: Path) -> None:
    step = {"record": "step", "step": 1, "groups": [{"lr": 0.1, "momentum": 0.0}]}
    param = {"record": "param", "step": 1, "tensor": 0, "nbytes": 8}
    grad = {**param, "record": "grad"}
    cases = [
        ((RUN, step, TENSOR), "a tensor record after the first step"),
        ((RUN, TENSOR, step, param), "param before its grad"),
        ((RUN, TENSOR, step, grad, grad), "has two grads"),
        ((RUN, TENSOR, step, {**grad, "tensor": 3}), "unknown tensor 3"),
        ((RUN, TENSOR, step, {**grad, "step": 2}), "a grad record of step 2 in step 1"),
        ((RUN, TENSOR, {**step, "groups": [{"lr": 0.1, "momentum": 0, "nesterov": True}]},
          {**step, "step": 2}), "nesterov changed from True to None"),
    ]  # fmt: skip
    for headers, message in cases:
        path = tmp_path / "bad.trajectory"
        out = bytearray(MAGIC)
        for h in headers:
            raw = json.dumps(h).encode()
            out += struct.pack("<I", len(raw)) + raw + b"\0" * h.get("nbytes", 0)  # type: ignore[attr-defined]
        path.write_bytes(bytes(out))
        with pytest.raises(TrajectoryError, match=message):
            open_model(path)


def test_limits_protect_memory(tmp_path: Path) -> None:
    with pytest.raises(TrajectoryError, match=f"at most {MAX_HEADER}"):
        open_model(_file(tmp_path, RUN, b"x" * (MAX_HEADER + 1)))
    # a tensor declaring a terabyte it does not hold: the file is cut off, nothing allocated
    huge = {**TENSOR, "shape": [1 << 38], "nbytes": 1 << 40}
    with pytest.raises(TrajectoryError, match="no tensors were recorded"):
        open_model(_file(tmp_path, RUN, huge))
    (tmp_path / "plain.trajectory").write_bytes(b"PK\x03\x04")
    with pytest.raises(TrajectoryError, match="not a nagref trajectory"):
        open_model(tmp_path / "plain.trajectory")
    with pytest.raises(TrajectoryError, match="cannot read"):
        open_model(tmp_path / "missing.trajectory")
