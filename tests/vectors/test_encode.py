"""nagref.vectors and ``nagref vectors``: schema, determinism, coverage, replay, a consumer."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

import nagref
from nagref import vectors
from nagref._compare import bitwise_equal
from nagref.cli import main
from nagref.conventions import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vectors")
    assert main(["vectors", "--out", str(out)]) == 0
    return out


def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def test_every_file_satisfies_the_schema(written: Path) -> None:
    schema = vectors.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    files = sorted(written.glob("*.json"))
    # 4 kinds of case: 3 rules and 6 formulations in every dtype, one setting;
    # each registered convention's variants in their dtypes, with and without Nesterov
    conventions = sum(len(v.dtypes) for c in REGISTRY.values() for v in c.variants)
    assert len(files) == 4 * (9 * 3 + 2 * conventions)
    for path in files:
        validator.validate(_load(path))


def test_the_same_command_writes_byte_identical_files(written: Path, tmp_path: Path) -> None:
    assert main(["vectors", "--out", str(tmp_path), "--convention", "pytorch"]) == 0
    again = sorted(tmp_path.glob("*.json"))
    assert len(again) == 64  # (3 + 3 + 2 dtypes) x 2 nesterov x 4 kinds
    for path in again:
        assert path.read_bytes() == (written / path.name).read_bytes()


def test_every_convention_variant_and_dtype_has_every_kind_of_case(written: Path) -> None:
    names = {p.stem for p in written.glob("*.json")}
    for convention, variants in vectors.CONVENTIONS.items():
        for variant, subject in variants.items():
            for dtype in subject.dtypes:
                for nesterov in subject.nesterov:
                    suffix = "-nesterov" if nesterov else ""
                    for kind in ("basic", "lr-change", "special", "first-step"):
                        assert f"{convention}-{variant}-{dtype}-{kind}{suffix}" in names


def _floats(entry: dict[str, list[str]], dtype: str) -> np.ndarray:
    exact = np.array([float.fromhex(h) if "x" in h else float(h) for h in entry["hex"]])
    decimal = np.array([float(d) for d in entry["decimal"]], dtype=dtype)
    assert exact.astype(dtype).tobytes() == decimal.tobytes()  # the two spellings agree
    assert exact.astype(dtype).astype(np.float64).tobytes() == exact.tobytes()  # in the dtype
    return exact.astype(dtype)


def test_special_and_lr_change_and_first_step_cases_hold_what_they_say(written: Path) -> None:
    special = _load(written / "keras-jax-float32-special.json")
    grads = np.concatenate([_floats(s["grad"], "float32") for s in special["steps"]])
    assert np.isnan(grads).any()
    assert np.isposinf(grads).any()
    assert np.isneginf(grads).any()
    zeros = grads[grads == 0]
    assert np.signbit(zeros).any()
    assert not np.signbit(zeros).all()
    assert ((grads != 0) & (np.abs(grads) < np.finfo(np.float32).tiny)).any()
    changing = _load(written / "optax-jit-float64-lr-change.json")
    lrs = {s["hyperparameters"]["learning_rate"]["hex"] for s in changing["steps"]}
    assert len(lrs) == len(changing["steps"])
    first = _load(written / "pytorch-fused-float64-first-step-nesterov.json")
    assert len(first["steps"]) == 1
    assert first["initial"]["state"] == [None]
    assert first["steps"][0]["hyperparameters"]["nesterov"] is True


def _replay(case: dict[str, Any]) -> None:
    """Recompute a case from its JSON alone, calling the function it names."""
    module, _, name = case["function"].rpartition(".")
    fn = getattr(nagref, name) if module == "nagref" else getattr(_module(module), name)
    dtype = case["dtype"]
    param = _floats(case["initial"]["param"], dtype)
    state = [None if s is None else _floats(s, dtype) for s in case["initial"]["state"]]
    for step in case["steps"]:
        hypers = {  # every keyword argument, under the function's own names
            k: (float.fromhex(v["hex"]) if isinstance(v, dict) else v)
            for k, v in step["hyperparameters"].items()
        }
        grad = _floats(step["grad"], dtype)
        # the positional arguments by the function's own names: the state's is in
        # state_names, the first is the parameters, the other the gradient
        named = {case["state_names"][0]: state[0]} if state else {}
        positional = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind is p.POSITIONAL_OR_KEYWORD
        ]
        args = [param] + [named.get(name, grad) for name in positional[1:]]
        with np.errstate(all="ignore"):
            if state:
                param, new = fn(*args, **hypers)
            else:
                param, new = fn(*args, **hypers), None
        state = [new] if state else []
        # bit for bit, NaN matching NaN (the files do not record NaN payloads)
        want = _floats(step["expected"]["param"], dtype)
        assert bitwise_equal(param, want).all(), case["case"]
        for got, expected in zip(state, step["expected"]["state"], strict=True):
            assert got is not None
            assert bitwise_equal(got, _floats(expected, dtype)).all()


def _module(dotted: str) -> Any:
    return importlib.import_module(dotted)


def test_every_case_replays_from_its_json_alone(written: Path) -> None:
    for path in sorted(written.glob("*.json")):
        _replay(_load(path))


def test_the_javascript_example_in_the_docs_runs_bitwise(written: Path, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js runs the docs' JavaScript example; install nodejs"
    text = (ROOT / "docs" / "vectors.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- vectors: javascript example -->\n```javascript\n(.*?)```", text, re.S)
    assert match is not None
    program = tmp_path / "nag.js"
    program.write_text(match.group(1), encoding="utf-8")
    result = subprocess.run(
        [node, str(program), str(written)], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok: 4 cases bit for bit"
    # and it fails when a value is off by one ulp
    broken = tmp_path / "broken"
    shutil.copytree(written, broken, ignore=shutil.ignore_patterns("[!r]*"))
    victim = broken / "rules-nag-float64-basic.json"
    case = _load(victim)
    first = case["steps"][0]["expected"]["param"]
    first["decimal"][0] = repr(np.nextafter(float(first["decimal"][0]), np.inf))
    victim.write_text(json.dumps(case), encoding="utf-8")
    failed = subprocess.run(
        [node, str(program), str(broken)], check=False, capture_output=True, text=True
    )
    assert failed.returncode != 0
    assert "rules-nag-float64-basic.json step 1 element 0" in failed.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["vectors"], "the following arguments are required: --out"),
        (["vectors", "--out", "x", "--convention", "adam"], "invalid choice: 'adam'"),
        (["vectors", "--out", "x", "--dtype", "int8"], "invalid choice: 'int8'"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_an_out_path_that_is_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["vectors", "--out", str(file)])
    assert exit_info.value.code == 2
    assert "exists and is not a directory" in capsys.readouterr().err
