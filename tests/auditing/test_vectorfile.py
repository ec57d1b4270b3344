"""nagref.auditing.vectorfile: vectors read exactly as nagref writes them, in any key order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nagref._compare import bitwise_equal
from nagref.auditing import Trajectory, TrajectoryError, load, vectorfile
from nagref.auditing.vectorfile import KEYS, REQUIRED
from nagref.conventions import REGISTRY
from nagref.vectors import schema
from nagref.vectors.catalogue import cases
from nagref.vectors.encode import decode_floats, dumps, encode, write
from nagref.vectors.hexfloat import from_hex

RECORDINGS = Path(__file__).parents[2] / "conformance" / "recordings"


def test_the_keys_are_the_schemas() -> None:
    s = schema()
    properties, defs = s["properties"], s["$defs"]
    step = properties["steps"]["items"]
    assert KEYS["vector"] == set(properties)
    assert REQUIRED["vector"] == tuple(s["required"])
    assert KEYS["initial"] == set(properties["initial"]["properties"])
    assert REQUIRED["initial"] == tuple(properties["initial"]["required"])
    assert KEYS["step"] == set(step["properties"])
    assert REQUIRED["step"] == tuple(step["required"])
    assert KEYS["expected"] == set(step["properties"]["expected"]["properties"])
    assert KEYS["floats"] == set(defs["floats"]["properties"]) == {"hex", "decimal", "bits"}
    assert REQUIRED["floats"] == tuple(defs["floats"]["required"])
    assert KEYS["float"] == set(defs["float"]["properties"]) == {"hex", "decimal"}
    assert REQUIRED["float"] == tuple(defs["float"]["required"])
    assert KEYS["recorded_by"] == set(properties["recorded_by"]["properties"])
    assert REQUIRED["spec"] == tuple(properties["spec"]["required"])
    assert s["dependentRequired"] == {"recorded_by": ["spec"], "spec": ["recorded_by"]}


def _reference(data: dict[str, Any]) -> dict[str, Any]:
    """What the loader read before it streamed: json.loads, decode_floats, the first name."""
    dtype, shape = data["dtype"], tuple(data["shape"])

    def first(h: dict[str, Any], names: tuple[str, ...], default: Any, flag: bool = False) -> Any:
        name = next((n for n in names if n in h), None)
        if name is None:
            return default
        return h[name] if flag else from_hex(h[name]["hex"])

    steps = data["steps"]
    last = steps[-1]["hyperparameters"]
    nesterov = bool(first(last, vectorfile.FIXED["nesterov"][0], False, flag=True))
    if data["variant"] in ("nag", "sutskever_nag", "bengio", "dozat", "nesterov_1983"):
        nesterov = True
    fixed = {
        k: from_hex(last[k]["hex"]) if last.get(k) else 0.0 for k in ("dampening", "weight_decay")
    }
    return {
        **fixed,
        "maximize": last.get("maximize", False),
        "initial": decode_floats(data["initial"]["param"], dtype, shape),
        "grads": np.stack([decode_floats(s["grad"], dtype, shape) for s in steps]),
        "params": np.stack([decode_floats(s["expected"]["param"], dtype, shape) for s in steps]),
        # the names the loader knows (the conventions' from the registry)
        "lr": tuple(first(s["hyperparameters"], vectorfile.LR_NAMES, None) for s in steps),
        "momentum": tuple(first(s["hyperparameters"], vectorfile.MU_NAMES, 0.0) for s in steps),
        "nesterov": nesterov,
    }  # fmt: skip


def _same(tr: Trajectory, want: dict[str, Any]) -> None:
    for key in ("initial", "grads", "params"):
        got = getattr(tr, key)
        assert got.dtype == want[key].dtype
        assert got.shape == want[key].shape
        assert bitwise_equal(got, want[key]).all(), key
    assert tr.lr == want["lr"]
    assert tr.momentum == want["momentum"]
    assert tr.nesterov is want["nesterov"]
    assert (tr.dampening, tr.weight_decay) == (want["dampening"], want["weight_decay"])
    assert tr.maximize is want["maximize"]


def test_every_vector_of_a_convention_reads_back_as_before(tmp_path: Path) -> None:
    paths = write(tmp_path, ("pytorch",))
    assert len(paths) > 40
    for path in paths:
        _same(load(path), _reference(json.loads(path.read_text())))


def test_the_recordings_read_back_as_before() -> None:
    paths = sorted(RECORDINGS.glob("*.json"))
    if not paths:
        pytest.skip("no recordings in this checkout")
    loaded = 0
    for path in paths:
        data = json.loads(path.read_text())
        if any(_null_momentum(s["hyperparameters"]) for s in data["steps"]):
            names = "|".join(vectorfile.MU_NAMES)
            with pytest.raises(TrajectoryError, match=rf"({names}) must be a float .* got null"):
                load(path)  # optax without momentum: the audit needs a number
            continue
        _same(load(path), _reference(data))
        loaded += 1
    assert loaded > len(paths) // 2


def _null_momentum(hyperparameters: dict[str, Any]) -> bool:
    """Whether the momentum the audit reads (its first name there) is null."""
    named = [n for n in vectorfile.MU_NAMES if n in hyperparameters]
    return bool(named) and hyperparameters[named[0]] is None


def _case(variant: str = "nag", name: str = "special") -> dict[str, Any]:
    return encode(next(c for c in cases(("rules",), ("float16",)) if (c.variant, c.name)
                       == (variant, name)))  # fmt: skip


@pytest.mark.parametrize("order", ["sorted", "reversed", "compact", "spaced"])
def test_key_order_and_whitespace_do_not_matter(tmp_path: Path, order: str) -> None:
    data = _case()
    want = _reference(data)
    if order == "sorted":
        text = dumps(data)
    elif order == "reversed":  # dtype and shape after the floats: read in float64, then checked
        text = json.dumps(_reverse(data))
    elif order == "compact":
        text = json.dumps(data, separators=(",", ":"))
    else:
        text = json.dumps(data, indent="\t", separators=(" ,\r\n ", " :\n"))
    path = tmp_path / "v.json"
    path.write_text(text)
    _same(load(path), want)


def _reverse(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reverse(value[k]) for k in sorted(value, reverse=True)}
    if isinstance(value, list):
        return [_reverse(v) for v in value]
    return value


def test_floats_read_before_the_dtype_are_still_checked_against_it(tmp_path: Path) -> None:
    data = _reverse(_case())
    data["initial"]["param"]["hex"][3] = "0x1.0000000001p+0"  # a float64, not a float16
    path = tmp_path / "v.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TrajectoryError, match=r"initial.param: value 3 .*not a float16 value"):
        load(path)


def _refused(tmp_path: Path, data: Any, message: str) -> str:
    path = tmp_path / "v.json"
    path.write_text(data if isinstance(data, str) else dumps(data))
    with pytest.raises(TrajectoryError, match=message) as info:
        load(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ")
    assert "\n" not in text
    return text


def test_the_hyperparameters_are_read_strictly(tmp_path: Path) -> None:
    data = _case("momentum", "basic")
    h = data["steps"][2]["hyperparameters"]
    h["momentum"] = {"hex": "0x1.0p+0", "decimal": "1"}
    _refused(tmp_path, data, r"momentum must be in \[0, 1\), got 1.0 at step 3")
    h["momentum"] = {"hex": "-0x1.0p-1", "decimal": "-0.5"}
    _refused(tmp_path, data, r"momentum must be in \[0, 1\), got -0.5 at step 3")
    h["momentum"] = None
    _refused(tmp_path, data, 'step 3: momentum must be a float {"hex", ...}, got null')
    h["momentum"] = {"hex": "0x1.0p-1", "decimal": "0.5", "exact": True}
    _refused(tmp_path, data, "step 3: hyperparameter 'momentum': unknown key 'exact'")
    h["momentum"] = {"hex": "0x1.0p-1"}
    _refused(tmp_path, data, "step 3: hyperparameter 'momentum': missing key 'decimal'")
    h["momentum"] = {"hex": "0x1.0p-1", "decimal": "0.5"}
    h["lr"] = {"hex": "nan", "decimal": "nan"}
    _refused(tmp_path, data, "lr must be finite and >= 0, got nan at step 3")
    del h["lr"]
    _refused(tmp_path, data, r"step 3 has no learning rate \(lr, learning_rate")
    h["learning_rate"] = {"hex": "0x1.0p+9999", "decimal": "inf"}
    _refused(tmp_path, data, "step 3: hyperparameter 'learning_rate'.hex: too large for float64")
    h["learning_rate"] = {"hex": "0x1.0p-3", "decimal": "0.125"}
    h["nesterov"] = True  # the other steps say false
    _refused(tmp_path, data, "step 3: nesterov is true, unlike the step before")
    h["nesterov"] = "yes"
    _refused(tmp_path, data, 'step 3: nesterov must be true or false, got "yes"')
    h["nesterov"] = False
    h["maximize"] = "yes"
    _refused(tmp_path, data, 'step 3: maximize must be true or false, got "yes"')
    h["maximize"] = True  # the other steps do not say: false
    _refused(tmp_path, data, "step 3: maximize is true, unlike the step before")
    del h["maximize"]
    h["dampening"] = True
    _refused(tmp_path, data, 'step 3: dampening must be a float {"hex", ...}, got true')
    h["dampening"] = {"hex": "0x1.0p-1", "decimal": "0.5"}
    _refused(tmp_path, data, "step 3: dampening is 0.5, unlike the step before")
    h["dampening"] = None  # null: none
    (tmp_path / "v.json").write_text(dumps(data))
    assert load(tmp_path / "v.json").lr[2] == 0.125


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["steps"][1]["grad"]["hex"].pop(), r"step 2: grad: 36 hex and 37 decimal"),
        (lambda d: d["steps"][1]["grad"]["hex"].append("0x0.0p+0"), "more than 37 values"),
        (lambda d: d["steps"][0]["expected"]["state"].append(None), r"2 states, expected 1"),
        (lambda d: d["initial"].update(state=[]), r"initial.state: 0 states, expected 1"),
        (lambda d: d["steps"][0].update(extra=1), "step 1: unknown key 'extra'"),
        (lambda d: d["steps"][0].pop("grad"), "step 1: missing key 'grad'"),
        (lambda d: d.update(steps=[]), "the trajectory has no steps"),
        (lambda d: d.update(dtype="bfloat8"), "dtype must be one of .* got 'bfloat8'"),
        (lambda d: d.update(convention="adam"), "convention: 'adam' is not one nagref knows"),
        (lambda d: d.update(shape=[37, 0.5]), r"shape\[1\]: expected an integer .* got 0.5"),
        (lambda d: d.update(shape=[10**9]), "more elements than the file holds"),
        (lambda d: d.update(shape=[0, 10**17, 10**17]), "too large for an array"),
        (lambda d: d.update(generator="x" * 5000), "generator: a string longer than the limit"),
        (lambda d: d.update(recorded_by={"framework": "torch"}), "recorded_by and spec"),
        (lambda d: d["steps"][0]["grad"]["decimal"].__setitem__(0, "1.5"), "a decimal string"),
    ],
)
def test_structure_counts_and_types_are_checked(tmp_path: Path, change: Any, message: str) -> None:
    data = _case("momentum", "basic")
    change(data)
    _refused(tmp_path, data, message)


def test_nothing_may_follow_the_vector(tmp_path: Path) -> None:
    _refused(tmp_path, dumps(_case()) + "\n{}", "expected nothing after the vector")


# -- bfloat16: the arrays come from the bits, each checked against its hex float ----------


def _bf16(variant: str = "momentum", name: str = "special") -> dict[str, Any]:
    return encode(next(c for c in cases(("rules",), ("bfloat16",)) if (c.variant, c.name)
                       == (variant, name)))  # fmt: skip


def _exactly(tr: Trajectory, want: dict[str, Any]) -> None:
    _same(tr, want)
    for key in ("initial", "grads", "params"):  # the very bits, NaN payloads and signs too
        assert getattr(tr, key).tobytes() == want[key].tobytes(), key


def test_every_bfloat16_vector_reads_back_from_its_bits(tmp_path: Path) -> None:
    paths = write(tmp_path, ("rules", "formulations"), ("bfloat16",))
    assert len(paths) == 4 * 9
    for path in paths:
        tr = load(path)
        assert tr.dtype == "bfloat16"
        _exactly(tr, _reference(json.loads(path.read_text())))


@pytest.mark.parametrize("order", ["sorted", "reversed", "compact"])
def test_a_bfloat16_vector_reads_in_any_key_order(tmp_path: Path, order: str) -> None:
    data = _bf16()
    # a NaN with a payload and a sign, which only the bits hold
    data["steps"][0]["grad"]["bits"][3] = "0xffc1"
    data["steps"][0]["grad"]["hex"][3] = "nan"
    data["steps"][0]["grad"]["decimal"][3] = "nan"
    want = _reference(data)
    assert want["grads"][0].view(np.uint16)[3] == 0xFFC1
    if order == "sorted":
        text = dumps(data)
    elif order == "reversed":  # the dtype after the floats, and the bits after the hex floats
        text = json.dumps(_reverse(data))
    else:
        text = json.dumps(data, separators=(",", ":"))
    path = tmp_path / "v.json"
    path.write_text(text)
    _exactly(load(path), want)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["steps"][2]["grad"]["bits"].__setitem__(5, "0x3f80"),
            r"step 3: grad.bits\[5\]: 0x3f80 is 0x1.0000000000000p\+0, but hex\[5\] is ",
        ),
        (
            lambda d: d["initial"]["param"]["bits"].__setitem__(0, "0x7fc0"),
            r"initial.param.bits\[0\]: 0x7fc0 is nan, but hex\[0\] is ",
        ),
        (
            lambda d: d["steps"][0]["expected"]["state"][0]["bits"].__setitem__(36, "0x8000"),
            r"step 1: expected.state\[0\].bits\[36\]: 0x8000 is -0x0.0p\+0, but hex\[36\] is ",
        ),
        (
            lambda d: d["steps"][1]["expected"]["param"].pop("bits"),
            r"step 2: expected.param: missing key 'bits' \(every bfloat16 array of a vector",
        ),
        (lambda d: d["steps"][1]["grad"]["bits"].pop(), "step 2: grad: 36 bits and 37 hex"),
        (lambda d: d["steps"][1]["grad"]["bits"].append("0x0000"), "more than 37 values"),
        (
            lambda d: d["initial"]["param"]["bits"].__setitem__(2, "0x3F80"),
            r"initial.param.bits: expected a bit pattern string \(like 0x3fc0\)",
        ),
        (
            lambda d: d["initial"]["param"]["hex"].__setitem__(2, "0x1.0000000000001p+0"),
            r"initial.param.hex\[2\]: '0x1.0000000000001p\+0' is not a bfloat16 value|"
            r"initial.param: value 2 is not a bfloat16 value",
        ),
    ],
)
def test_a_bfloat16_vector_whose_bits_disagree_is_refused(
    tmp_path: Path, change: Any, message: str, reverse: bool
) -> None:
    data = _bf16()
    change(data)
    _refused(tmp_path, _reverse(data) if reverse else data, message)


@pytest.mark.parametrize("reverse", [False, True])
def test_bits_in_another_dtype_are_refused(tmp_path: Path, reverse: bool) -> None:
    data = _case("momentum", "basic")  # float16
    data["steps"][1]["grad"]["bits"] = ["0x0000"] * 37
    message = (
        r"step 2: grad: unknown key 'bits' \(only a bfloat16 array holds bit patterns, "
        "not a float16 one"
    )
    _refused(tmp_path, _reverse(data) if reverse else data, message)
    plain = _bf16("momentum", "basic")
    for entry in (plain["initial"]["param"], plain["steps"][0]["grad"]):
        del entry["bits"]
    plain["dtype"] = "float32"  # a bfloat16 vector without bits: its values are float32's too
    (tmp_path / "plain.json").write_text(dumps(plain))
    with pytest.raises(TrajectoryError, match=r"(param|state\[0\]): unknown key 'bits'"):
        load(tmp_path / "plain.json")
    plain["dtype"] = "bfloat16"  # and calling itself bfloat16, some arrays lack them
    message = "initial.param: missing key 'bits'" if not reverse else "missing key 'bits'"
    _refused(tmp_path, _reverse(plain) if reverse else plain, message)


def _trace32() -> dict[str, Any]:
    variant = "eager-float32-trace"
    if variant not in {v.name for v in REGISTRY["optax"].variants}:
        pytest.skip("no optax variant keeps a float32 trace")
    (case,) = [c for c in cases(("optax",), ("bfloat16",)) if (c.variant, c.name)
               == (variant, "special")]  # fmt: skip
    data = encode(case)
    assert data["state_dtype"] == "float32"
    return data


@pytest.mark.parametrize("reverse", [False, True])
def test_a_float32_state_of_bfloat16_parameters_reads_in_any_order(
    tmp_path: Path, reverse: bool
) -> None:
    data = _trace32()
    assert "bits" not in data["steps"][0]["expected"]["state"][0]
    path = tmp_path / "v.json"
    path.write_text(json.dumps(_reverse(data)) if reverse else dumps(data))
    _exactly(load(path), _reference(data))


@pytest.mark.parametrize("reverse", [False, True])
def test_a_state_must_be_of_its_dtype(tmp_path: Path, reverse: bool) -> None:
    data = _trace32()
    del data["state_dtype"]  # a float32 trace, in a file that says bfloat16 for all
    _refused(
        tmp_path,
        _reverse(data) if reverse else data,
        r"step \d: expected.state\[0\].hex\[\d+\]: \S+ is not a bfloat16 value",
    )
    data = _trace32() | {"state_dtype": "float16"}
    _refused(tmp_path, _reverse(data) if reverse else data, r"is not a float16 value")
    data = _trace32() | {"state_dtype": "bfloat16"}
    _refused(
        tmp_path,
        _reverse(data) if reverse else data,
        r"initial.state\[0\]: missing key 'bits' \(every bfloat16 array of a vector",
    )
    data = _trace32() | {"state_dtype": "float8"}
    _refused(tmp_path, data, "state_dtype must be one of .* got 'float8'")
