"""nagref._engine.ir: instructions, programs, bind, per_dtype, segment bounds and chunks."""

from __future__ import annotations

import dataclasses
import itertools
from types import MappingProxyType

import pytest

from nagref._engine.ir import (
    COMPUTE,
    OPMATH,
    STORAGE,
    VIA_OPMATH,
    Batch,
    Hyper,
    Instr,
    Program,
    Rounding,
    Split,
    bind,
    bounds,
    chunked,
    chunks,
    instr,
    per_dtype,
    pieces,
)


def _program() -> Program:
    recipe = (instr("p", "muladd", "g", "neg_lr", "p"),)
    return Program(recipe, Rounding(contract=True), ("p", "g"), ("p",), {"neg_lr": Hyper(-0.1)})


def test_instr_is_the_shorthand_and_a_note_does_not_change_equality() -> None:
    made = instr("b", "muladd", "g", "keep", "b", note="buf.add_(grad, alpha=1 - dampening)")
    assert made == Instr("b", "muladd", ("g", "keep", "b"))
    assert made.args == ("g", "keep", "b")
    assert made.note == "buf.add_(grad, alpha=1 - dampening)"
    assert instr("b", "muladd", "g", "keep", "b") != instr("b", "muladd", "keep", "g", "b")
    assert hash(made) == hash(Instr("b", "muladd", ("g", "keep", "b")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.out = "c"  # type: ignore[misc]


def test_rounding_defaults_to_the_storage_dtype_without_flushing() -> None:
    rounding = Rounding(contract=False)
    assert dict(rounding.compute) == {}
    assert dict(rounding.result) == {}
    assert rounding.flush == frozenset()


def test_hyper_chains_name_the_leafs_dtypes() -> None:
    assert (STORAGE, COMPUTE, OPMATH) == ("storage", "compute", "opmath")
    assert VIA_OPMATH == (OPMATH, STORAGE)
    assert Hyper(0.5).via == (STORAGE,)  # a Python float is rounded once, to the storage dtype


def test_a_program_has_no_hypers_and_no_split_by_default() -> None:
    program = Program((), Rounding(contract=False), ("p",), ("p",))
    assert dict(program.hypers) == {}
    assert program.split is None


def test_bind_adds_hypers_without_changing_the_program() -> None:
    program = _program()
    bound = bind(program, {"lr": Hyper(0.25), "mu": Hyper(0.9, VIA_OPMATH)})
    assert dict(bound.hypers) == {
        "neg_lr": Hyper(-0.1),
        "lr": Hyper(0.25),
        "mu": Hyper(0.9, VIA_OPMATH),
    }
    assert dict(program.hypers) == {"neg_lr": Hyper(-0.1)}  # the original is untouched
    assert bound._replace(hypers={}) == program._replace(hypers={})


def test_bind_replaces_a_hyper_of_the_same_name_and_accepts_read_only_mappings() -> None:
    program = _program()._replace(hypers=MappingProxyType({"neg_lr": Hyper(-0.1)}))
    bound = bind(program, MappingProxyType({"neg_lr": Hyper(-0.5)}))
    assert dict(bound.hypers) == {"neg_lr": Hyper(-0.5)}


def test_per_dtype_returns_one_program_for_every_dtype_or_the_function_itself() -> None:
    program = _program()
    every = per_dtype(program)
    assert every("float16") is program
    assert every("float64") is program

    def by_dtype(dtype: str) -> Program:
        return program._replace(inputs=(dtype,))

    assert per_dtype(by_dtype) is by_dtype


@pytest.mark.parametrize(
    ("lanes", "size", "expected"),
    [
        (0, 37, [(0, 37)]),  # no split: one segment
        (0, 0, [(0, 0)]),
        (32, 37, [(0, 32), (32, 37)]),  # the last 37 mod 32 = 5 elements are the tail
        (8, 39, [(0, 32), (32, 39)]),
        (8, 32, [(0, 32)]),  # an empty tail is left out
        (8, 0, [(0, 0)]),
        (32, 5, [(0, 0), (0, 5)]),  # fewer elements than lanes: all of them are the tail
        (4, 1, [(0, 0), (0, 1)]),
    ],
)
def test_bounds_split_off_the_last_n_mod_lanes_elements(
    lanes: int, size: int, expected: list[tuple[int, int]]
) -> None:
    assert bounds(lanes, size) == expected


@pytest.mark.parametrize("lanes", [1, 3, 4, 8, 32])
@pytest.mark.parametrize("size", [0, 1, 2, 7, 31, 32, 33, 100])
def test_bounds_cover_every_element_once_in_order(lanes: int, size: int) -> None:
    ranges = bounds(lanes, size)
    assert ranges[0][0] == 0
    assert ranges[-1][1] == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    tail = size % lanes
    assert (len(ranges) == 2) == (tail != 0)
    if tail:
        assert ranges[1][1] - ranges[1][0] == tail


def test_split_keeps_its_tail_recipe_rounding_and_lanes() -> None:
    tail = (instr("p", "mul", "p", "two"),)
    split = Split(tail, Rounding(contract=False), {"float16": 32})
    program = _program()._replace(split=split)
    assert program.split is split
    assert program.split.lanes["float16"] == 32
    assert program.split.tail_rounding.contract is False


def test_split_and_batch_default_to_one_chunk() -> None:
    split = Split((), Rounding(contract=False), {"float16": 32})
    assert (split.grain, split.threads) == (0, 1)
    batch = Batch((), 0, ("p",), [[]], ("p",), [None])
    assert (batch.grain, batch.threads) == (0, 1)


def _openmp(size: int, grain: int, threads: int) -> list[tuple[int, int]]:
    """at::parallel_for's OpenMP loop written out: each thread's [begin, end), if any."""
    if size <= grain or threads == 1:  # TensorIterator runs it serially
        return [(0, size)]
    team = min(threads, (size + grain - 1) // grain)
    chunk = (size + team - 1) // team
    out = []
    for tid in range(team):
        begin = tid * chunk
        if begin < size:
            out.append((begin, min(size, begin + chunk)))
    return out


@pytest.mark.parametrize(
    ("size", "threads", "expected"),
    [
        (65537, 2, [(0, 32769), (32769, 65537)]),  # the issue's tensor
        (65537, 3, [(0, 21846), (21846, 43692), (43692, 65537)]),
        (32768, 2, [(0, 32768)]),  # at most one grain: one thread
        (32769, 4, [(0, 16385), (16385, 32769)]),  # min(4, ceil(32769 / 32768)) = 2 chunks
        (98303, 3, [(0, 32768), (32768, 65536), (65536, 98303)]),
        (200003, 1, [(0, 200003)]),
        (0, 2, [(0, 0)]),
    ],
)
def test_chunks_are_torchs_parallel_for(
    size: int, threads: int, expected: list[tuple[int, int]]
) -> None:
    assert chunks(size, 32768, threads) == expected
    assert chunks(size, 32768, threads) == _openmp(size, 32768, threads)


def test_no_grain_or_one_thread_is_one_chunk() -> None:
    assert chunks(100_000, 0, 8) == [(0, 100_000)]
    assert chunks(100_000, 32768, 1) == [(0, 100_000)]


@pytest.mark.parametrize("grain", [1, 5, 8, 32768])
@pytest.mark.parametrize("threads", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("size", [0, 1, 9, 40, 77, 32769, 65537, 100_001])
def test_chunks_cover_every_element_once_in_order(grain: int, threads: int, size: int) -> None:
    got = chunks(size, grain, threads)
    assert got == _openmp(size, grain, threads)
    assert got[0][0] == 0
    assert got[-1][1] == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(got))
    assert len(got) <= max(1, threads)


def _tail_mask(lanes: int, size: int, grain: int, threads: int) -> list[bool]:
    """Which elements are in some chunk's last (chunk size mod lanes), element by element."""
    mask = [False] * size
    for begin, end in _openmp(size, grain, threads):
        for i in range(begin, end):
            mask[i] = lanes > 0 and i >= end - (end - begin) % lanes
    return mask


@pytest.mark.parametrize("lanes", [0, 4, 32])
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("size", [0, 1, 31, 33, 65, 32769, 65537, 98305])
def test_pieces_are_each_chunks_body_then_tail(lanes: int, threads: int, size: int) -> None:
    got = pieces(lanes, size, 32768, threads)
    mask = _tail_mask(lanes, size, 32768, threads)
    assert got[0][1] == 0
    assert got[-1][2] == size
    for (k, start, stop), after in itertools.zip_longest(got, got[1:]):
        assert all(mask[i] == (k == 1) for i in range(start, stop))
        assert stop > start or size == 0
        if after is not None:
            assert after[1] == stop
            assert after[0] != k  # neighbours of one segment are joined


def test_pieces_of_the_issues_tensor_and_of_one_chunk() -> None:
    assert pieces(32, 65537, 32768, 2) == [(0, 0, 32768), (1, 32768, 32769), (0, 32769, 65537)]
    assert pieces(32, 65537, 32768, 1) == [(0, 0, 65536), (1, 65536, 65537)]
    assert pieces(32, 37) == [(0, 0, 32), (1, 32, 37)]
    assert pieces(32, 5) == [(1, 0, 5)]  # fewer elements than lanes: all tail
    assert pieces(0, 37, 8, 4) == [(0, 0, 37)]  # no lanes: no tail, chunks or not
    assert pieces(32, 0, 32768, 2) == [(0, 0, 0)]


@pytest.mark.parametrize(
    ("lanes", "size", "threads", "expected"),
    [
        (32, 65537, 2, True),  # tails at 32768 and 65536, not 65536 alone
        (32, 65537, 1, False),
        (32, 65536, 2, False),  # two chunks of whole vectors: no tail at all
        (32, 131072, 4, False),
        (32, 32768, 8, False),  # one grain: one chunk
        (32, 98303, 2, False),  # chunks of 49152 and 49151: only the last has a tail
        (0, 100_001, 4, False),  # no tail
    ],
)
def test_chunked_says_where_chunks_change_the_tails(
    lanes: int, size: int, threads: int, expected: bool
) -> None:
    assert chunked(lanes, size, 32768, threads) is expected
