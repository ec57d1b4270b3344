"""nagref.auditing.trajectory: loading .npz and .json trajectories, and refusing bad ones."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nagref import rules
from nagref.auditing import NPZ_KEYS, Trajectory, TrajectoryError, load, trajectory
from nagref.cli import main


def _arrays(steps: int = 3, n: int = 5) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "initial": rng.standard_normal(n).astype(np.float32),
        "grads": rng.standard_normal((steps, n)).astype(np.float32),
        "params": rng.standard_normal((steps, n)).astype(np.float32),
        "lr": np.float64(0.1),
        "momentum": np.float64(0.9),
    }


def _save(tmp_path: Path, arrays: dict[str, Any], name: str = "t.npz") -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_a_good_file_loads_with_per_step_and_optional_entries(tmp_path: Path) -> None:
    arrays = _arrays() | {"lr": np.array([0.1, 0.2, 0.3]), "nesterov": np.bool_(True)}
    tr = load(_save(tmp_path, arrays | {"dampening": np.float64(0.0), "weight_decay": 0.01}))
    assert tr.steps == 3
    assert tr.lr == (0.1, 0.2, 0.3)
    assert tr.momentum == (0.9, 0.9, 0.9)
    assert tr.nesterov is True
    assert tr.weight_decay == 0.01
    assert tr.dtype == "float32"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lr": np.float64(np.nan)}, "lr must be finite and >= 0, got nan"),
        ({"lr": np.float64(-0.1)}, "lr must be finite and >= 0, got -0.1"),
        ({"lr": np.array([0.1, 0.1, -1.0])}, "lr must be finite and >= 0, got -1.0 at step 3"),
        ({"lr": np.array([0.1, 0.1])}, r"lr has shape \(2,\); expected a scalar or \(3,\)"),
        ({"momentum": np.float64(1.0)}, r"momentum must be in \[0, 1\), got 1.0"),
        ({"momentum": np.array(["a"])}, "momentum must be a real number"),
        ({"params": np.zeros((2, 5), np.float32)}, r"params has shape \(2, 5\) but grads"),
        (
            {"grads": np.zeros((3, 4), np.float32)},
            r"grads has shape \(3, 4\); expected \(T, \*\(5,\)\)",
        ),
        (
            {"grads": np.zeros((0, 5), np.float32), "params": np.zeros((0, 5), np.float32)},
            "no steps",
        ),
        ({"initial": np.zeros(5, np.int32)}, "initial has dtype int32"),
        ({"params": np.zeros((3, 5), np.float64)}, "must share a dtype"),
        ({"nesterov": np.float64(0.5)}, "nesterov must be a scalar bool"),
        ({"maximize": np.array([True])}, "maximize must be a scalar bool"),
        ({"dampening": np.float64(2.0)}, r"dampening must be in \[0, 1\], got 2.0"),
        ({"weight_decay": np.array([0.1])}, "weight_decay must be a real scalar"),
        ({"optimizer": np.float64(1)}, "unknown key 'optimizer'"),
    ],
)
def test_bad_contents_are_named(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(TrajectoryError, match=message):
        load(_save(tmp_path, _arrays() | change))


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    arrays = _arrays()
    del arrays["params"]
    with pytest.raises(TrajectoryError, match="missing key 'params'"):
        load(_save(tmp_path, arrays))


def test_lr_and_momentum_may_be_left_out_to_be_inferred(tmp_path: Path) -> None:
    arrays = _arrays()
    del arrays["lr"], arrays["momentum"]
    tr = load(_save(tmp_path, arrays))
    assert (tr.lr, tr.momentum) == (None, None)
    assert tr.steps == arrays["grads"].shape[0]


def test_object_arrays_are_never_unpickled(tmp_path: Path) -> None:
    arrays = _arrays() | {"lr": np.array([{"boom": 1}], dtype=object)}
    path = _save(tmp_path, arrays)
    with pytest.raises(TrajectoryError, match=r"cannot read its arrays.*pickle"):
        load(path)


def test_empty_truncated_and_foreign_files(tmp_path: Path) -> None:
    good = _save(tmp_path, _arrays())
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(TrajectoryError, match="the file is empty"):
        load(empty)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(TrajectoryError, match=r"not a readable \.npz archive"):
        load(truncated)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(TrajectoryError, match=r"expected a \.npz or \.json file, got '\.txt'"):
        load(text)
    with pytest.raises(TrajectoryError, match="no such file"):
        load(tmp_path / "absent.npz")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(TrajectoryError, match=r"expected a key \(a string\) at byte 1, got 'not"):
        load(broken)
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"a": 1}')
    with pytest.raises(TrajectoryError, match="not a nagref test vector"):
        load(foreign)
    extra = tmp_path / "extra.json"
    extra.write_text('{"nagref_vectors": 1, "optimizer": "adam"}')
    with pytest.raises(TrajectoryError, match="unknown key 'optimizer' for a nagref test vector"):
        load(extra)
    partial = tmp_path / "partial.json"
    partial.write_text('{"nagref_vectors": 1, "dtype": "float32"}')
    with pytest.raises(TrajectoryError, match="missing key 'generator'"):
        load(partial)


def test_a_member_larger_than_the_limit_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trajectory, "MAX_BYTES", 4096)
    arrays = _arrays() | {
        "grads": np.zeros((3, 5000), np.float32),
        "params": np.zeros((3, 5000), np.float32),
    }
    arrays["initial"] = np.zeros(5000, np.float32)
    path = tmp_path / "big.npz"
    np.savez_compressed(path, **arrays)  # small on disk, large in memory
    assert path.stat().st_size < 4096
    with pytest.raises(TrajectoryError, match="bytes of arrays is over the limit of 4096"):
        load(path)


def test_the_command_line_gives_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save(tmp_path, _arrays() | {"lr": np.float64(-1.0)})
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "lr must be finite and >= 0, got -1.0" in err[0]
    assert "Traceback" not in err[0]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2048))
def test_random_bytes_never_crash_the_loaders(tmp_path: Path, data: bytes) -> None:
    for suffix in (".npz", ".json"):
        path = tmp_path / f"fuzz{suffix}"
        path.write_bytes(data)
        _load_or_explain(path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    keep=st.sets(st.sampled_from(NPZ_KEYS)),
    cut=st.integers(0, 400),
    shape=st.lists(st.integers(0, 4), max_size=3),
    value=st.sampled_from([0.1, -1.0, np.nan, np.inf, 2.0]),
)
def test_damaged_archives_never_crash_the_loader(
    tmp_path: Path, keep: set[str], cut: int, shape: list[int], value: float
) -> None:
    arrays = _arrays() | {
        "dampening": np.float64(value),
        "weight_decay": np.float64(value),
        "nesterov": np.zeros(shape, bool),
        "maximize": np.full(shape, value),
        "dtype": np.array("float32"),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key in sorted(keep):
            member = io.BytesIO()
            np.save(member, arrays[key])
            archive.writestr(f"{key}.npy", member.getvalue()[: cut or None])
    path = tmp_path / "fuzz.npz"
    path.write_bytes(buffer.getvalue())
    tr = _load_or_explain(path)
    assert tr is None or tr.steps == 3


def _load_or_explain(path: Path) -> Trajectory | None:
    """The trajectory, or None after a one-line TrajectoryError; anything else fails."""
    try:
        return load(path)
    except TrajectoryError as error:
        message = str(error)
    assert "\n" not in message
    assert message.startswith(str(path))
    return None


def _npy(header: dict[str, Any], data: bytes) -> bytes:
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    return member.getvalue() + data


def test_a_header_that_claims_more_than_its_member_holds_is_refused_before_allocation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in _arrays().items():
            member = io.BytesIO()
            np.save(member, value)
            archive.writestr(f"{key}.npy", member.getvalue())
        # 8 TB of float64 announced in 16 bytes: allocating it first would fail differently
        header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
        archive.writestr("weight_decay.npy", _npy(header, b"\0" * 16))
    with pytest.raises(
        TrajectoryError,
        match=r"weight_decay declares shape \(1000000000000,\) of float64, 8000000000000 "
        "bytes, but holds 16",
    ):
        load(path)


def test_a_key_twice_in_an_archive_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path, _arrays())
    member = _npy({"descr": "<f8", "fortran_order": False, "shape": ()}, bytes(8))
    archive = zipfile.ZipFile(path, "a")
    with pytest.warns(UserWarning, match="Duplicate name: 'lr.npy'"):
        archive.writestr("lr.npy", member)
    archive.close()
    with pytest.raises(TrajectoryError, match="the key 'lr' appears twice"):
        load(path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lr", -1.0, "must be finite and >= 0, got -1.0 at step 2"),
        ("momentum", 1.0, r"must be in \[0, 1\), got 1.0 at step 2"),
    ],
)
def test_both_loaders_apply_one_rule(tmp_path: Path, key: str, value: float, message: str) -> None:
    arrays = _arrays() | {key: np.array([0.5, value, 0.5])}
    with pytest.raises(TrajectoryError, match=f"{key} {message}"):
        load(_save(tmp_path, arrays))
    main(["vectors", "--out", str(tmp_path), "--convention", "rules", "--dtype", "float32"])
    data = json.loads((tmp_path / "rules-momentum-float32-basic.json").read_text())
    data["steps"][1]["hyperparameters"][key] = {"hex": value.hex(), "decimal": str(value)}
    vector = tmp_path / "v.json"
    vector.write_text(json.dumps(data))
    with pytest.raises(TrajectoryError, match=f"{key} {message}"):
        load(vector)
    assert trajectory.RULES[key][1] in message.replace("\\", "")


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"grads": np.ones((2, 4))}, TrajectoryError, r"grads has shape \(2, 4\); expected"),
        ({"params": np.ones((1, 3))}, TrajectoryError, r"params has shape \(1, 3\) but grads"),
        ({"initial": [1.0, 2.0, 3.0]}, TypeError, "initial must be a NumPy array, got list"),
        ({"initial": np.ones(3, np.int64)}, TrajectoryError, "initial has dtype int64"),
        ({"lr": (0.1,)}, TrajectoryError, "1 lr values for 2 steps"),
        ({"lr": (0.1, "0.1")}, TypeError, "lr must be a tuple of floats"),
        ({"momentum": (0.9, 1.0)}, TrajectoryError, r"momentum must be in \[0, 1\), got 1.0"),
        ({"nesterov": "yes"}, TypeError, "nesterov must be True, False or None, got 'yes'"),
        ({"dampening": -0.5}, TrajectoryError, r"dampening must be in \[0, 1\], got -0.5"),
        ({"weight_decay": None}, TypeError, "weight_decay must be a real number, got None"),
    ],
)
def test_a_hand_built_trajectory_names_the_wrong_field(
    fields: dict[str, Any], error: type[Exception], message: str
) -> None:
    good: dict[str, Any] = {
        "initial": np.ones(3),
        "grads": np.ones((2, 3)),
        "params": np.ones((2, 3)),
        "lr": (0.1, 0.1),
        "momentum": (0.9, 0.9),
    }
    with pytest.raises(error, match=f"^Trajectory: {message}"):
        Trajectory(**(good | fields))


# -- bfloat16 in an .npz: bit patterns, with the dtype named -------------------------------

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
DOC = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text(encoding="utf-8")


def _bf16(steps: int = 3, n: int = 5, nan: bool = True) -> dict[str, Any]:
    """A bfloat16 trajectory of rules.momentum, with a NaN that has a payload and a sign."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal(n).astype(np.float32).astype(BFLOAT16)  # bfloat16s: exact
    v = np.zeros_like(w)
    initial, grads, params = w.copy(), [], []
    for t in range(steps):
        g = rng.standard_normal(n).astype(np.float32).astype(BFLOAT16)
        if nan and t == steps - 1:
            g.view(np.uint16)[0] = 0xFFC1  # -NaN, payload 0x41
        w, v = rules.momentum(w, g, v, lr=0.1, momentum=0.9)
        grads.append(g)
        params.append(w)
    return {
        "initial": initial,
        "grads": np.stack(grads),
        "params": np.stack(params),
        "lr": np.float64(0.1),
        "momentum": np.float64(0.9),
        "nesterov": np.bool_(False),
    }


