"""Hostile trajectory and vector files: one line and exit 2, in bounded memory, never a traceback.

Each case here crashed, took 25 times its size or was quietly accepted before (issue 13, item 5).
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nagref.auditing import Trajectory, TrajectoryError, load, trajectory
from nagref.cli import main
from nagref.vectors.catalogue import cases
from nagref.vectors.encode import _decimal, dumps, encode
from nagref.vectors.hexfloat import array_to_bits, narrow, to_hex

MB = 1 << 20
BASE = dumps(encode(next(c for c in cases(("rules",), ("float32",)) if c.variant == "nag")))
BASE16 = dumps(encode(next(c for c in cases(("rules",), ("bfloat16",)) if c.variant == "nag")))
BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


def _variant(old: str, new: str, text: str = BASE) -> str:
    assert old in text
    return text.replace(old, new, 1)


def _without_bits(text: str) -> str:
    data = json.loads(text)
    del data["initial"]["param"]["bits"]
    return dumps(data)


SPEC = '"recorded_by": {"framework": "x"}, "spec": {"convention": 1, "variant": 1, "dtype": 1, '
HOSTILE = {  # name: (file contents, what the one line says)
    "deep nesting": ("[" * 200_000 + "]" * 200_000, "the file: expected an object at byte 0"),
    "deep nesting in spec": (
        _variant('"case":', SPEC + '"shape": 1, "seed": 1, "lr": ' + "[" * 10**5 + ', "case":'),
        "spec.lr: nested more than 8 deep",
    ),
    "an integer of 5000 digits": (
        _variant('"nagref_vectors": 1', '"nagref_vectors": ' + "1" * 5000),
        "nagref_vectors: the number 11111111111111111111... is too long",
    ),
    "an integer of 5000 digits in a shape": (
        _variant('"shape": [37]', '"shape": [' + "3" * 5000 + "]"),
        r"shape\[0\]: the number 3333",
    ),
    "an integer of 5000 digits in spec": (
        _variant('"case":', SPEC + '"shape": 1, "lr": 1, "seed": ' + "9" * 5000 + '}, "case":'),
        "spec.seed: the number 9999",
    ),
    "shape 1e999": (_variant('"shape": [37]', '"shape": [1e999]'), r"shape\[0\]: .* got 1e999"),
    "shape '37'": (_variant('"shape": [37]', '"shape": ["37"]'), "expected a non-negative int"),
    "shape 37.9": (_variant('"shape": [37]', '"shape": [37.9]'), r"shape\[0\]: .* got 37.9"),
    "shape true": (_variant('"shape": [37]', '"shape": [true]'), "expected a non-negative int"),
    "hex 0x1p99999": (
        _variant('"hex": ["', '"hex": ["0x1p99999", "'),
        r'initial.param.hex: expected a hex float string .* got \'"0x1p99999"',
    ),
    "hex 0x1.0p+9999": (
        _variant('"hex": ["', '"hex": ["0x1.0p+9999", "'),
        r"initial.param.hex\[0\]: '0x1.0p\+9999' is out of range for float64",
    ),
    "a float64 in a float32 vector": (
        _variant('"hex": ["', '"hex": ["0x1.0000000000001p+0", "'),
        r"'0x1.0000000000001p\+0' is not a float32 value",
    ),
    "a repeated key": (_variant('"case":', '"case": "x", "case":'), "the key 'case' appears twice"),
    "a repeated nested key": (
        _variant('"param": {', '"param": {"hex": [], '),
        "initial.param: the key 'hex' appears twice",
    ),
    '"nagref_vectors": true': (
        _variant('"nagref_vectors": 1', '"nagref_vectors": true'),
        r'not a nagref test vector \("nagref_vectors" must be 1\)',
    ),
    '"nagref_vectors": 1.0': (
        _variant('"nagref_vectors": 1', '"nagref_vectors": 1.0'),
        '"nagref_vectors" must be 1',
    ),
    "momentum 1": (
        _variant('"0x1.ccccccccccccdp-1"', '"0x1.0p+0"'),
        r"momentum must be in \[0, 1\), got 1.0 at step 1",
    ),
    "a list where a string goes": (
        '{"nagref_vectors":1,"case":[' + "{}," * 1000 + "{}]}",
        "case: expected a string at byte 27",
    ),
    "bits in a float32 vector": (
        _variant('"decimal": [', '"bits": ["0x0000"], "decimal": ['),
        r"initial.param: unknown key 'bits' \(only a bfloat16 array holds bit patterns",
    ),
    "a bfloat16 vector without bits": (
        _without_bits(BASE16),
        r"initial.param: missing key 'bits' \(every bfloat16 array of a vector holds",
    ),
    "bits 0xZZZZ": (
        _variant('"bits": ["', '"bits": ["0xZZZZ", "', BASE16),
        r"initial.param.bits: expected a bit pattern string \(like 0x3fc0\)",
    ),
    "bits 0x1234567": (
        _variant('"bits": ["', '"bits": ["0x1234567", "', BASE16),
        r"initial.param.bits: expected a bit pattern string",
    ),
    "bits that are not the hex floats": (
        _variant('"bits": ["0x', '"bits": ["0x7fc0", "0x', BASE16)
        .replace('"decimal": ["', '"decimal": ["1e+00", "', 1)
        .replace('"hex": ["', '"hex": ["0x1.0p+0", "', 1),
        r"initial.param.bits\[0\]: 0x7fc0 is nan, but hex\[0\] is 0x1.0000000000000p\+0",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_each_hostile_vector_is_one_line(tmp_path: Path, name: str) -> None:
    text, message = HOSTILE[name]
    path = tmp_path / "v.json"
    path.write_text(text)
    with pytest.raises(TrajectoryError, match=message) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["deep nesting", "an integer of 5000 digits", "hex 0x1p99999"])
def test_the_command_line_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    path = tmp_path / "v.json"
    path.write_text(HOSTILE[name][0])
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(path) in err
    assert "Traceback" not in err


def test_paths_that_cannot_be_read_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long = tmp_path / ("a" * 300 + ".json")
    with pytest.raises(TrajectoryError, match="cannot read: File name too long"):
        load(long)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(TrajectoryError, match=r"dir.json: is a directory"):
        load(tmp_path / "dir.json")
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    with pytest.raises(TrajectoryError, match=r"fifo\.npz: not a regular file"):
        load(fifo)  # never opened: that would block
    with pytest.raises(TrajectoryError, match="cannot read: Not a directory"):
        load(tmp_path / "dir.json" / ".." / "fifo.npz" / "x.json")
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(long)])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_file_that_cannot_be_opened_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v.json"
    path.write_text(BASE)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(trajectory, "open", refuse, raising=False)
    with pytest.raises(TrajectoryError, match=r"v.json: cannot read: Permission denied$"):
        load(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_files_and_directories_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text(BASE)
    path.chmod(0)
    with pytest.raises(TrajectoryError, match="cannot read: Permission denied"):
        load(path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d").chmod(0)
    try:
        with pytest.raises(TrajectoryError, match="cannot read: Permission denied"):
            load(tmp_path / "d" / "v.json")
    finally:
        (tmp_path / "d").chmod(0o700)


# -- memory: measured in a fresh process -------------------------------------------------

_PEAK = """
import sys
from nagref.auditing import TrajectoryError, load
load(sys.argv[2])  # every lazy import and cache, before the measurement

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak is now the current size
before = status("VmRSS:")
try:
    tr = load(sys.argv[1])
    data = tr.initial.nbytes + tr.grads.nbytes + tr.params.nbytes
