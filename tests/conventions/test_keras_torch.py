"""nagref.conventions._keras_torch: Keras 3's foreach recipe on its torch backend."""

from __future__ import annotations

import numpy as np
import pytest

from nagref.conventions._keras_torch import decay_factor, recipe

F32 = np.float32


@pytest.mark.parametrize(("lr", "wd"), [(0.1, 0.01), (0.3, 0.7), (1e-3, 4e-3)])
def test_the_decay_factor_is_float32_tensor_arithmetic(lr: float, wd: float) -> None:
    expected = F32(1.0) - F32(wd) * F32(lr)  # each operation rounded to float32
    assert decay_factor(lr, wd) == float(expected)
    assert decay_factor(lr, None) == 1.0


def test_the_recipe_is_keras_foreach_calls_in_order() -> None:
    def ops(momentum: float, nesterov: bool, wd: float | None) -> list[tuple[str, str]]:
        return [(i.op, i.out) for i in recipe(momentum, nesterov, wd)]

    assert ops(0.0, False, None) == [("muladd", "p")]  # _foreach_add_(vars, grads, alpha=-lr)
    assert ops(0.0, False, 0.1) == [("mul", "p"), ("muladd", "p")]  # the decay comes first
    velocity = [("mul", "v"), ("muladd", "v")]
    assert ops(0.9, False, None) == [*velocity, ("add", "p")]
    assert ops(0.9, True, None) == [*velocity, ("muladd", "p"), ("muladd", "p")]
    look_ahead = recipe(0.9, True, None)[-1]
    assert look_ahead.args == ("v", "mu", "p")  # p + v * momentum, fused
