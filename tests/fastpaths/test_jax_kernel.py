"""nagref.fastpaths.jax: eager JAX CPU arrays through the C kernel, bit for bit.

(Named test_jax_kernel: tests/conventions/test_jax.py is conventions/_jax.py's.)

The cases of the NumPy kernel (kernel_cases.py) run on eager JAX CPU
arrays, through the seam and inside ``fastpaths.disabled()`` (XLA's own
operations, which flush subnormals); a spy proves that the kernel ran,
where the C evaluator can model XLA's rounding. Under ``jax.jit`` the kernel
never runs: the traced generic path does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from backends import Backend, load
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_cases import CASES, EXAMPLES, PAIRS, _arrays, _same, spy_on, zero_d_and_empty

import nagref
from nagref import fastpaths
from nagref.conventions import pytorch

XP = load(Backend.JAX)
jax = pytest.importorskip("jax")
jnp = XP.module
NAMESPACE = "jax.numpy"


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    return spy_on(monkeypatch, jnp, NAMESPACE)


def _numpy(results: Any) -> tuple[Any, ...]:
    return tuple(None if x is None else XP.to_numpy(x) for x in results)


@pytest.mark.parametrize(("case", "dtype"), PAIRS)
@settings(max_examples=EXAMPLES // 6)  # each eager JAX operation is a dispatch
@given(data=st.data())
def test_kernel_equals_the_generic_path_bitwise(
    case: str, dtype: str, data: st.DataObject, spy: list[bool]
) -> None:
    p, g, b = (XP.asarray(x) for x in _arrays(data.draw, dtype))
    lr = data.draw(st.floats(0.0, 1.0))
    mu = data.draw(st.floats(0.001, 0.999))
    step = CASES[case]
    spy.clear()
    fast = step(p, g, b, lr, mu)
    with fastpaths.disabled():
        slow = step(p, g, b, lr, mu)
    _same(_numpy(fast), _numpy(slow))


def test_canonical_rules_and_the_exact_convention_run_on_the_kernel(spy: list[bool]) -> None:
    rng = np.random.default_rng(7)
    for dtype in ("float16", "bfloat16", "float32", "float64"):
        p, g, v = (XP.asarray(rng.standard_normal(1000), dtype) for _ in range(3))
        spy.clear()
        fast = nagref.nag(p, g, v, lr=0.1, momentum=0.9)
        exact = pytorch.sgd(p, g, v, lr=0.1, momentum=0.9, nesterov=True)
        # the convention's fused multiply-add: the generic path in float64 (see
        # fastpaths.jax), and in float16, computed in float32, which C cannot flush
        fused = spy[-1]
        with fastpaths.disabled():
            _same(_numpy(fast), _numpy(nagref.nag(p, g, v, lr=0.1, momentum=0.9)))
            slow = pytorch.sgd(p, g, v, lr=0.1, momentum=0.9, nesterov=True)
            _same(_numpy(exact), _numpy(slow))
        assert spy[0], dtype
        assert fused == (dtype in ("float32", "bfloat16")), dtype
        assert all(type(x) is type(p) for x in (*fast, *exact))


def test_subnormals_are_flushed_as_xla_flushes_them(spy: list[bool]) -> None:
    p = XP.asarray([1e-39, -1e-39, 1.0, 0.0], "float32")
    fast = nagref.sgd(p, p, lr=1e-3)
    assert spy == [True]
    with fastpaths.disabled():
        slow = nagref.sgd(p, p, lr=1e-3)
    _same(_numpy((fast,)), _numpy((slow,)))
    assert XP.to_numpy(fast)[0] == 0.0


def test_under_jit_the_traced_path_runs(spy: list[bool]) -> None:
    p = XP.asarray(np.linspace(-1, 1, 300), "float32")

    def step(lr: Any) -> Any:
        return nagref.nag(p, p, p, lr=lr, momentum=0.9)  # p closed over: concrete

    jitted = jax.jit(step)(0.1)
    assert not any(spy)
    with fastpaths.disabled():
        expected = jax.jit(step)(0.1)
    _same(_numpy(jitted), _numpy(expected))
    traced = jax.jit(lambda x: nagref.sgd(x, x, lr=0.5))(p)
    assert not any(spy)
    assert XP.to_numpy(traced).tobytes() == XP.to_numpy(p - 0.5 * p).tobytes()


def test_zero_d_and_empty_arrays_and_pytrees(spy: list[bool]) -> None:
    zero_d_and_empty(jnp, XP.to_numpy, spy)


def test_out_is_still_refused() -> None:
    p = jnp.ones(3, dtype=jnp.float32)
    with pytest.raises(TypeError, match=r"out is a JAX array, which cannot be written"):
        nagref.sgd(p, p, lr=0.1, out=p)
