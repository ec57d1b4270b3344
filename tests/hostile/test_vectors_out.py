"""``nagref vectors --out``: an empty path is refused, and a symlink is never followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nagref.cli import main


def test_an_empty_out_is_refused_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["vectors", "--out", ""])
    assert exit_info.value.code == 2
    assert "argument --out: expected a directory, got ''" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_symlink_in_the_directory_is_replaced_not_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    name = "tensorflow-apply_momentum-float32-basic.json"
    (out / name).symlink_to(victim)
    assert main(["vectors", "--out", str(out), "--convention", "tensorflow"]) == 0
    assert victim.read_text() == "precious\n"  # the link's target is untouched
    assert not (out / name).is_symlink()
    assert (out / name).read_text().startswith("{")
    # no temporary file is left behind
    assert not [p for p in os.listdir(out) if p.startswith(".")]
