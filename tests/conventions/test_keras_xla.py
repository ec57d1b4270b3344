"""Keras's step compiled by XLA (conventions._keras_xla), through ``keras.sgd(jit=True)``."""

from __future__ import annotations

import numpy as np

from nagref._engine.ir import Hyper, Program, Rounding
from nagref.conventions import keras
from nagref.conventions._keras_xla import compiled_program
from nagref.conventions._registry import REAL_FLOATS


def _eager() -> Program:
    lr = Hyper(0.1, ("float32", "storage"))
    return Program((), Rounding(contract=False), ("p", "g", "v"), ("p", "v"), {"lr": lr})


def test_bfloat16_is_the_eager_program_and_float16_reads_native_float16() -> None:
    eager = _eager()
    for native in (False, True):
        program = compiled_program(eager, 0.9, False, 0.01, native)
        assert program("bfloat16", False) is eager
        half = program("float16", False)
        assert [s.out for s in half.recipe][:3] == ["c", "nc", "p"]  # reassociated either way
        assert half.rounding.contract is native
        assert program("float32", False).rounding.contract
    assert set(REAL_FLOATS) >= {"float16", "bfloat16", "float32", "float64"}


def test_one_element_leaves_and_the_others_keep_their_places_in_the_tree() -> None:
    tree = {"bias": np.array([0.75], np.float32), "w": np.linspace(-1, 1, 5, dtype=np.float32)}
    grads = {"bias": np.array([0.5], np.float32), "w": np.full(5, 0.25, np.float32)}
    together, _ = keras.sgd(
        tree, grads, None, learning_rate=0.1, momentum=0.0, weight_decay=0.01,
        backend="jax", jit=True,
    )  # fmt: skip
    for name, leaf in tree.items():
        alone, _ = keras.sgd(
            leaf, grads[name], None, learning_rate=0.1, momentum=0.0, weight_decay=0.01,
            backend="jax", jit=True,
        )  # fmt: skip
        assert together[name].tobytes() == alone.tobytes()
    assert list(together) == ["bias", "w"]
