"""nagref audit's arguments and command (nagref._audit_command, through nagref.cli.main)."""

from __future__ import annotations

import pytest

from nagref.cli import main


def test_the_help_names_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["audit", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--json", "--ulps K", "--plot FILE.png"):
        assert flag in text
    assert "one audit, one file (needs matplotlib: pip install 'nagref[plot]')" in text
