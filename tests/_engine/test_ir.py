"""nagref._engine.ir: instructions, programs, bind, per_dtype and segment bounds."""

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
    Hyper,
    Instr,
    Program,
    Rounding,
    Split,
    bind,
    bounds,
    instr,
    per_dtype,
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
