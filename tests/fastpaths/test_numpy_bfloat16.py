"""The NumPy fast path on bfloat16 against the generic path, bit for bit.

bfloat16 (``ml_dtypes.bfloat16``) reaches C as ``uint16`` views of its bits.
Every rounding model the evaluator takes for it, (storage, compute, result) =
(bfloat16, float32, bfloat16), (bfloat16, bfloat16, bfloat16) and
(bfloat16, float32, float32), runs one recipe that uses every operation,
contracted or not, flushing or not, with and without a split tail, on special
values, on random bit patterns (NaN payloads included) and in place, through
the seam and inside ``fastpaths.disabled()``. The bits must be equal, NaNs'
too; a spy proves that the kernel ran.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import nagref
from nagref import fastpaths
from nagref._apply import apply
from nagref._engine.ir import (
    COMPUTE,
    VIA_OPMATH,
    Batch,
    Hyper,
    Program,
    Rounding,
    Segment,
    Split,
    instr,
)
from nagref.conventions import pytorch
from nagref.fastpaths import _cpu
from nagref.fastpaths import numpy as numpy_kernel

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
NAMESPACE = "array_api_compat.numpy"

#: every operation, on inputs, constants and results: a product of two
#: inputs (subnormal, huge) under a multiply-add, a negation and a copy that
#: must keep NaN payloads where the model says so, an input overwritten
RECIPE = (
    instr("c", "copy", "g"),
    instr("n", "neg", "p"),
    instr("m", "mul", "g", "lr"),
    instr("s", "add", "p", "m"),
    instr("d", "sub", "s", "b"),
    instr("b", "muladd", "mu", "b", "m"),
    instr("f", "muladd", "p", "g", "d"),
    instr("t", "muladd", "tiny", "c", "n"),
    instr("p", "sub", "f", "t"),
)
INPUTS = ("p", "g", "b")
OUTPUTS = ("p", "b", "c", "n", "m", "d", "f")

#: (compute, result) for bfloat16 storage -> the C kind
MODELS = {
    "f32-compute": ({"bfloat16": "float32"}, {}),
    "bf16-compute": ({}, {}),
    "f32-results": ({"bfloat16": "float32"}, {"bfloat16": "float32"}),
}
#: hyperparameters: ordinary ones; and a float32 lr just below 1, so that
#: lr·2^-126 is a float32 just below 2^-126 (flushed, though bfloat16 would
#: round it up), a subnormal constant and a negative zero
HYPERS = {
    "plain": {
        "lr": Hyper(0.1, VIA_OPMATH),
        "mu": Hyper(0.9, (COMPUTE,)),
        "tiny": Hyper(-3.0),
    },
    "edges": {
        "lr": Hyper(1 - 2.0**-20, ("float32",)),
        "mu": Hyper(1e-39, (COMPUTE,)),
        "tiny": Hyper(-0.0),
    },
}

#: bfloat16 bit patterns: signed zeros, the smallest and largest subnormals,
#: the smallest normal and its neighbours, values whose products fall just
#: below 2^-126, ones and near-ones, the largest finite, infinities, quiet
#: and signalling NaNs of both signs with payloads
SPECIAL = np.array(
    [0x0000, 0x8000, 0x0001, 0x8001, 0x0002, 0x007F, 0x807F, 0x0080, 0x8080, 0x0081,
     0x00FF, 0x1FFF, 0x2000, 0x9FFF, 0x3F7F, 0x3F80, 0xBF80, 0x3F81, 0x3DCD, 0x4049,
     0x7F7F, 0xFF7F, 0x7F7E, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0xFFA1, 0x7FFF],
    dtype=np.uint16,
)  # fmt: skip


def _program(model: str, contract: bool, flush: bool, split: bool, hypers: str) -> Program:
    compute, result = MODELS[model]
    flushed = frozenset({"bfloat16"} if flush else ())
    rounding = Rounding(contract, compute, result, flushed)
    tail = Split(RECIPE, Rounding(not contract, compute, result, flushed), {"bfloat16": 32})
    return Program(RECIPE, rounding, INPUTS, OUTPUTS, HYPERS[hypers], tail if split else None)


def _bf16(bits: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(bits, dtype=np.uint16).view(BF16)


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (p, g, b) of special values: 27,000 elements, 32-lane tail included."""
    p, g, b = (x.ravel() for x in np.meshgrid(SPECIAL, SPECIAL, SPECIAL, indexing="ij"))
    return _bf16(p), _bf16(g), _bf16(b[::-1])


