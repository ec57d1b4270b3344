"""TrajectoryWriter: a bad call names what is wrong; a refused start writes no file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nagref
from nagref.auditing import open_model
from nagref.record import TrajectoryWriter


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        ({"threads": 0}, ValueError, "threads must be None or an int >= 1, got 0"),
        ({"options": {"lr": object()}}, TypeError, "not JSON serializable"),
        ({"framework": 3}, TypeError, "framework must be a str"),
    ],
)
def test_a_refused_start_writes_nothing(
    tmp_path: Path, keywords: dict[str, object], error: type[Exception], message: str
) -> None:
    arguments: dict[str, object] = {"framework": "x", "version": "1"} | keywords
    with pytest.raises(error, match=message):
        TrajectoryWriter(tmp_path / "r.trajectory", **arguments)  # type: ignore[arg-type]
    assert not (tmp_path / "r.trajectory").exists()


def test_calls_out_of_order_are_refused(tmp_path: Path) -> None:
    with TrajectoryWriter(tmp_path / "r.trajectory", framework="x", version="1") as w:
        k = w.tensor("w", np.zeros(2, np.float32))
        with pytest.raises(ValueError, match="comes after step"):
            w.grad(k, np.zeros(2, np.float32))
        with pytest.raises(ValueError, match="tensor name must be a new str"):
            w.tensor("w", np.zeros(2, np.float32))
        with pytest.raises(ValueError, match="dtype int64 is not one of"):
            w.tensor("i", np.zeros(2, np.int64))
        with pytest.raises(TypeError, match="lr must be int or float, got True"):
            w.step([{"lr": True, "momentum": 0.0}])
        w.step([{"lr": np.float32(0.5), "momentum": 0.0}])  # NumPy scalars are numbers
        with pytest.raises(ValueError, match="declared float32"):
            w.grad(k, np.zeros(2, np.float64))
        with pytest.raises(ValueError, match="its param before its grad"):
            w.param(k, np.zeros(2, np.float32))
        w.grad(k, np.zeros(2, np.float32))
        with pytest.raises(ValueError, match="a second grad"):
            w.grad(k, np.zeros(2, np.float32))
        with pytest.raises(ValueError, match=r"tensors \[0\] have no param"):
            w.step([{"lr": 0.5, "momentum": 0.0}])
        w.param(k, np.ones(2, np.float32))
        with pytest.raises(ValueError, match="tensors are declared before the first step"):
            w.tensor("late", np.zeros(2, np.float32))
    assert w.summary().startswith("nagref: recorded 1 steps of 1 tensors (4 gradient and param")
    with pytest.raises(ValueError, match="the recording is closed"):
        w.step([{"lr": 0.5, "momentum": 0.0}])
    m = open_model(w.path)
    assert (m.steps, m.complete, list(m.groups[0].lr)) == (1, True, [0.5])


def test_a_loop_that_does_not_know_its_lr_and_momentum_leaves_them_to_the_audit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "unknown.trajectory"
    rng = np.random.default_rng(9)
    p, v = rng.standard_normal(300), np.zeros(300)
    with TrajectoryWriter(path, framework="numpy", version=np.__version__) as w:
        w.tensor("w", p)
        for _ in range(6):
            g = rng.standard_normal(300)
            w.step([{"lr": None}])  # momentum left out, lr None: neither is known
            v = 0.95 * v + 0.0123 * g  # the lecture form's momentum, in float64
            p = p - v
            w.update(0, g, p)
    groups = open_model(path).groups[0]
    assert np.isnan(groups.lr).all()
    assert np.isnan(groups.momentum).all()
    report = nagref.audit(path)
    assert "nagref.momentum (lecture form)" in report.bitwise
    assert "(group 0: lr 0.0123, momentum 0.95: inferred from steps 1-2)" in report.verdict
