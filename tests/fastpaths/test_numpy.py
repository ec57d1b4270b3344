"""The NumPy fast path (nagref.fastpaths.numpy) against the generic path, bit for bit.

Every rule and every convention variant runs twice on the same inputs: through
the seam (the compiled C evaluator) and inside ``fastpaths.disabled()`` (one
array-API operation at a time). A spy proves that the kernel really ran.
bfloat16 (``ml_dtypes``) runs here with the other dtypes; its rounding models,
one by one, in test_numpy_bfloat16.py.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_cases import CASES, DTYPES, NUMPY_DTYPE, PAIRS, _arrays, _same

import nagref
from nagref import fastpaths
from nagref._engine import kernels
from nagref.conventions import pytorch
from nagref.fastpaths import _cpu

NAMESPACE = "array_api_compat.numpy"


def test_the_numpy_kernel_is_built() -> None:
    assert fastpaths.available()["numpy"] is None
    assert _cpu.HAVE_FLOAT16 == 1
    assert kernels.kernel_for(np) is not None  # type: ignore[arg-type]


@pytest.mark.parametrize(("case", "dtype"), PAIRS)
@given(data=st.data())
def test_kernel_equals_the_generic_path_bitwise(
    case: str, dtype: str, data: st.DataObject, spy: list[bool]
) -> None:
    p, g, b = _arrays(data.draw, dtype)
    lr = data.draw(st.floats(0.0, 1.0))
    mu = data.draw(st.floats(0.001, 0.999))
    step = CASES[case]
    spy.clear()
    with np.errstate(all="ignore"):
        fast = step(p, g, b, lr, mu)
        assert spy, "the kernel was not called"
        assert all(spy), "the kernel declined"
        with fastpaths.disabled():
            slow = step(p, g, b, lr, mu)
    _same(fast, slow)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_d_arrays_and_pytrees(dtype: str, spy: list[bool]) -> None:
    numpy_dtype = NUMPY_DTYPE[dtype]
    layer = (np.arange(200) / 7).astype(numpy_dtype)
    tree = {"w": np.array(1.5, numpy_dtype), "layers": [layer]}
    velocity = {"w": np.array(-0.25, numpy_dtype), "layers": [np.ones(200, numpy_dtype)]}
    fast = nagref.nag(tree, tree, velocity, lr=0.1, momentum=0.9)
    assert all(spy)
    with fastpaths.disabled():
        slow = nagref.nag(tree, tree, velocity, lr=0.1, momentum=0.9)
    for x, y in zip(fast, slow, strict=True):
        _same((x["w"], x["layers"][0]), (y["w"], y["layers"][0]))
        assert isinstance(x["w"], np.ndarray)
        assert x["w"].shape == ()


def test_signed_zero_hyperparameters_are_not_conflated(spy: list[bool]) -> None:
    # lr = 0 gives -lr = -0.0; a cache keyed on float equality would hand a
    # later +0.0 the cached -0.0 (or the reverse) and flip signs of zeros
    p, g = np.array([-0.0, 0.0], np.float16), np.array([0.0, -0.0], np.float16)
    for lr in (0.0, -0.0, 0.0):
        fast = pytorch.sgd(p, g, g, lr=lr, momentum=0.5, nesterov=True, weight_decay=0.01)
        with fastpaths.disabled():
            slow = pytorch.sgd(p, g, g, lr=lr, momentum=0.5, nesterov=True, weight_decay=0.01)
        _same(fast, slow)
    assert all(spy)


def test_layouts_it_cannot_take_fall_back_to_the_generic_path(spy: list[bool]) -> None:
    base = np.arange(64, dtype=np.float32).reshape(8, 8) / 3
    cases = {
        "strided": (base[:, ::2], base[:, 1::2]),
        "fortran": (np.asfortranarray(base), np.asfortranarray(base.T)),
        "big-endian": (base.astype(">f4"), base.astype(">f4")),
    }
    for name, (p, g) in cases.items():
        spy.clear()
        fast = nagref.sgd(p, g, lr=0.1)
        assert spy == [False], name
        assert np.array_equal(fast, p - np.float32(0.1) * g), name


def test_complex_dtypes_take_the_generic_path(spy: list[bool]) -> None:
    p = np.array([1 + 2j, -3j], np.complex64)
    assert np.array_equal(nagref.sgd(p, p, lr=0.5), p - np.complex64(0.5) * p)
    assert spy == [False]


def test_the_kernel_releases_the_gil_and_threads_agree() -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(100_003).astype(np.float32) for _ in range(8)]

    def step(x: np.ndarray) -> bytes:
        return pytorch.sgd(x, x, x, lr=0.01, momentum=0.9, nesterov=True)[0].tobytes()

    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(step, arrays))
    with fastpaths.disabled():
        assert threaded == [step(x) for x in arrays]


COPY = bytes([0, 1, 0, 0, 0])  # register 1 <- register 0
NEG = bytes([1, 1, 0, 0, 0])  # register 1 <- -register 0


def _spec(lanes: int = 0, inputs: bytes = b"\x00", outputs: bytes = b"\x01") -> _cpu.Spec:
    return (1, False, 2, lanes, inputs, outputs)  # float32, no flush, 2 registers


class _Subclass(np.ndarray):
    pass


def test_the_evaluator_skips_leaves_it_cannot_take() -> None:
    x = np.arange(8, dtype=np.float32)
    read_only = np.zeros(4, np.float32)
    read_only.flags.writeable = False
    leaves = [
        (x[:4], x[1:5]),  # 0: overlaps its input
        (x[:4], x[:4]),  # 1: is its input: an in-place copy, taken
        (x[:2], x[4:6]),  # 2: disjoint, taken
        (x[::2], np.zeros(4, np.float32)),  # 3: strided
        (x[:4].astype(">f4"), np.zeros(4, np.float32)),  # 4: big-endian
        (x[:4].astype(np.float64), np.zeros(4, np.float64)),  # 5: another dtype
        (x[:4], np.zeros(3, np.float32)),  # 6: another length
        (x[:4], read_only),  # 7: a read-only output
        (x[:4], np.zeros(4, np.float32).view(_Subclass)),  # 8: not exactly ndarray
        (x[:4], bytearray(16)),  # 9: not an array
    ]
    assert _cpu.run(_spec(), [(COPY, [])], leaves, np.ndarray) == [0, 3, 4, 5, 6, 7, 8, 9]
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 6.0, 7.0]
    assert not read_only.any()


def test_the_evaluator_runs_the_tail_on_the_last_n_mod_lanes_elements() -> None:
    x = np.arange(1, 11, dtype=np.float32)
    y = np.zeros(10, np.float32)
    assert _cpu.run(_spec(lanes=4), [(COPY, []), (NEG, [])], [(x, y)], np.ndarray) == []
    assert y.tolist() == [*range(1, 9), -9.0, -10.0]
    short = np.zeros(3, np.float32)  # shorter than the lanes: all tail
    assert _cpu.run(_spec(lanes=4), [(COPY, []), (NEG, [])], [(x[:3], short)], np.ndarray) == []
    assert short.tolist() == [-1.0, -2.0, -3.0]


def test_the_evaluator_rejects_malformed_programs() -> None:
    x, y = np.zeros(4, np.float32), np.zeros(4, np.float32)
    leaves = [(x, y)]
    with pytest.raises(ValueError, match="malformed program"):
        _cpu.run(_spec(), [(bytes([9, 0, 0, 0, 0]), [])], leaves, np.ndarray)
    with pytest.raises(ValueError, match="inputs: register 7 out of range"):
        _cpu.run(_spec(inputs=b"\x07"), [(COPY, [])], leaves, np.ndarray)
    with pytest.raises(ValueError, match="malformed constants"):
        _cpu.run(_spec(), [(COPY, [(5, 1.0)])], leaves, np.ndarray)
    with pytest.raises(ValueError, match="malformed segments"):
        _cpu.run(_spec(lanes=4), [(COPY, [])], leaves, np.ndarray)
    with pytest.raises(ValueError, match="malformed leaf"):
        _cpu.run(_spec(), [(COPY, [])], [(x, y, y)], np.ndarray)
    with pytest.raises(ValueError, match="kind 9 is not available"):
        _cpu.run((9, False, 2, 0, b"\x00", b"\x01"), [(COPY, [])], leaves, np.ndarray)
    x[:] = 3.0
    assert _cpu.run(_spec(), [(COPY, [])], leaves, np.ndarray) == []
    assert y.tolist() == [3.0] * 4


def test_a_model_of_many_tensors_runs_in_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = _cpu.run

    def counting(*args: Any) -> list[int]:
        calls.append(len(args[2]))  # run(spec, segments, leaves, array_type)
        return real(*args)

    monkeypatch.setattr(_cpu, "run", counting)
    tree = {f"w{i}": np.full(10 + i, i, np.float32) for i in range(50)}
    tree["half"] = np.ones(7, np.float16)
    tree["matrix"] = np.arange(12, dtype=np.float32).reshape(3, 4)
    fast = nagref.nag(tree, tree, tree, lr=0.1, momentum=0.9)
    assert sorted(calls) == [1, 51]  # one C call per dtype
    with fastpaths.disabled():
        slow = nagref.nag(tree, tree, tree, lr=0.1, momentum=0.9)
    for name in tree:
        _same((fast[0][name], fast[1][name]), (slow[0][name], slow[1][name]))
    # the new arrays: C-contiguous, 64-byte aligned views into one buffer
    # per output, disjoint from each other and from the inputs
    for new in fast:
        arrays = [new[name] for name in tree if name != "half"]
        assert all(x.flags.c_contiguous and x.ctypes.data % 64 == 0 for x in arrays)
        assert len({id(x.base) for x in arrays}) == 1
        assert arrays[-1].shape == (3, 4)
        spans = sorted((x.ctypes.data, x.ctypes.data + x.nbytes) for x in arrays)
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
        assert not any(np.shares_memory(x, y) for x in arrays for y in tree.values())


def test_leaves_the_evaluator_skips_take_the_generic_path_within_a_batch(
    spy: list[bool],
) -> None:
    base = np.arange(64, dtype=np.float32) / 3
    tree = {"a": base[:16].copy(), "strided": base[32:48].copy(), "b": base[16:32].copy()}
    grads = {name: x[::-1].copy() for name, x in tree.items()}
    grads["strided"] = base[::4]  # a strided gradient: C skips that leaf
    fast = nagref.sgd(tree, grads, lr=0.1)
    assert spy == [True, False, True]
    for name, x in tree.items():
        assert fast[name].tobytes() == (x - np.float32(0.1) * grads[name]).tobytes()