except TrajectoryError as error:
    data = -1
    print(error, file=sys.stderr)
print(status("VmHWM:") - before, data)
"""


def _peak(path: Path, tmp_path: Path) -> tuple[int, int]:
    """The growth of the peak resident size while ``path`` loads, and the arrays' bytes."""
    warm = tmp_path / "warm.json"
    warm.write_text(BASE)
    command = [sys.executable, "-c", _PEAK, str(path), str(warm)]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    peak, data = map(int, run.stdout.split())
    print(f"{path.name}: {path.stat().st_size / MB:.1f} MB file, {data / MB:.1f} MB arrays, "
          f"peak + {peak / MB:.1f} MB")  # fmt: skip
    return peak, data


needs_proc = pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"), reason="measures with Linux's /proc"
)


@needs_proc
def test_a_hostile_50_mb_vector_is_refused_in_constant_memory(tmp_path: Path) -> None:
    cases = tmp_path / "cases.json"
    cases.write_text('{"nagref_vectors":1,"case":[' + "{}," * (50 * MB // 3) + "{}]}")
    peak, data = _peak(cases, tmp_path)
    assert data == -1
    assert peak < 4 * MB  # it used to take 25 times the file
    decimals = tmp_path / "decimals.json"  # a long list where the shape allows 37 values
    head = _variant('"decimal": ["', '"decimal": ["' + '"1.5e+00", ' * (4 * MB))
    decimals.write_text(head)
    peak, data = _peak(decimals, tmp_path)
    assert data == -1
    assert peak < 4 * MB


def _write_vector(path: Path, dtype: str, n: int, steps: int) -> None:
    """A legitimate vector of ``steps`` steps of ``n`` values, written piece by piece."""
    pool = narrow(np.random.default_rng(0).standard_normal(997), dtype)
    hexes, decimals = [f'"{to_hex(v)}"' for v in pool], [f'"{_decimal(v)}"' for v in pool]
    bits = [f'"{b}"' for b in array_to_bits(pool)] if dtype == "bfloat16" else []

    def floats() -> str:
        reps, rest = divmod(n, len(pool))
        lists = [", ".join(p * reps + p[:rest]) for p in (hexes, decimals, bits)]
        more = f', "bits": [{lists[2]}]' if bits else ""
        return f'{{"hex": [{lists[0]}], "decimal": [{lists[1]}]{more}}}'

    entry = floats()
    lr = '{"hex": "0x1.999999999999ap-4", "decimal": "0.1"}'
    with path.open("w") as f:
        f.write('{"nagref_vectors": 1, "generator": "test", "convention": "rules", "variant": '
                f'"momentum", "dtype": "{dtype}", "case": "big", "function": "nagref.momentum", '
                f'"shape": [{n}], "state_names": [], "initial": {{"param": {entry}, "state": []}}, '
                '"steps": [')  # fmt: skip
        for t in range(steps):
            f.write(", " if t else "")
            f.write(f'{{"hyperparameters": {{"lr": {lr}}}, "grad": {entry}, '
                    f'"expected": {{"param": {entry}, "state": []}}}}')  # fmt: skip
        f.write("]}")


@needs_proc
def test_a_legitimate_vector_costs_its_arrays_and_a_few_mb(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    _write_vector(path, "float64", 125_000, 4)
    assert path.stat().st_size > 40 * MB
    peak, data = _peak(path, tmp_path)
    assert data == 9 * 125_000 * 8
    assert peak < 3 * data  # it used to take about 5 times the file, 30 times the arrays


@needs_proc
def test_a_legitimate_bfloat16_vector_costs_its_arrays_and_a_few_mb(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    _write_vector(path, "bfloat16", 125_000, 4)
    assert path.stat().st_size > 40 * MB
    peak, data = _peak(path, tmp_path)
    assert data == 9 * 125_000 * 2
    assert peak < data + 8 * MB  # a few MB, as for float16: the bits, one array's hex, runs


@needs_proc
def test_a_legitimate_bfloat16_npz_costs_its_arrays_once(tmp_path: Path) -> None:
    path = tmp_path / "big.npz"
    grads = narrow(np.random.default_rng(0).standard_normal((16, 600_000)), "bfloat16")
    np.savez(path, initial=grads[0], grads=grads, params=grads, lr=0.1, momentum=0.9,
             dtype="bfloat16")  # fmt: skip
    del grads
    peak, data = _peak(path, tmp_path)
    assert data == 33 * 600_000 * 2
    assert peak < 1.3 * data  # viewed as bfloat16, never copied


@needs_proc
def test_a_legitimate_npz_costs_its_arrays_once(tmp_path: Path) -> None:
    path = tmp_path / "big.npz"
    grads = np.random.default_rng(0).standard_normal((16, 600_000)).astype(np.float32)
    np.savez(path, initial=grads[0], grads=grads, params=grads, lr=0.1, momentum=0.9)
    del grads
    peak, data = _peak(path, tmp_path)
    assert data == 33 * 600_000 * 4
    assert peak < 1.3 * data  # it used to take 2 times


# -- fuzzing: mutated vectors and archives -----------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
NASTY = [bytes([c]) for c in b'[{}",:-\xff\n'] + [b"1e999", b"true", b"null", b"\\u0000",
         b"0x1p99999", b"9" * 5000, b'"nagref_vectors": 1,', b" " * 100, b"[" * 500,
         b'"0x7fc0"', b'"bits": [],', b'"0xffff", ', b'"dtype": "bfloat16", ']  # fmt: skip


@st.composite
def _mutated_vector(draw: st.DrawFn, base: str = BASE) -> bytes:
    if draw(st.booleans()):  # a structural change to the parsed vector
        data = copy.deepcopy(json.loads(base))
        node: Any = data
        for _ in range(draw(st.integers(0, 5))):
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            if not isinstance(node[key], (dict, list)):
                break
            node = node[key]
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "add" or not keys:
            if isinstance(node, dict):
                node[draw(st.sampled_from([*keys, "x", "hex", "bits", "lr"]))] = draw(JSON_VALUES)
            else:
                node.append(draw(JSON_VALUES))
        elif action == "delete":
            del node[draw(st.sampled_from(keys))]
        else:
            node[draw(st.sampled_from(keys))] = draw(JSON_VALUES)
        return json.dumps(data).encode()
    text = base.encode()
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["flip", "cut", "delete", "insert", "copy"]))
        if kind == "flip" and at < len(text):
            text = text[:at] + bytes([draw(st.integers(0, 255))]) + text[at + 1 :]
        elif kind == "cut":
            text = text[:at]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 200)) :]
        elif kind == "insert":
            text = text[:at] + draw(st.sampled_from(NASTY)) + text[at:]
        else:
            start = draw(st.integers(0, len(text)))
            text = text[:at] + text[start : start + draw(st.integers(1, 300))] + text[at:]
    return text