@pytest.mark.parametrize("stored", ["|V2", "uint16"])
def test_a_declared_bfloat16_archive_loads_bit_for_bit(tmp_path: Path, stored: str) -> None:
    arrays = _bf16()
    saved = dict(arrays)
    if stored == "uint16":
        saved |= {k: arrays[k].view(np.uint16) for k in ("initial", "grads", "params")}
    path = _save(tmp_path, saved | {"dtype": "bfloat16"})
    with zipfile.ZipFile(path) as archive, archive.open("grads.npy") as member:
        version = np.lib.format.read_magic(member)
        assert version == (1, 0)
        assert np.lib.format.read_array_header_1_0(member)[2].str == ("|V2" if stored == "|V2"
                                                                      else "<u2")  # fmt: skip
    tr = load(path)
    assert tr.dtype == "bfloat16"
    for key in ("initial", "grads", "params"):
        got = getattr(tr, key)
        assert got.dtype == BFLOAT16
        assert got.tobytes() == arrays[key].tobytes()  # NaN payloads and signs kept
    assert tr.grads.view(np.uint16)[-1, 0] == 0xFFC1


def test_a_declared_dtype_of_numpys_own_must_be_the_arrays(tmp_path: Path) -> None:
    assert load(_save(tmp_path, _arrays() | {"dtype": "float32"})).dtype == "float32"
    with pytest.raises(TrajectoryError, match=r"dtype says float64, but initial has dtype <f4"):
        load(_save(tmp_path, _arrays() | {"dtype": "float64"}))


