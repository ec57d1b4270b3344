"""nagref.conventions._jax: where JAX converts a hyperparameter, and how it rounds."""

from __future__ import annotations

import pytest

from nagref._engine.ir import STORAGE, VIA_HOST, VIA_OPMATH
from nagref.conventions import _jax


def test_run_time_conversions_go_through_float32_unless_float16_is_native() -> None:
    assert _jax.via("run_time", "float16", False) == VIA_OPMATH
    assert _jax.via("run_time", "float16", True) == (STORAGE,)
    assert _jax.via("run_time", "bfloat16", True) == VIA_OPMATH
    assert _jax.via("host", "float16", False) == VIA_HOST
    assert _jax.via("folded", "bfloat16", False) == (STORAGE,)


def test_jit_contracts_except_16_bit_formats_without_native_arithmetic() -> None:
    assert _jax.rounding(False, "float32", True) is _jax.EAGER
    assert _jax.rounding(True, "float32", False) is _jax.JIT
    assert _jax.rounding(True, "float16", False) is _jax.EAGER
    assert _jax.rounding(True, "float16", True) is _jax.JIT
    assert _jax.rounding(True, "bfloat16", True) is _jax.EAGER


def test_native_is_checked() -> None:
    assert _jax.native(True) is True
    assert isinstance(_jax.native(None), bool)
    with pytest.raises(TypeError, match="native_float16 must be a bool or None, got int 1"):
        _jax.native(1)  # type: ignore[arg-type]
