"""docs/audit.md: its scripts run, and the audit prints exactly what the page shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from nagref import auditing
from nagref.auditing import jsontokens, model_trajectory, trajectory, vectorfile
from nagref.cli import main

DOC = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text(encoding="utf-8")
SCRIPTS = re.findall(r"<!-- audit: (\S+) -->\n```python\n(.*?)```", DOC, re.S)
OUTPUTS = re.findall(r"<!-- audit output: (\S+) -->\n```text\n(.*?)```", DOC, re.S)


def test_the_page_has_three_scripts_and_three_reports() -> None:
    assert [name for name, _ in SCRIPTS] == ["mine.py", "fixed.py", "exact.py"]
    assert [name for name, _ in OUTPUTS] == ["mine.npz", "fixed.npz", "exact.npz"]


def test_the_reports_on_the_page_are_what_the_audit_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, code in SCRIPTS:
        (tmp_path / name).write_text(code, encoding="utf-8")
        subprocess.run([sys.executable, name], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    codes = []
    for npz, shown in OUTPUTS:
        codes.append(main(["audit", npz]))
        assert capsys.readouterr().out == shown
    # fixed.npz is bit for bit torch's scalar kernels (ATEN_CPU_CAPABILITY=default)
    assert codes == [0, 0, 0]  # mine.npz: MLX's SGD (a zero velocity, dampened from step 1)


RECORDED = re.findall(r"<!-- record: (\S+) -->\n```python\n(.*?)```", DOC, re.S)
RECORD_OUTPUTS = dict(re.findall(r"<!-- record output: (\S+) -->\n```text\n(.*?)```", DOC, re.S))


def test_the_recorded_run_on_the_page_prints_what_the_page_shows(tmp_path: Path) -> None:
    assert [name for name, _ in RECORDED] == ["torch_run.py", "optax_run.py", "keras_run.py",
                                              "sklearn_run.py", "mlx_run.py"]  # fmt: skip
    said = {}
    for name, code in RECORDED:
        (tmp_path / name).write_text(code, encoding="utf-8")
        said[name] = subprocess.run(
            [sys.executable, name], cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout
        assert said[name] == RECORD_OUTPUTS[name]
    assert "VERDICT: indistinguishable: 4 candidates" in said["torch_run.py"]
    assert "(jax_example_libraries jit, nesterov; optax jit, nesterov)" in said["optax_run.py"]
    assert "; sklearn update_params, nesterov;" in said["sklearn_run.py"]
    assert "indistinguishable: 2 candidates " in said["mlx_run.py"]
    assert "(mlx eager; mlx compiled)" in said["mlx_run.py"]
    jitted = "(keras jax-jit, nesterov; keras tensorflow-jit, nesterov; tf_keras sgd-jit, nesterov)"
    assert jitted in said["keras_run.py"]


def test_the_limits_on_the_page_are_the_loaders() -> None:
    section = DOC.split("### What a file may hold")[1].split("\nOnly the candidates")[0]
    text = " ".join(section.split())
    assert f"At most {auditing.MAX_BYTES >> 30} GiB (`MAX_BYTES`)" in text
    assert f"at most {jsontokens.MAX_STRING} bytes (keys 256)" in text
    assert f"at most {jsontokens.MAX_MEMBERS} members" in text
    assert f"at most {jsontokens.MAX_DEPTH} deep" in text
    assert f"runs of {jsontokens._CHUNK >> 10} KB" in text
    assert f"each at most {model_trajectory.MAX_HEADER >> 10} KiB of JSON, `MAX_HEADER`" in text
    assert f"names at most {model_trajectory.MAX_NAME} characters, `MAX_NAME`" in text
    for names in (vectorfile.LR_NAMES, vectorfile.MU_NAMES):
        assert ", ".join(f"`{n}`" for n in names) in text
    plain = text.replace("`", "")
    for rule, (_, wanted) in trajectory.RULES.items():
        assert f"{rule} {wanted}" in plain
