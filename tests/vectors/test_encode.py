"""nagref.vectors and ``nagref vectors``: schema, determinism, coverage, replay, a consumer."""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import ml_dtypes
import numpy as np
import pytest

import nagref
from nagref import _dtypes, vectors
from nagref._compare import bitwise_equal
from nagref.cli import main
from nagref.conventions import REGISTRY
from nagref.vectors.encode import decode_floats, dumps, encode_floats
from nagref.vectors.hexfloat import array_to_bits

ROOT = Path(__file__).resolve().parents[2]
BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


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
    files = sorted(written.glob("*.json"))
    # 4 kinds of case: 3 rules and 6 formulations in every dtype, one setting;
    # each registered convention's variants in their dtypes, with and without Nesterov
    conventions = sum(len(v.dtypes) for c in REGISTRY.values() for v in c.variants)
    extras = sum(
        2 * len(v.dtypes) * sum(e.applies(v) for e in c.extras)
        for c in REGISTRY.values()
        for v in c.variants
    )  # the registry's further cases (PyTorch's layouts), with and without Nesterov
    assert len(files) == 4 * (9 * len(vectors.DTYPES) + 2 * conventions) + extras
    assert "bfloat16" in vectors.DTYPES
    # every file through jsonschema-rs (the Python validator takes 40 ms a file here,
    # two minutes for them all); the two agree on the files of every dtype and kind
    fast = jsonschema_rs.Draft202012Validator(schema)
    for path in files:
        fast.validate(_load(path))
    reference = jsonschema.Draft202012Validator(schema)
    for path in files[:: len(files) // 40]:
        reference.validate(_load(path))


def _validators() -> list[Any]:
    """The reference validator and the fast one every file goes through: both must refuse."""
    schema = vectors.schema()
    return [jsonschema.Draft202012Validator(schema), jsonschema_rs.Draft202012Validator(schema)]


def test_the_same_command_writes_byte_identical_files(written: Path, tmp_path: Path) -> None:
    assert main(["vectors", "--out", str(tmp_path), "--convention", "pytorch"]) == 0
    again = sorted(tmp_path.glob("*.json"))
    torch = REGISTRY["pytorch"]
    kinds = sum(
        len(v.dtypes) * (4 + sum(e.applies(v) for e in torch.extras)) for v in torch.variants
    )
    assert len(again) == kinds * 2  # x 2 nesterov: 4 kinds, and the layouts where they apply
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
    if dtype == "bfloat16":  # the bits are the value; hex and decimal must agree with them
        assert len(entry["bits"]) == exact.size
        held = np.array([int(b, 16) for b in entry["bits"]], np.uint16).view(BFLOAT16)
        assert bitwise_equal(held.astype(np.float64), exact).all()
        rounded = [_dtypes.round_to(float(d), dtype) for d in entry["decimal"]]
        assert bitwise_equal(np.array(rounded), exact).all()
        return held
    assert "bits" not in entry
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
    dtype, shape = case["dtype"], tuple(case["shape"])  # arrays in C order, of this shape

    def floats(entry: dict[str, list[str]], dtype: str) -> np.ndarray:
        return _floats(entry, dtype).reshape(shape)

    param = floats(case["initial"]["param"], dtype)
    own = case.get("state_dtype", dtype)  # the state's dtype, where it is not the parameters'
    state = [None if s is None else floats(s, own) for s in case["initial"]["state"]]
    for step in case["steps"]:
        hypers = {  # every keyword argument, under the function's own names
            k: (float.fromhex(v["hex"]) if isinstance(v, dict) else v)
            for k, v in step["hyperparameters"].items()
        }
        grad = floats(step["grad"], dtype)
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
        want = floats(step["expected"]["param"], dtype)
        assert bitwise_equal(param, want).all(), case["case"]
        for got, expected in zip(state, step["expected"]["state"], strict=True):
            assert got is not None
            assert bitwise_equal(got, floats(expected, own)).all()


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


# -- bfloat16: bits beside hex and decimal ------------------------------------------------

SPECIALS = [0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x7F7F, 0xFF7F, 0x7F80, 0xFF80,
            0x7FC0, 0xFFC1, 0x7F81, 0x3F80, 0x3EAB]  # fmt: skip


def test_a_bfloat16_entry_round_trips_every_special_value_exactly() -> None:
    x = np.array(SPECIALS, np.uint16).view(BFLOAT16)
    entry = encode_floats(x)
    assert entry["bits"] == [f"0x{b:04x}" for b in SPECIALS]
    assert entry["hex"][:3] == ["0x0.0p+0", "-0x0.0p+0", "0x1.0000000000000p-133"]
    assert entry["decimal"][6:11] == ["3.39e+38", "-3.39e+38", "inf", "-inf", "nan"]
    back = decode_floats(entry, "bfloat16", [len(SPECIALS)])
    assert back.dtype == BFLOAT16
    assert back.view(np.uint16).tolist() == SPECIALS  # NaN payloads and signs, from the bits
    assert "bits" not in encode_floats(np.ones(3, np.float32))  # the other dtypes: as before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda e: e["bits"].__setitem__(13, "0x3f81"),
            r"^bits\[13\]: 0x3f81 is 0x1.0200000000000p\+0, but hex\[13\] is 0x1.0000000000000p\+0",
        ),
        (lambda e: e["bits"].__setitem__(10, "0x7f80"), r"bits\[10\]: 0x7f80 is inf, but .* nan"),
        (
            lambda e: e["bits"].__setitem__(1, "0x0000"),
            r"bits\[1\]: 0x0000 is 0x0.0p\+0, but hex\[1\] is -0x0.0p\+0",
        ),
        (lambda e: e["bits"].__setitem__(2, "0x1"), "bits: element 2: not a bit pattern"),
        (lambda e: e["bits"].pop(), "bits: 14 bit patterns for 15 hex values"),
        (lambda e: e.pop("bits"), r"bits: missing key 'bits' \(every bfloat16 array of a vector"),
        (lambda e: e["decimal"].__setitem__(14, "3.35e-01"), "element 14: decimal '3.35e-01'"),
        (lambda e: e["hex"].__setitem__(14, "0x1.5610000000000p-2"), "element 14: .* not a bf"),
    ],
)
def test_a_bfloat16_entry_that_disagrees_with_itself_is_refused(change: Any, message: str) -> None:
    entry = encode_floats(np.array(SPECIALS, np.uint16).view(BFLOAT16))
    change(entry)
    with pytest.raises(ValueError, match=message):
        decode_floats(entry, "bfloat16", [len(SPECIALS)])