def _bits(arrays: dict[str, Any], dtype: Any) -> dict[str, Any]:
    return arrays | {k: arrays[k].view(np.uint16).astype(dtype) for k in ("initial", "grads",
                                                                          "params")}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (  # what np.savez writes for ml_dtypes arrays, without the declaration
            lambda a: a,
            r"initial holds raw 2-byte values \(\|V2, what np.save writes for an ml_dtypes "
            r"array\), whose dtype the file does not say; if they are bfloat16, declare it: "
            r"np.savez\(\.\.\., dtype='bfloat16'\)",
        ),
        (
            lambda a: _bits(a, np.uint16),
            r"initial has dtype uint16; expected one of .* \(if it holds bfloat16 bit patterns, "
            r"declare it: np.savez\(\.\.\., dtype='bfloat16'\)\)",
        ),
        (
            lambda a: a | {"params": a["params"].view(np.uint16)} | {"dtype": "float16"},
            r"dtype says float16, but initial has dtype \|V2",
        ),
        (
            lambda a: _bits(a, np.uint32) | {"dtype": "bfloat16"},
            r"dtype says bfloat16, stored as its 2-byte bit patterns \(uint16, or the \|V2 "
            r"np.save writes for ml_dtypes.bfloat16\), but initial holds 4-byte values "
            r"\(<u4, uint32\)",
        ),
        (
            lambda a: a | {"grads": np.zeros((3, 5), "V4"), "dtype": "bfloat16"},
            r"but grads holds 4-byte values \(\|V4",
        ),
        (
            lambda a: _bits(a, np.int16) | {"dtype": "bfloat16"},
            r"dtype says bfloat16, .* but initial holds <i2 \(int16\)",
        ),
        (
            lambda a: _bits(a, ">u2") | {"dtype": "bfloat16"},
            r"but initial holds >u2",
        ),
        (
            lambda a: (
                a
                | {k: a[k].astype(np.float32) for k in ("initial", "grads", "params")}
                | {"dtype": "bfloat16"}
            ),
            r"dtype says bfloat16, stored as its 2-byte bit patterns .* but initial holds 4-byte "
            r"values \(<f4, float32\)",
        ),
        (lambda a: a | {"dtype": "bf16"}, r"dtype must name one of float16, .* got 'bf16'"),
        (lambda a: a | {"dtype": np.array(["bfloat16"])}, "dtype must be a string naming"),
        (lambda a: a | {"dtype": np.int64(2)}, "dtype must be a string naming"),
    ],
)
def test_bfloat16_bits_are_never_guessed_at(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(TrajectoryError, match=message) as info:
        load(_save(tmp_path, change(_bf16())))
    assert "\n" not in str(info.value)


def test_the_audit_command_identifies_a_bfloat16_trajectory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save(tmp_path, _bf16(nan=False) | {"dtype": "bfloat16"})
    main(["audit", str(path)])
    out = capsys.readouterr().out
    assert "3 steps, bfloat16, shape (5,)" in out
    verdict = out.strip().splitlines()[-1]
    assert _named(verdict)[0] == "nagref.momentum (lecture form)"


def test_a_bfloat16_vector_is_a_json_trajectory(tmp_path: Path) -> None:
    main(["vectors", "--out", str(tmp_path), "--convention", "rules", "--dtype", "bfloat16"])
    tr = load(tmp_path / "rules-nag-bfloat16-special.json")
    assert tr.dtype == "bfloat16"
    assert tr.nesterov is True
    assert np.isnan(tr.grads.astype(np.float32)).any()


SNIPPETS = re.findall(r"<!-- bfloat16: (\S+) -->\n```python\n(.*?)```", DOC, re.S)


def test_the_bfloat16_snippets_on_the_page_write_files_that_audit_as_they_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert [name for name, _ in SNIPPETS] == ["torch_bf16.py", "jax_bf16.py"]
    for name, code in SNIPPETS:
        (tmp_path / name).write_text(code, encoding="utf-8")
        subprocess.run([sys.executable, name], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    expected = [
        (
            "torch-bf16.npz",
            "<u2",
            [f"pytorch single-tensor{c}{g}" for c in ("", "-avx2") for g in ("", ", strided-grad")],
        ),
        ("jax-bf16.npz", "|V2", ["optax eager", "optax jit"]),
    ]
    for npz, stored, bitwise in expected:
        with zipfile.ZipFile(npz) as archive, archive.open("params.npy") as member:
            np.lib.format.read_magic(member)
            assert np.lib.format.read_array_header_1_0(member)[2].str == stored
        tr = load(npz)
        shape = (40,) if npz.startswith("torch") else (8,)
        assert (tr.dtype, tr.steps, tr.initial.shape) == ("bfloat16", 3, shape)
        assert main(["audit", npz]) == 0
        verdict = capsys.readouterr().out.strip().splitlines()[-1]
        matches = _named(verdict)
        assert set(bitwise) <= set(matches), verdict
        if npz.startswith("torch"):
            assert matches == bitwise


def _named(verdict: str) -> list[str]:
    """The candidates a bitwise verdict names: one, or those it cannot tell apart."""
    if verdict.startswith("VERDICT: bitwise: "):
        return [verdict.removeprefix("VERDICT: bitwise: ")]
    assert verdict.startswith("VERDICT: indistinguishable: "), verdict
    return verdict.split(" bit for bit (", 1)[1].rsplit("); it does not tell", 1)[0].split("; ")
