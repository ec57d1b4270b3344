"""nagref.audit: one entry for one array's trajectory and for a whole run's .trajectory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nagref
from nagref.auditing import AuditReport, ModelReport, TrajectoryError, format_report, load
from nagref.auditing.model import audit_model, format_model_report
from nagref.auditing.report import audit_array, format_array_report
from nagref.record import TrajectoryWriter


def _run(path: Path) -> None:
    rng = np.random.default_rng(5)
    p = rng.standard_normal(50)
    with TrajectoryWriter(path, framework="numpy", version=np.__version__) as w:
        w.tensor("w", p)
        for _ in range(4):
            g = rng.standard_normal(50)
            w.step([{"lr": 0.1, "momentum": 0.0}])
            p = p - 0.1 * g
            w.update(0, g, p)


def test_a_trajectory_file_is_a_whole_run_and_an_npz_one_array(tmp_path: Path) -> None:
    run = tmp_path / "run.trajectory"
    _run(run)
    calls: list[tuple[int, int, str]] = []
    report = nagref.audit(run, progress=lambda *a: calls.append(a))
    assert isinstance(report, ModelReport)
    assert report == audit_model(run)
    assert calls == [(0, 1, "w")]
    assert format_report(report) == format_model_report(report)
    assert "nagref.sgd" in report.bitwise
    npz = tmp_path / "one.npz"
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal(50)
    g = rng.standard_normal((1, 50))
    np.savez(npz, initial=p0, grads=g, params=p0 - 0.1 * g, lr=0.1, momentum=0.0)
    single = nagref.audit(npz)
    assert isinstance(single, AuditReport)
    assert single == audit_array(npz)
    assert format_report(single) == format_array_report(single)
    with pytest.raises(TrajectoryError, match=r"a whole run: nagref\.audit reads it"):
        load(run)  # the one-array loader points to the entry that reads it