def test_bits_in_another_dtype_are_refused() -> None:
    entry = encode_floats(np.ones(2, np.float32)) | {"bits": ["0x3f80", "0x3f80"]}
    with pytest.raises(ValueError, match=r"bits: unknown key 'bits' \(only a bfloat16 array holds"):
        decode_floats(entry, "float32", [2])


@pytest.mark.parametrize("validator", _validators(), ids=["jsonschema", "jsonschema-rs"])
def test_the_schema_requires_bits_in_bfloat16_and_refuses_them_elsewhere(
    written: Path, validator: Any
) -> None:
    case = _load(written / "rules-nag-bfloat16-special.json")
    validator.validate(case)
    for path in (("initial", "param"), ("steps", 2, "grad"), ("steps", 0, "expected", "param"),
                 ("steps", 3, "expected", "state", 0), ("initial", "state", 0)):  # fmt: skip
        broken = copy.deepcopy(case)
        node: Any = broken
        for key in path:
            node = node[key]
        del node["bits"]
        assert not validator.is_valid(broken), path
    bad = copy.deepcopy(case)
    bad["initial"]["param"]["bits"][0] = "0x3F80"
    assert not validator.is_valid(bad)
    plain = _load(written / "rules-nag-float32-special.json")
    validator.validate(plain)
    plain["steps"][1]["expected"]["state"][0]["bits"] = ["0x0000"] * 37
    assert not validator.is_valid(plain)
    for key, value in (("hex", "0x1.8p+0x"), ("hex", "inf "), ("decimal", 1.5)):
        wrong = _load(written / "rules-nag-float32-special.json")
        wrong["initial"]["param"][key][3] = value
        assert not validator.is_valid(wrong), (key, value)
    extra = _load(written / "rules-nag-float32-special.json")
    extra["surprise"] = 1
    assert not validator.is_valid(extra)
    del extra["surprise"], extra["steps"]
    assert not validator.is_valid(extra)


