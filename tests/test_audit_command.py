"""nagref audit's arguments and command (nagref._audit_command, through nagref.cli.main)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nagref.cli import main
from nagref.conventions import pytorch


def test_the_help_names_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["audit", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--json", "--ulps K", "--infer", "--plot FILE.png"):
        assert flag in text
    assert "one audit, one file (needs matplotlib: pip install 'nagref[plot]')" in text


def test_infer_and_plot_together_on_a_file_without_lr_and_momentum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(2)
    lam = rng.uniform(0.1, 2.0, 32).astype(np.float32)
    w = rng.standard_normal(32).astype(np.float32)
    initial, grads, params, buf = w.copy(), [], [], None
    for _ in range(6):
        g = lam * w
        w, buf = pytorch.sgd(w, g, buf, lr=0.05, momentum=0.9)
        grads.append(g)
        params.append(w.copy())
    path = tmp_path / "run.npz"
    np.savez(
        path, initial=initial, grads=np.stack(grads), params=np.stack(params), lr=0.5, momentum=0.9
    )  # fmt: skip  (a wrong lr)
    assert main(["audit", str(path)]) == 1
    capsys.readouterr()
    assert main(["audit", str(path), "--infer", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["inference"]["inferred"] == ["lr", "momentum"]
    assert out["inference"]["values"][0]["lr"] == 0.05
    assert "(lr 0.05, momentum 0.9: inferred from steps 1-2)" in out["verdict"]
    assert main(["audit", str(path), "--infer", "--plot", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
