"""nagref._engine.fingerprint: a program's computation as a value, without its spelling."""

from __future__ import annotations

import numpy as np
import pytest

from nagref._engine.fingerprint import fingerprint, same
from nagref._engine.ir import (
    OPMATH,
    STORAGE,
    Hyper,
    Program,
    Rounding,
    Split,
    instr,
)

XP = np  # fingerprints are taken for the leaves' namespace; NumPy's here
F32 = np.zeros(3, np.float32)
F16 = np.zeros(3, np.float16)

#: v <- mu·v + g; p <- p - lr·v
MOMENTUM = Program(
    (
        instr("v", "mul", "v", "mu"),
        instr("v", "add", "v", "g"),
        instr("t", "mul", "lr", "v"),
        instr("p", "sub", "p", "t"),
    ),
    Rounding(contract=False),
    ("p", "g", "v"),
    ("p", "v"),
    {"lr": Hyper(0.01), "mu": Hyper(0.9)},
)


def test_names_chains_and_unread_constants_do_not_count() -> None:
    # the same operations with other register names, a hyperparameter cast through
    # float32 (no cast for float32 leaves), and a constant no operation reads
    respelled = Program(
        (
            instr("a", "mul", "velocity", "beta"),
            instr("b", "add", "a", "grad"),
            instr("c", "mul", "eta", "b"),
            instr("d", "sub", "param", "c"),
        ),
        Rounding(contract=False, compute={"float16": "float32"}),
        ("param", "grad", "velocity"),
        ("d", "b"),
        {"eta": Hyper(0.01, (OPMATH, STORAGE)), "beta": Hyper(0.9), "wd": Hyper(0.5)},
    )
    assert fingerprint(XP, MOMENTUM, F32) == fingerprint(XP, respelled, F32)
    # in float16 the rounding differs (computed in float32) and so does the lr's chain
    assert fingerprint(XP, MOMENTUM, F16) != fingerprint(XP, respelled, F16)


@pytest.mark.parametrize(
    "change",
    [
        {"hypers": {"lr": Hyper(0.011), "mu": Hyper(0.9)}},  # another constant
        {"hypers": {"lr": Hyper(0.01), "mu": Hyper(0.9, ("float16", STORAGE))}},  # another cast
        {"inputs": ("p", "v", "g")},  # the inputs in another order
        {"outputs": ("p", None)},  # an output not produced
        {"rounding": Rounding(contract=True)},  # fused multiply-adds
        {"rounding": Rounding(contract=False, flush=frozenset({"float32"}))},  # flushing
        {"recipe": tuple(reversed(MOMENTUM.recipe))},  # the operations in another order
        {"split": Split(MOMENTUM.recipe, Rounding(contract=True), {"float32": 8})},  # a tail
    ],
)
def test_what_decides_the_bits_counts(change: dict[str, object]) -> None:
    changed = MOMENTUM._replace(**change)
    assert fingerprint(XP, changed, F32) != fingerprint(XP, MOMENTUM, F32)


def test_masks_are_not_told_and_same_needs_every_group_told() -> None:
    masked = MOMENTUM._replace(scalar=[{0: np.ones(3, bool)}])
    assert fingerprint(XP, masked, F32) is None
    told = fingerprint(XP, MOMENTUM, F32)
    assert same([told], [told])
    assert not same([None], [None])
    assert not same([told], [fingerprint(XP, MOMENTUM, F16)])