def test_bits_are_in_every_bfloat16_array_and_in_no_other(written: Path) -> None:
    seen = 0
    for path in sorted(written.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        case = json.loads(text)
        params, states = [case["initial"]["param"]], [*case["initial"]["state"]]
        for step in case["steps"]:
            params += [step["grad"], step["expected"]["param"]]
            states += step["expected"]["state"]
        with_bits = list(params)
        if case.get("state_dtype", case["dtype"]) == "bfloat16":
            with_bits += states
        else:
            assert all(e is None or "bits" not in e for e in states)
        if case["dtype"] == "bfloat16":
            size = math.prod(case["shape"])
            assert all(e is None or len(e["bits"]) == size for e in with_bits)
            seen += 1
        else:
            assert '"bits"' not in text
    assert seen == sum(1 for c in vectors.cases(dtypes=("bfloat16",)))
    assert seen >= 4 * 9  # the rules and formulations at least


def test_a_bfloat16_case_replayed_through_its_function_gives_the_expected_bits(
    written: Path,
) -> None:
    for name in ("rules-momentum-bfloat16-special", "rules-nag-bfloat16-lr-change",
                 "formulations-dozat-bfloat16-special", "rules-sgd-bfloat16-special"):  # fmt: skip
        case = _load(written / f"{name}.json")
        fn = _function(case["function"])
        param = decode_floats(case["initial"]["param"], "bfloat16", case["shape"])
        state = [None if s is None else decode_floats(s, "bfloat16", case["shape"])
                 for s in case["initial"]["state"]]  # fmt: skip
        for step in case["steps"]:
            hypers = {k: float.fromhex(v["hex"]) for k, v in step["hyperparameters"].items()}
            grad = decode_floats(step["grad"], "bfloat16", case["shape"])
            with np.errstate(all="ignore"):
                if state:
                    param, new = fn(param, grad, state[0], **hypers)
                    state = [new]
                else:
                    param = fn(param, grad, **hypers)
            assert param.dtype == BFLOAT16
            assert array_to_bits(param) == step["expected"]["param"]["bits"], name  # NaNs too
            for got, want in zip(state, step["expected"]["state"], strict=True):
                assert array_to_bits(got) == want["bits"], name
        if "special" in name:
            assert any("nan" in s["grad"]["hex"] for s in case["steps"])
            assert "0x0001" in case["steps"][0]["grad"]["bits"]  # the smallest subnormal


def _function(qualname: str) -> Any:
    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_the_recordings_encode_byte_for_byte_as_they_were_written() -> None:
    paths = sorted((ROOT / "conformance" / "recordings").glob("*.json"))
    if not paths:
        pytest.skip("no recordings in this checkout")
    for path in paths[::4]:
        case = _load(path)
        dtype, shape = case["dtype"], case["shape"]
        entries = [case["initial"]["param"]]
        entries += [e for step in case["steps"] for e in (step["grad"], step["expected"]["param"])]
        for entry in entries:
            assert encode_floats(decode_floats(entry, dtype, shape)) == entry, path.name
        assert dumps(case) + "\n" == path.read_text(encoding="utf-8")


def test_the_counts_on_the_docs_page_are_the_catalogues() -> None:
    text = (ROOT / "docs" / "vectors.md").read_text(encoding="utf-8")
    every = list(vectors.cases())
    assert f"# all {len(every)} cases" in text
    bf16 = sum(1 for c in every if c.dtype == "bfloat16")
    assert f"# the {bf16} bfloat16 cases" in text


def test_a_state_of_another_dtype_is_named_in_state_dtype(written: Path) -> None:
    """Optax's float32 trace of 16-bit parameters: the only cases with a ``state_dtype``."""
    named = {}
    for case in vectors.cases():
        state = case.initial_state[0] if case.initial_state else None
        own = case.dtype if state is None else state.dtype.name
        assert (case.state_dtype or case.dtype) == own
        assert all(s[0] is None or s[0].dtype.name == own for s in case.states if s)
        if case.state_dtype is not None:
            named[(case.convention, case.variant, case.dtype)] = case.state_dtype
            text = written / f"{case.convention}-{case.variant}-{case.dtype}-{case.name}.json"
            assert _load(text)["state_dtype"] == case.state_dtype
    options = {
        (name, v.name, dtype): c.state_dtype(v.options, dtype)
        for name, c in REGISTRY.items()
        for v in c.variants
        for dtype in v.dtypes
    }
    assert named == {k: d for k, d in options.items() if d != k[2]}
    for path in written.glob("*.json"):
        assert ('"state_dtype"' in path.read_text()) == any(
            path.name.startswith(f"{c}-{v}-{d}-") for c, v, d in named
        )
