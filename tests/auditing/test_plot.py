"""nagref audit --plot: the per-step ULP histories, drawn as a PNG (the plot extra)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import matplotlib  # the test extra installs it (nagref[plot]): never skipped
import numpy as np
import pytest

import nagref
from nagref.auditing import Trajectory, audit_model
from nagref.auditing.plot import EXTRA, figure, series
from nagref.cli import main
from nagref.conventions import pytorch
from nagref.record import TrajectoryWriter

PNG = b"\x89PNG\r\n\x1a\n"


def _torch_run(steps: int = 8, *, nudge: int | None = None) -> Trajectory:
    """PyTorch's SGD on a quadratic; ``nudge``: step whose recorded parameters are 1 ULP off."""
    rng = np.random.default_rng(5)
    lam = rng.uniform(0.1, 2.0, 64).astype(np.float32)
    w = rng.standard_normal(64).astype(np.float32)
    initial, grads, params, buf = w.copy(), [], [], None
    for _ in range(steps):
        g = lam * w
        w, buf = pytorch.sgd(w, g, buf, lr=0.05, momentum=0.9, nesterov=True)
        grads.append(g)
        params.append(w.copy())
    recorded = np.stack(params)
    if nudge is not None:
        recorded[nudge - 1, 3] = np.nextafter(recorded[nudge - 1, 3], np.float32(np.inf))
    return Trajectory(initial, np.stack(grads), recorded, (0.05,) * steps, (0.9,) * steps,
                      source="run")  # fmt: skip


def test_the_history_is_each_steps_max_ulp_and_ends_where_a_candidate_is_dropped() -> None:
    report = nagref.audit(_torch_run(nudge=3), tolerance_ulps=0)
    best = report.matches[0]
    assert best.status == "diverges"
    assert best.history == (0.0, 0.0, 1.0)  # dropped at step 3, where it left by 1 ULP
    assert best.steps_replayed == 3
    loose = nagref.audit(_torch_run(nudge=3))
    within = loose.matches[0]
    assert within.status == "within"
    assert within.history == (0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # its own state, not 1 ULP on
    for m in loose.matches:
        assert len(m.history) == m.steps_replayed
        assert max(m.history, default=0.0) == (m.max_ulp or 0.0)
    exact = nagref.audit(_torch_run())
    assert all(m.history == (0.0,) * 8 for m in exact.matches if m.status == "bitwise")
    assert exact.to_json()["matches"][0]["history"] == [0.0] * 8


def test_the_plotted_lines_are_the_reports_histories() -> None:
    report = nagref.audit(_torch_run(nudge=3))
    lines = series(report)
    drawn = {(name, s.ulps) for s in lines for name in s.candidates}
    ran = {(m.candidate, m.history) for m in report.matches if m.status != "cannot run"}
    assert drawn == ran
    assert sum(len(s.candidates) for s in lines) == len(ran)
    fig = figure(report)
    ax = fig.axes[0]
    assert ax.get_yscale() == "symlog"
    assert ax.get_ylim()[0] < 0 < ax.get_ylim()[1]  # 0, where the bitwise candidates lie, shows
    plotted = [line for line in ax.get_lines() if line.get_label() in {s.label for s in lines}]
    assert [tuple(line.get_ydata()) for line in plotted] == [s.ulps for s in lines]
    assert [tuple(line.get_xdata()) for line in plotted] == [s.steps for s in lines]
    assert ax.get_legend() is not None
    assert "nagref audit run" in ax.get_title(loc="left")
    assert report.verdict[:60] in ax.get_title(loc="left")


def test_an_infinite_distance_is_drawn_at_the_top_and_marked() -> None:
    tr = Trajectory(np.ones(3), np.array([[1.0, np.nan, 2.0]]), np.array([[0.9, 1.0, np.inf]]),
                    (0.1,), (0.0,), source="memory")  # fmt: skip
    report = nagref.audit(tr)
    assert any(m.history == (float("inf"),) for m in report.matches)
    ax = figure(report).axes[0]
    tops = [line for line in ax.get_lines() if line.get_marker() == "x"]
    assert tops
    assert all(np.isfinite(line.get_ydata()).all() for line in ax.get_lines())


def test_the_command_line_writes_a_png_for_a_single_array_and_a_whole_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tr = _torch_run()
    path = tmp_path / "run.npz"
    np.savez(path, initial=tr.initial, grads=tr.grads, params=tr.params, lr=0.05, momentum=0.9)
    out = tmp_path / "run.png"
    assert main(["audit", str(path), "--plot", str(out)]) == 0
    assert "VERDICT: " in capsys.readouterr().out
    data = out.read_bytes()
    assert data.startswith(PNG)
    assert len(data) > 20_000
    whole = tmp_path / "run.trajectory"
    with TrajectoryWriter(whole, framework="numpy", version=np.__version__, threads=1) as w:
        w.tensor("w", tr.initial)
        for t in range(tr.steps):
            w.step([{"lr": 0.05, "momentum": 0.9, "nesterov": True}])
            w.update(0, tr.grads[t], tr.params[t])
    assert main(["audit", str(whole), "--plot", str(tmp_path / "whole.png")]) == 0
    assert (tmp_path / "whole.png").read_bytes().startswith(PNG)
    run = audit_model(whole)
    assert all(m.history == (0.0,) * 8 for m in run.matches if m.status == "bitwise")
    assert run.to_json()["matches"][0]["history"] == [0.0] * 8


@pytest.mark.parametrize(
    ("plot", "message"),
    [
        ("out.jpg", "argument --plot: expected a .png file name, got 'out.jpg'"),
        ("no/such/dir/out.png", "argument --plot: cannot write 'no/such/dir/out.png': "),
    ],
)
def test_a_bad_plot_path_is_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    plot: str,
    message: str,
) -> None:
    tr = _torch_run(2)
    np.savez(tmp_path / "t.npz", initial=tr.initial, grads=tr.grads, params=tr.params,
             lr=0.05, momentum=0.9)  # fmt: skip
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["audit", "t.npz", "--plot", plot])
    assert info.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]


def test_without_matplotlib_the_flag_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert matplotlib.__version__
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    with pytest.raises(
        ImportError, match=re.escape(f"needs matplotlib, which is not installed: {EXTRA}")
    ):
        figure(nagref.audit(_torch_run(2)))
    with pytest.raises(SystemExit) as info:
        main(["audit", str(tmp_path / "t.npz"), "--plot", str(tmp_path / "t.png")])
    assert info.value.code == 2
    assert EXTRA in capsys.readouterr().err
    assert not (tmp_path / "t.png").exists()
