"""The README: its example runs, and it gives exactly the three set-up commands CI runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_exactly_three_set_up_commands_and_ci_reads_them() -> None:
    commands = _blocks("bash")
    assert len(commands) == 3
    assert "nagref conformance" in commands[0]
    assert "torch==2.13.0" in commands[1]
    assert "'.[test,frameworks]'" in commands[1]  # the live conformance suite runs in CI
    assert commands[1].index("torch==2.13.0") < commands[1].index(".[test,")  # torch first
    # torch 2.14.1 in its own environment, first, without the other frameworks
    assert "torch==2.14.1" in commands[2]
    assert ".venv-torch2.14" in commands[2]
    assert "frameworks]" not in commands[2]
    assert commands[2].index("torch==2.14.1") < commands[2].index(".[test-live]")
    script = ROOT / ".ci" / "run"
    if not script.exists():  # an installed copy of the tests, outside the repository
        pytest.skip("no .ci/run beside these tests")
    functions = subprocess.run(
        [
            "bash",
            "-c",
            f"source <(sed -n '/^readme_command()/,/^}}/p' {script}); "
            "readme_command conformance; readme_command test; readme_command torch-2.14",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert functions.splitlines() == [c.strip() for c in commands]


def test_the_example_runs_and_is_short(capsys: pytest.CaptureFixture[str]) -> None:
    (example,) = _blocks("python")
    assert len(example.strip().splitlines()) <= 10
    exec(compile(example, "README.md", "exec"), {})
    w, v = map(np.float32, capsys.readouterr().out.split())
    # three NAG steps on Σ p² from p = 1, by hand: V1 = .2, W1 = .8; V2 = .308, ...
    p, vel = np.float32(1), np.float32(0)
    for _ in range(3):
        g = np.float32(2) * (p - np.float32(0.9) * vel)
        vel = np.float32(0.9) * vel + np.float32(0.1) * g
        p = p - vel
    assert (w, v) == (p, vel)
