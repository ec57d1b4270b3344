"""nagref._engine.interpret: the generic interpreter, which defines every result."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from backends import XP, Backend, load
from oracle import exact_fma

from nagref._compat import array_namespace
from nagref._engine.interpret import run_leaf
from nagref._engine.ir import Batch, Instr, Op, Rounding, Segment, instr

BITS = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _bits(x: np.ndarray) -> list[int]:
    return [int(b) for b in np.ravel(x).view(BITS[x.itemsize])]


def _run(
    xp: XP,
    segments: Sequence[tuple[Sequence[Instr], Rounding, dict[str, float]]],
    inputs: dict[str, np.ndarray],
    outputs: tuple[str, ...],
    *,
    lanes: int = 0,
    grain: int = 0,
    threads: int = 1,
    constant_dtype: str | None = None,
    scalar: dict[int, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """One leaf through run_leaf on ``xp`` (called as ``xp.call`` calls), as NumPy arrays.

    Each segment's constants are 0-d arrays of ``constant_dtype`` (default:
    the leaves' dtype), made on the backend.
    """
    names = tuple(inputs)
    dtype = constant_dtype or str(next(iter(inputs.values())).dtype)
    made = [
        Segment(
            tuple(recipe),
            rounding,
            {k: xp.asarray(np.asarray(v, dtype=dtype)) for k, v in constants.items()},
        )
        for recipe, rounding, constants in segments
    ]

    def leaf(*arrays: Any) -> tuple[Any, ...]:
        batch = Batch(
            tuple(made),
            lanes,
            names,
            [[a] for a in arrays],
            outputs,
            [None] * len(outputs),
            grain=grain,
            threads=threads,
            scalar=None if scalar is None else [scalar],
        )
        return run_leaf(xp.ns, batch, 0)

    results = xp.call(leaf, *(xp.asarray(a) for a in inputs.values()))
    with warnings.catch_warnings():
        # Dask evaluates the exact FMA's scaled branches on every element,
        # where the unused ones overflow harmlessly (the result is unaffected)
        warnings.simplefilter("ignore", RuntimeWarning)
        return [xp.to_numpy(r) for r in results]


def _operands(dtype: str, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normal operands whose product and sum need rounding, some of them nearly cancelling."""
    rng = np.random.default_rng(7)
    a = rng.uniform(0.5, 2.0, n).astype(dtype)
    b = rng.uniform(0.5, 2.0, n).astype(dtype)
    c = rng.uniform(-2.0, 2.0, n).astype(dtype)
    c[: n // 2] = -(a[: n // 2].astype(np.float64) * b[: n // 2]).astype(dtype)  # cancel
    return a, b, c


def _need(xp: XP, dtype: str) -> None:
    if dtype not in xp.dtypes:
        pytest.skip(f"{xp.backend.value} has no {dtype}")


MULADD = (instr("r", "muladd", "a", "b", "c"),)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_muladd_contracted_rounds_once(xp: XP, dtype: str) -> None:
    _need(xp, dtype)
    a, b, c = _operands(dtype)
    (got,) = _run(xp, [(MULADD, Rounding(contract=True), {})], {"a": a, "b": b, "c": c}, ("r",))
    want = np.array(
        [exact_fma(float(x), float(y), float(z), dtype) for x, y, z in zip(a, b, c, strict=True)],
        dtype=dtype,
    )
    assert _bits(got) == _bits(want)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_muladd_not_contracted_rounds_product_and_sum(xp: XP, dtype: str) -> None:
    _need(xp, dtype)
    if xp.contracts:
        pytest.skip(
            "jax.jit: XLA contracts a·b + c into one fused multiply-add "
            "(docs/rules.md, docs/conventions.md), so the product is not rounded"
        )
    a, b, c = _operands(dtype)
    (got,) = _run(xp, [(MULADD, Rounding(contract=False), {})], {"a": a, "b": b, "c": c}, ("r",))
    want = a * b + c  # NumPy: two roundings
    fused = np.array(
        [exact_fma(float(x), float(y), float(z), dtype) for x, y, z in zip(a, b, c, strict=True)],
        dtype=dtype,
    )
    assert _bits(got) == _bits(want)
    assert _bits(got) != _bits(fused)  # the data tells the two apart


def test_compute_dtype_keeps_a_constant_wider_than_the_storage(xp: XP) -> None:
    """float32 storage computing in float64: the constant 0.1 is not rounded to float32."""
    x = np.random.default_rng(1).standard_normal(64).astype(np.float32)
    recipe = (instr("r", "mul", "x", "k"),)
    wide = Rounding(contract=False, compute={"float32": "float64"})
    (got,) = _run(xp, [(recipe, wide, {"k": 0.1})], {"x": x}, ("r",), constant_dtype="float64")
    (plain,) = _run(
        xp, [(recipe, Rounding(False), {"k": 0.1})], {"x": x}, ("r",), constant_dtype="float64"
    )
    assert got.dtype == plain.dtype == np.float32  # results come back in the storage dtype
    assert _bits(got) == _bits((x.astype(np.float64) * 0.1).astype(np.float32))
    assert _bits(plain) == _bits(x * np.float32(0.1))  # the constant cast to storage first
    assert _bits(got) != _bits(plain)


def test_result_dtype_rounds_each_result(xp: XP) -> None:
    """float64 storage with float32 results (Keras' NumPy backend): every result is a float32."""
    x = np.random.default_rng(2).standard_normal(64)
    y = np.random.default_rng(3).standard_normal(64)
    recipe = (instr("s", "add", "x", "y"), instr("r", "mul", "s", "s"))
    narrow = Rounding(contract=False, compute={"float64": "float32"}, result={"float64": "float32"})
    s, r = _run(xp, [(recipe, narrow, {})], {"x": x, "y": y}, ("s", "r"))
    assert s.dtype == r.dtype == np.float64
    s32 = x.astype(np.float32) + y.astype(np.float32)
    assert _bits(s) == _bits(s32.astype(np.float64))
    assert _bits(r) == _bits((s32 * s32).astype(np.float64))


def test_float16_computed_in_float32_rounds_to_float16_after_each_operation(xp: XP) -> None:
    _need(xp, "float16")
    if xp.contracts:
        pytest.skip(
            "jax.jit: XLA contracts x·y + x into one fused multiply-add, across the "
            "float16 rounding in between (docs/rules.md)"
        )
    rng = np.random.default_rng(4)
    x, y = (rng.standard_normal(64).astype(np.float16) for _ in range(2))
    recipe = (instr("t", "mul", "x", "y"), instr("r", "add", "t", "x"))
    half = Rounding(contract=False, compute={"float16": "float32"})
    (got,) = _run(xp, [(recipe, half, {})], {"x": x, "y": y}, ("r",))
    assert got.dtype == np.float16
    assert _bits(got) == _bits(x * y + x)  # NumPy rounds each float16 operation


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_flush_makes_subnormal_operands_and_results_signed_zeros(xp: XP, dtype: str) -> None:
    info = np.finfo(dtype)
    tiny = float(info.smallest_normal)
    x = np.array([tiny / 4, -tiny / 4, tiny, -3 * tiny, 1.0, -0.0], dtype)
    half = np.array([1.0, 1.0, 0.5, 0.25, 0.5, 1.0], dtype)
    recipe = (instr("c", "copy", "x"), instr("m", "mul", "x", "h"))
    flush = Rounding(contract=False, flush=frozenset({dtype}))
    copied, product = _run(xp, [(recipe, flush, {})], {"x": x, "h": half}, ("c", "m"))
    assert _bits(copied) == _bits(np.array([0.0, -0.0, tiny, -3 * tiny, 1.0, -0.0], dtype))
    # tiny/2 and -3·tiny/4 are subnormal results: flushed, keeping their signs
    assert _bits(product) == _bits(np.array([0.0, -0.0, 0.0, -0.0, 0.5, -0.0], dtype))


def test_no_flush_for_other_dtypes(xp: XP) -> None:
    if xp.flushes_subnormals("float64"):
        pytest.skip("XLA on CPU flushes float64 subnormals itself (docs/rules.md)")
    tiny = float(np.finfo(np.float64).smallest_normal)
    x = np.array([tiny / 4, -tiny / 4], np.float64)
    flush32 = Rounding(contract=False, flush=frozenset({"float32"}))
    (copied,) = _run(xp, [((instr("c", "copy", "x"),), flush32, {})], {"x": x}, ("c",))
    assert _bits(copied) == _bits(x)


@pytest.mark.parametrize(("shape", "tail"), [((37,), 5), ((3, 13), 7), ((4, 8), 0), ((3,), 3)])
def test_split_evaluates_the_tail_recipe_on_the_last_n_mod_lanes_elements(
    xp: XP, shape: tuple[int, ...], tail: int
) -> None:
    x = np.arange(1, 1 + int(np.prod(shape)), dtype=np.float32).reshape(shape)
    body = ((instr("r", "mul", "x", "k"),), Rounding(False), {"k": 2.0})
    tail_segment = ((instr("r", "mul", "x", "k"),), Rounding(False), {"k": 3.0})
    segments = [body, tail_segment] if tail else [body]
    (got,) = _run(xp, segments, {"x": x}, ("r",), lanes=8 if tail else 0)
    assert got.shape == shape
    flat = x.ravel()
    factor = np.where(np.arange(flat.size) >= flat.size - tail, 3, 2).astype(np.float32)
    assert _bits(got) == _bits((flat * factor).reshape(shape))


def _chunk_tails(size: int, lanes: int, grain: int, threads: int) -> np.ndarray:
    """Element by element: in the last (chunk size mod lanes) of its chunk? The chunks are
    OpenMP's in at::parallel_for: min(threads, ceil(size / grain)) of ceil(size / that)."""
    tails = np.zeros(size, bool)
    team = 1 if size <= grain or threads == 1 else min(threads, -(-size // grain))
    chunk = -(-size // team) if size else 0
    for tid in range(team):
        begin, end = tid * chunk, min(size, (tid + 1) * chunk)
        for i in range(begin, end):
            tails[i] = i >= end - (end - begin) % lanes
    return tails


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(37,), (41,), (5, 9), (64,), (3,), (0,)])
def test_each_chunk_has_its_own_body_and_tail(xp: XP, shape: tuple[int, ...], threads: int) -> None:
    """A split with grain 8 and 4 lanes: the tail recipe runs on each chunk's last elements."""
    x = np.arange(1, 1 + int(np.prod(shape)), dtype=np.float32).reshape(shape)
    body = ((instr("r", "mul", "x", "k"),), Rounding(False), {"k": 2.0})
    tail = ((instr("r", "mul", "x", "k"),), Rounding(False), {"k": 3.0})
    (got,) = _run(xp, [body, tail], {"x": x}, ("r",), lanes=4, grain=8, threads=threads)
    assert got.shape == shape
    factor = np.where(_chunk_tails(x.size, 4, 8, threads), 3, 2).astype(np.float32)
    assert _bits(got) == _bits((x.ravel() * factor).reshape(shape))


def test_chunks_change_which_float16_elements_get_the_tails_rounding(xp: XP) -> None:
    """The issue's tensor: n = 65537, p = 0x30c6, g = 0x3e83, p + fl16(fl32(-0.1))·g.

    The body fuses in float32 (one rounding, then float16); the tail rounds the
    product to float16 first. torch 2.13 gives 0xa2f4 and 0xa2f0 (measured).
    """
    _need(xp, "float16")
    if xp.contracts:
        pytest.skip("jax.jit: XLA contracts the tail's a·b + c (docs/rules.md)")
    n = 65537
    p = np.full(n, 0x30C6, np.uint16).view(np.float16)
    g = np.full(n, 0x3E83, np.uint16).view(np.float16)
    k = np.float16(np.float32(-0.1))
    rounding = {"float16": "float32"}
    recipe = (instr("r", "muladd", "g", "k", "p"),)
    body = (recipe, Rounding(True, rounding), {"k": float(k)})
    tail = (recipe, Rounding(False, rounding), {"k": float(k)})
    fused = np.float16(exact_fma(float(g[0]), float(k), float(p[0]), "float32"))
    product = np.float16(np.float32(g[0]) * np.float32(k))
    separate = np.float16(np.float32(product) + np.float32(p[0]))
    assert (int(fused.view(np.uint16)), int(separate.view(np.uint16))) == (0xA2F4, 0xA2F0)
    for threads, tails in ((1, [65536]), (2, [32768]), (3, list(range(21824, 21846)))):
        (got,) = _run(
            xp, [body, tail], {"g": g, "p": p}, ("r",), lanes=32, grain=32768, threads=threads
        )
        expected = np.where(_chunk_tails(n, 32, 32768, threads), separate, fused)
        assert _bits(got) == _bits(expected)
        assert np.flatnonzero(got.view(np.uint16) == 0xA2F0)[: len(tails)].tolist() == tails


@pytest.mark.parametrize("shape", [(5, 9), (37,), (0,), ()])
def test_masks_take_each_instructions_elements_from_the_tails_rounding(
    xp: XP, shape: tuple[int, ...]
) -> None:
    """Program.scalar: per instruction, the masked elements computed under the tail's rounding.

    Two chained multiply-adds with different masks: the first instruction's
    masked elements round twice, the second's others; every element of the
    result is what a per-element choice of roundings gives (the oracle's).
    """
    _need(xp, "float16")
    if xp.contracts:
        pytest.skip("jax.jit: XLA contracts the tail's a·b + c (docs/rules.md)")
    rng = np.random.default_rng(3)
    a, b, c = (rng.standard_normal(shape).astype(np.float16) for _ in range(3))
    k = 0.1
    opmath = {"float16": "float32"}
    recipe = (instr("r", "muladd", "a", "k", "c"), instr("r", "muladd", "b", "k", "r"))
    first = rng.random(shape) < 0.5
    second = rng.random(shape) < 0.5
    body = (recipe, Rounding(True, opmath), {"k": k})
    tail = (recipe, Rounding(False, opmath), {"k": k})
    masks = {0: first, 1: second}
    (got,) = _run(xp, [body, tail], {"a": a, "b": b, "c": c}, ("r",), lanes=32, scalar=masks)
    kk = np.float16(k)

    def muladd(x: np.ndarray, y: np.ndarray, twice: np.ndarray) -> np.ndarray:
        fused = np.array(
            [
                exact_fma(float(v), float(kk), float(w), "float32")
                for v, w in zip(x.flat, y.flat, strict=False)
            ],
            np.float32,
        ).reshape(shape)
        product = (x.astype(np.float32) * np.float32(kk)).astype(np.float16)
        separate = product.astype(np.float32) + y.astype(np.float32)
        return np.where(twice, separate, fused).astype(np.float16)

    expected = muladd(b, muladd(a, c, first), second)
    assert got.shape == shape
    assert _bits(got) == _bits(expected)
    if got.size > 1:  # and the masks mattered: all-body differs
        (plain,) = _run(xp, [body], {"a": a, "b": b, "c": c}, ("r",))
        assert _bits(plain) != _bits(got)


def test_split_tail_with_a_constant_output_and_other_roundings(xp: XP) -> None:
    """A constant output is broadcast; the tail has its own rounding (here: no FMA)."""
    a, b, c = _operands("float64", 37)
    recipe = (instr("r", "muladd", "a", "b", "c"), instr("z", "copy", "k"))
    if xp.contracts:
        pytest.skip("jax.jit: XLA contracts the tail's a·b + c (docs/rules.md)")
    r, z = _run(
        xp,
        [(recipe, Rounding(True), {"k": -0.0}), (recipe, Rounding(False), {"k": 1.5})],
        {"a": a, "b": b, "c": c},
        ("r", "z"),
        lanes=32,
    )
    fused = [
        exact_fma(float(x), float(y), float(w), "float64") for x, y, w in zip(a, b, c, strict=True)
    ]
    assert _bits(r[:32]) == _bits(np.array(fused[:32]))
    assert _bits(r[32:]) == _bits(a[32:] * b[32:] + c[32:])
    assert _bits(z) == _bits(np.array([-0.0] * 32 + [1.5] * 5))


OPERATIONS: dict[Op, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "neg": lambda x, y: -x,
    "add": np.add,
    "sub": np.subtract,
    "div": np.divide,
    "mul": np.multiply,
    "copy": lambda x, y: x,
}


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_each_operation_rounds_as_ieee_does(xp: XP, op: Op) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal(50)
    y = rng.standard_normal(50)
    x[:4] = [0.0, -0.0, 0.0, -0.0]  # every sign of zero against every other
    y[:4] = [0.0, 0.0, -0.0, -0.0] if op != "div" else [3.0, 3.0, -3.0, -3.0]
    args = ("x",) if op in ("neg", "copy") else ("x", "y")
    recipe = (Instr("r", op, args),)
    (got,) = _run(xp, [(recipe, Rounding(False), {})], {"x": x, "y": y}, ("r",))
    assert _bits(got) == _bits(OPERATIONS[op](x, y))


def test_a_constant_only_output_has_the_leafs_shape_and_dtype(xp: XP) -> None:
    x = np.zeros((2, 3), np.float32)
    (got,) = _run(
        xp, [((instr("r", "copy", "k"),), Rounding(False), {"k": 0.25})], {"x": x}, ("r",)
    )
    assert got.shape == (2, 3)
    assert got.dtype == np.float32
    assert got.tolist() == [[0.25] * 3] * 2


def test_outputs_are_written_into_the_callers_arrays() -> None:
    ns = array_namespace(np.zeros(1))
    x = np.array([1.0, 2.0, 3.0], np.float32)
    target = np.full(3, np.nan, np.float32)
    segment = Segment((instr("r", "add", "x", "x"), instr("s", "neg", "x")), Rounding(False), {})
    batch = Batch((segment,), 0, ("x",), [[x]], ("r", "s"), [[target], None])
    r, s = run_leaf(ns, batch, 0)
    assert r is target
    assert target.tolist() == [2.0, 4.0, 6.0]
    assert s is not x
    assert s.tolist() == [-1.0, -2.0, -3.0]
    assert x.tolist() == [1.0, 2.0, 3.0]


def test_run_leaf_picks_its_leaf_of_the_batch() -> None:
    ns = array_namespace(np.zeros(1))
    leaves = [np.full(n, float(n), np.float64) for n in (1, 2, 3)]
    segment = Segment((instr("r", "mul", "x", "x"),), Rounding(False), {})
    batch = Batch((segment,), 0, ("x",), [leaves], ("r",), [None])
    assert [run_leaf(ns, batch, k)[0].tolist() for k in range(3)] == [[1.0], [4.0] * 2, [9.0] * 3]


def test_the_interpreter_runs_without_computing_on_dask() -> None:
    """Nothing is computed: xp.call forbids it on Dask, so _run would fail if it were."""
    dask = load(Backend.DASK)
    a, b, c = _operands("float32", 30)
    (got,) = _run(dask, [(MULADD, Rounding(True), {})], {"a": a, "b": b, "c": c}, ("r",))
    assert got.shape == (30,)
