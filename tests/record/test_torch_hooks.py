"""nagref.record.torch on real PyTorch runs: each audits to PyTorch's own convention."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformance import require
from nagref.auditing import audit_model, open_model
from nagref.record import torch as record_torch

torch = require("torch")


def _train(path: Path, steps: int = 8, *, skip_bias_at: int | None = None, **sgd: Any) -> Any:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh(), torch.nn.Linear(2, 1))
    opt = torch.optim.SGD(net.parameters(), **({"lr": 0.1, "momentum": 0.9} | sgd))
    schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    with record_torch(opt, path, model=net, quiet=True):
        for t in range(steps):
            opt.zero_grad()
            ((net(x) - y) ** 2).mean().backward()
            if t == skip_bias_at:
                net[2].bias.grad = None  # torch leaves it, and its buffer, alone
            opt.step()
            schedule.step()
    return net


def test_a_scheduled_run_with_weight_decay_audits_to_pytorch(tmp_path: Path) -> None:
    path = tmp_path / "run.trajectory"
    _train(path, nesterov=True, weight_decay=1e-3, foreach=False)
    m = open_model(path)
    assert m.run["framework"] == "torch"
    assert m.run["threads"] == torch.get_num_threads()
    assert [t.name for t in m.tensors] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert list(m.groups[0].lr) == [0.1] * 3 + [0.05] * 3 + [0.025] * 2  # the scheduler's
    report = audit_model(path)
    assert "pytorch single-tensor, nesterov" in report.bitwise
    assert all(name.startswith("pytorch ") for name in report.bitwise)
    assert report.exit_code == 0
    assert report.verdict.startswith("VERDICT: indistinguishable: ")  # float32: AVX2 = AVX-512


def test_a_fused_run_is_told_from_the_others(tmp_path: Path) -> None:
    path = tmp_path / "run.trajectory"
    _train(path, 20, fused=True, dampening=0.25)
    report = audit_model(path)
    assert report.bitwise
    assert all(" fused" in name for name in report.bitwise)
    assert "pytorch single-tensor" not in report.bitwise


def test_a_gradient_of_none_is_skipped_and_maximize_recorded(tmp_path: Path) -> None:
    path = tmp_path / "run.trajectory"
    _train(path, skip_bias_at=2, maximize=True, foreach=True)
    m = open_model(path)
    assert list(m.tensors[3].steps) == [1, 2, 4, 5, 6, 7, 8]
    assert m.groups[0].fixed["maximize"] is True
    assert "pytorch foreach" in audit_model(path).bitwise


def test_steps_and_tensors_choose_what_is_recorded(tmp_path: Path, capsys: Any) -> None:
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.5)
    path = tmp_path / "r.trajectory"
    with record_torch(opt, path, model=net, steps=2, tensors={"weight"}):
        for _ in range(4):
            opt.zero_grad()
            net(torch.ones(1, 3)).sum().backward()
            opt.step()
    said = capsys.readouterr().out
    assert said.startswith("nagref: recorded 2 steps of 1 tensors (24 gradient and parameter")
    m = open_model(path)
    assert (m.steps, [t.name for t in m.tensors]) == (2, ["weight"])
    none = tmp_path / "none.trajectory"
    with pytest.raises(ValueError, match="no tensor was selected"):
        record_torch(opt, none, model=net, tensors={"spam"}).__enter__()
    assert not (tmp_path / "none.trajectory").exists()
    with pytest.raises(ValueError, match="steps must be None or an int >= 1, got 0"):
        record_torch(opt, none, steps=0).__enter__()
    assert not none.exists()