def _load_or_explain(path: Path) -> Trajectory | None:
    """The trajectory, or None after a one-line TrajectoryError; anything else fails."""
    try:
        tr = load(path)
    except TrajectoryError as error:
        message = str(error)
    else:
        assert tr.grads.shape == tr.params.shape == (tr.steps, *tr.initial.shape)
        assert len(tr.momentum) == tr.steps
        return tr
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return None


@settings(max_examples=300)
@given(data=_mutated_vector())
def test_mutated_vectors_load_or_give_one_line(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(data)
    _load_or_explain(path)


@settings(max_examples=100)
@given(data=_mutated_vector(BASE16))
def test_mutated_bfloat16_vectors_load_or_give_one_line(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(data)
    tr = _load_or_explain(path)
    assert tr is None or tr.dtype == "bfloat16"


def _npz(arrays: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.save(member, value, allow_pickle=True)  # a pickle the loader must refuse
            archive.writestr(f"{key}.npy", member.getvalue())
    return buffer.getvalue()


ARRAYS = st.sampled_from(
    [
        np.zeros((2, 3), np.float32),
        np.zeros(3, np.float32),
        np.zeros((2, 3), ">f4"),
        np.asfortranarray(np.zeros((3, 2), np.float32)).T,
        np.zeros((2, 3), np.complex64),
        np.zeros((2, 3), [("a", "f4")]),
        np.array(["0.1"]),
        np.array([{"boom": 1}], dtype=object),
        np.float64(0.1),
        np.float64(np.nan),
        np.int64(-1),
        np.bool_(True),
        np.zeros((0, 3), np.float32),
        np.zeros((2, 3), BFLOAT16),  # |V2 in the file
        np.zeros(3, BFLOAT16),
        np.zeros((2, 3), np.uint16),
        np.zeros((2, 3), "V4"),
        np.array("bfloat16"),
        np.array("float32"),
    ]
)


@settings(max_examples=150)
@given(
    arrays=st.dictionaries(st.sampled_from(trajectory.NPZ_KEYS), ARRAYS, min_size=5),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=3),
    cut=st.integers(0, 4000),
)
def test_mutated_archives_load_or_give_one_line(
    tmp_path: Path, arrays: dict[str, Any], flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(_npz(arrays))
    for at, value in flips:
        if at < len(data):
            data[at] = value
    path = tmp_path / "fuzz.npz"
    path.write_bytes(bytes(data[: cut or None]))
    _load_or_explain(path)