def _random(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """Random bit patterns: every class, NaN payloads included."""
    rng = np.random.default_rng(seed)
    return tuple(_bf16(rng.integers(0, 1 << 16, n, dtype=np.uint16)) for _ in range(3))


def _same_bits(fast: tuple[Any, ...], slow: tuple[Any, ...]) -> None:
    """The same bits; where both are NaN, the same payload, and any sign.

    Which NaN's sign survives where two NaNs meet (or 0·inf meets a NaN in a
    multiply-add) is the instruction's operand order: NumPy itself gives
    +NaN + -NaN the first sign, or the second where one operand is a 0-d
    array broadcast over a long one. Payloads are not left open: a result
    converted from float32 is the quiet NaN 0x7fc0, as ml_dtypes converts;
    a copy or a negation in bfloat16 keeps the input's payload.
    """
    assert len(fast) == len(slow)
    for k, (x, y) in enumerate(zip(fast, slow, strict=True)):
        assert x.dtype == y.dtype == BF16, k
        assert x.shape == y.shape, k
        a, b = x.view(np.uint16).ravel(), y.view(np.uint16).ravel()
        nans = ((a & 0x7FFF) > 0x7F80) & ((b & 0x7FFF) > 0x7F80)
        a, b = np.where(nans, a & 0x7FFF, a), np.where(nans, b & 0x7FFF, b)
        differ = np.flatnonzero(a != b)
        assert differ.size == 0, (
            f"output {OUTPUTS[k]}: {differ.size} elements differ, first at {differ[0]}: "
            f"{a[differ[0]]:#06x} != {b[differ[0]]:#06x}"
        )


def _both(program: Program, arrays: tuple[np.ndarray, ...], spy: list[bool]) -> None:
    trees = dict(zip(INPUTS, arrays, strict=True))
    spy.clear()
    fast = apply(program, trees)
    assert spy, "the kernel was not called"
    assert all(spy), "the kernel declined"
    with fastpaths.disabled():
        slow = apply(program, trees)
    _same_bits(fast, slow)


CONFIGS = [
    pytest.param(model, contract, flush, split, id=f"{model}-{c}-{f}-{s}")
    for model in MODELS
    for (contract, c), (flush, f), (split, s) in itertools.product(
        [(True, "fma"), (False, "muladd")],
        [(True, "flush"), (False, "gradual")],
        [(True, "split32"), (False, "whole")],
    )
]


def test_the_bfloat16_models_have_kinds() -> None:
    kinds = {key: kind for key, kind in numpy_kernel._KINDS.items() if key[0] == "bfloat16"}
    assert sorted(kinds) == [
        ("bfloat16", "bfloat16", "bfloat16"),
        ("bfloat16", "float32", "bfloat16"),
        ("bfloat16", "float32", "float32"),
    ]
    assert set(kinds.values()) <= numpy_kernel._FLUSHABLE


@pytest.mark.parametrize(("model", "contract", "flush", "split"), CONFIGS)
@pytest.mark.parametrize("hypers", list(HYPERS))
def test_special_values(
    model: str, contract: bool, flush: bool, split: bool, hypers: str, spy: list[bool]
) -> None:
    _both(_program(model, contract, flush, split, hypers), _grid(), spy)


@pytest.mark.parametrize(("model", "contract", "flush", "split"), CONFIGS)
def test_random_bit_patterns(
    model: str, contract: bool, flush: bool, split: bool, spy: list[bool]
) -> None:
    # 100,003 elements: 3 past a multiple of 32, in the tail where there is one
    _both(_program(model, contract, flush, split, "plain"), _random(100_003, 7), spy)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("size", [0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000])
def test_sizes_around_the_blocks_and_lanes(model: str, size: int, spy: list[bool]) -> None:
    for flush in (False, True):
        program = _program(model, True, flush, True, "edges")
        _both(program, tuple(x[:size] for x in _random(1000, size)), spy)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("flush", [False, True], ids=["gradual", "flush"])
def test_in_place_out_has_the_bits_of_new_arrays(model: str, flush: bool, spy: list[bool]) -> None:
    program = _program(model, True, flush, True, "plain")
    p, g, b = _random(10_001, 11)
    with fastpaths.disabled():
        expected = apply(program, {"p": p, "g": g, "b": b})
    donated = (p.copy(), b.copy(), np.empty_like(g))
    p2, b2, c2 = donated
    spy.clear()
    result = apply(program, {"p": p2, "g": g, "b": b2}, out=(p2, b2, c2, None, None, None, None))
    assert spy == [True]
    assert result[0] is p2
    assert result[1] is b2
    assert result[2] is c2
    assert all(x.dtype == BF16 for x in result)
    _same_bits(result, expected)


def test_new_outputs_are_bfloat16_arrays(spy: list[bool]) -> None:
    tree = {"w": np.array(1.5, BF16), "layers": [_random(300, 1)[0], _random(7, 2)[0]]}
    fast = nagref.nag(tree, tree, tree, lr=0.1, momentum=0.9)
    assert all(spy)
    assert spy
    with fastpaths.disabled():
        slow = nagref.nag(tree, tree, tree, lr=0.1, momentum=0.9)
    for x, y in zip(fast, slow, strict=True):
        assert type(x["w"]) is np.ndarray
        assert x["w"].shape == ()
        assert all(type(a) is np.ndarray and a.dtype == BF16 for a in x["layers"])
        leaves = (x["w"], *x["layers"])
        assert [a.tobytes() for a in leaves] == [a.tobytes() for a in (y["w"], *y["layers"])]


@pytest.mark.parametrize("nesterov", [False, True])
def test_a_pytorch_step_in_place(nesterov: bool, spy: list[bool]) -> None:
    p, g, b = _random(4099, 5)
    options = {"lr": 0.1, "momentum": 0.9, "nesterov": nesterov, "weight_decay": 0.01}
    with fastpaths.disabled():
        expected = pytorch.sgd(p, g, b, **options)  # type: ignore[arg-type]
    p2, b2 = p.copy(), b.copy()
    result = pytorch.sgd(p2, g, b2, **options, out=(p2, b2))  # type: ignore[arg-type]
    assert spy == [True]
    assert result[0] is p2
    assert result[1] is b2
    assert p2.tobytes() == expected[0].tobytes()
    assert b2.tobytes() == expected[1].tobytes()


def test_layouts_it_cannot_take_fall_back_to_the_generic_path(spy: list[bool]) -> None:
    base = (np.arange(64, dtype=np.float32).reshape(8, 8) / 3).astype(BF16)
    cases = {
        "strided": (base[:, ::2], base[:, 1::2]),
        "fortran": (np.asfortranarray(base), np.asfortranarray(base.T)),
    }
    for name, (p, g) in cases.items():
        spy.clear()
        fast = nagref.sgd(p, g, lr=0.5)
        assert spy == [False], name
        with fastpaths.disabled():
            assert fast.tobytes() == nagref.sgd(p, g, lr=0.5).tobytes(), name


def test_leaves_the_evaluator_skips_take_the_generic_path_within_a_batch(
    spy: list[bool],
) -> None:
    base = (np.arange(64, dtype=np.float32) / 3).astype(BF16)
    tree = {"a": base[:16].copy(), "strided": base[32:48].copy(), "b": base[16:32].copy()}
    grads = {name: x[::-1].copy() for name, x in tree.items()}
    grads["strided"] = base[::4]
    fast = nagref.sgd(tree, grads, lr=0.1)
    assert spy == [True, False, True]
    with fastpaths.disabled():
        slow = nagref.sgd(tree, grads, lr=0.1)
    for name in tree:
        assert fast[name].dtype == BF16
        assert fast[name].tobytes() == slow[name].tobytes()


class _Subclass(np.ndarray):
    pass


def test_only_plain_native_bfloat16_arrays_are_viewed_as_bits() -> None:
    x = np.zeros(4, BF16)
    bits = numpy_kernel._bits(x, BF16, np.dtype(np.uint16))
    assert bits is not None
    assert bits.dtype == np.uint16
    assert np.shares_memory(bits, x)
    for other in (
        x.view(_Subclass),
        np.zeros(4, np.float16),  # another dtype of the same size
        np.zeros(4, np.uint16),
        x.astype(BF16.newbyteorder(">")),
        [0.0] * 4,
    ):
        assert numpy_kernel._bits(other, BF16, np.dtype(np.uint16)) is None


def test_a_bfloat16_batch_in_the_other_byte_order_is_declined() -> None:
    p = np.ones(8, BF16.newbyteorder(">"))
    program = _program("f32-compute", True, False, False, "plain")
    batch_like = _batch(program, (p, p, p))
    assert numpy_kernel.run(batch_like) == [None]


def _batch(program: Program, arrays: tuple[np.ndarray, ...]) -> Batch:
    constants = {name: np.asarray(h.value, np.float32) for name, h in program.hypers.items()}
    segment = Segment(program.recipe, program.rounding, constants)
    return Batch((segment,), 0, INPUTS, [[a] for a in arrays], OUTPUTS, [None] * len(OUTPUTS))


# ---- the C evaluator's bfloat16 kinds, called directly ------------------------

B32, B16, BW32 = (numpy_kernel._KINDS[("bfloat16", c, r)] for c, r in [
    ("float32", "bfloat16"), ("bfloat16", "bfloat16"), ("float32", "float32")])  # fmt: skip
COPY = bytes([0, 1, 0, 0, 0])  # register 1 <- register 0
NEG = bytes([1, 1, 0, 0, 0])  # register 1 <- -register 0
MUL = bytes([2, 1, 0, 2, 0])  # register 1 <- register 0 * register 2 (a constant)


def _spec(kind: int, flush: bool = False, lanes: int = 0) -> _cpu.Spec:
    return (kind, flush, 3, lanes, b"\x00", b"\x01")


def test_the_evaluator_takes_uint16_bits_for_bfloat16_and_skips_the_rest() -> None:
    x = np.array([1.0, -2.0, 3.0, 0.5], np.float32).astype(BF16)
    y = np.zeros(4, BF16)
    bits = x.view(np.uint16)
    leaves = [
        (bits, y.view(np.uint16)),  # 0: taken
        (x, np.zeros(4, BF16)),  # 1: bfloat16 itself: not a buffer NumPy exports
        (bits, np.zeros(4, np.float16)),  # 2: another format
        (bits, None),  # 3: what numpy._bits gives for an array it cannot view
        (bits[::2], np.zeros(2, np.uint16)),  # 4: strided
        (bits, bits[1:].copy()),  # 5: another length
    ]
    assert _cpu.run(_spec(B32), [(NEG, [])], leaves, np.ndarray) == [1, 2, 3, 4, 5]
    assert y.astype(np.float32).tolist() == [-1.0, 2.0, -3.0, -0.5]


@pytest.mark.parametrize("kind", [B32, B16, BW32])
def test_the_evaluator_rounds_products_to_nearest_even_bfloat16(kind: int) -> None:
    # 1 + 2^-7 (the bfloat16 after 1) times 1 + 2^-8 (a float32 constant in
    # the float32 models; 1 in bfloat16) is 1 + 3·2^-8 + 2^-15: above the
    # midpoint 1 + 3·2^-8, so it rounds up to 1 + 2^-6
    x = np.array([1 + 2.0**-7, -(1 + 2.0**-7), 2.0**-126, 3e38], np.float32).astype(BF16)
    y = np.zeros(4, BF16)
    constant = 1 + 2.0**-8 if kind != B16 else 1.0
    assert _cpu.run(_spec(kind), [(MUL, [(2, constant)])], [(x.view(np.uint16), y.view(np.uint16))],
                    np.ndarray) == []  # fmt: skip
    if kind == B16:
        assert y.tolist() == x.tolist()
    else:
        big = float(np.float32(3e38).astype(BF16)) * (1 + 2.0**-8)
        assert y.astype(np.float64).tolist() == [
            1 + 2.0**-6,
            -(1 + 2.0**-6),
            2.0**-126,
            float(np.float32(big).astype(BF16)),
        ]


@pytest.mark.parametrize("kind", [B32, B16, BW32])
def test_the_evaluator_flushes_bfloat16_where_asked(kind: int) -> None:
    x = np.array([2.0**-130, -(2.0**-133), 2.0**-126, -1.0], np.float32).astype(BF16)
    for flush, expected in ((False, [2.0**-130, -(2.0**-133), 2.0**-126, -1.0]),
                            (True, [0.0, -0.0, 2.0**-126, -1.0])):  # fmt: skip
        y = np.ones(4, BF16)
        assert _cpu.run(_spec(kind, flush), [(COPY, [])], [(x.view(np.uint16), y.view(np.uint16))],
                        np.ndarray) == []  # fmt: skip
        got = y.astype(np.float64)
        assert got.tolist() == expected
        assert np.signbit(got).tolist() == np.signbit(expected).tolist()


def test_copy_and_negation_keep_nan_payloads_only_computing_in_bfloat16() -> None:
    x = np.array([0x7F81, 0xFFA1, 0x7FC1, 0xFFFF], np.uint16)
    keeps = np.zeros(4, np.uint16)
    assert _cpu.run(_spec(B16), [(NEG, [])], [(x, keeps)], np.ndarray) == []
    assert keeps.tolist() == [0xFF81, 0x7FA1, 0xFFC1, 0x7FFF]
    for kind in (B32, BW32):  # through float32, as ml_dtypes converts: 0x7fc0 with its sign
        quiet = np.zeros(4, np.uint16)
        assert _cpu.run(_spec(kind), [(NEG, [])], [(x, quiet)], np.ndarray) == []
        assert quiet.tolist() == [0xFFC0, 0x7FC0, 0xFFC0, 0x7FC0]


@pytest.mark.parametrize("model", list(MODELS))
def test_a_contracted_multiply_add_rounds_as_its_model_says(model: str, spy: list[bool]) -> None:
    # 7·37 = 259 is halfway between the bfloat16 numbers 258 and 260; a
    # tiny addend decides: once rounded in bfloat16, 259 - 2^-40 is 258 and
    # 259 + 2^-40 is 260, where float32 first (fmaf) rounds both to 259, a
    # tie, and then to the even 260
    program = Program(
        (instr("f", "muladd", "p", "g", "b"),),
        Rounding(True, *MODELS[model]),
        INPUTS,
        ("f",),
    )
    p, g, b = (
        np.array(v, np.float64).astype(BF16)
        for v in (
            [7.0, 7.0, -7.0, 2.0**-70],
            [37.0, 37.0, 37.0, 2.0**-70],
            [-(2.0**-40), 2.0**-40, 2.0**-40, 0.0],
        )
    )
    (fast,) = apply(program, {"p": p, "g": g, "b": b})
    assert spy == [True]
    with fastpaths.disabled():
        (slow,) = apply(program, {"p": p, "g": g, "b": b})
    assert fast.tobytes() == slow.tobytes()
    # (the last: a product 2^-140, far below the smallest subnormal, 2^-133)
    once = [258.0, 260.0, -258.0, 0.0]
    twice = [260.0, 260.0, -260.0, 0.0]
    assert fast.astype(np.float64).tolist() == (once if model == "bf16-compute" else twice)
