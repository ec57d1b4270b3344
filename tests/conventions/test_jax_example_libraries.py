"""nagref.conventions.jax_example_libraries: its recurrence, forms, checks (live: conformance/)."""

from __future__ import annotations

import numpy as np
import pytest

from nagref.conventions import jax_example_libraries as jel
from nagref.conventions import optax

#: a step size whose float16 rounding differs once and through float32
TWICE = 0.288696291246982


def _arrays(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.standard_normal(n).astype("float32"), rng.standard_normal(n).astype("float32")


def test_momentum_and_nesterov_written_out_in_numpy_float32() -> None:
    x, g = _arrays()
    v = np.random.default_rng(4).standard_normal(40).astype("float32")
    mass, lr = np.float32(0.9), np.float32(0.1)
    new_x, new_v = jel.update(x, g, v, step_size=0.1, mass=0.9)
    want_v = mass * v + g
    assert new_v.tobytes() == want_v.tobytes()
    assert new_x.tobytes() == (x - lr * want_v).tobytes()
    new_x, new_v = jel.update(x, g, v, step_size=0.1, mass=0.9, nesterov=True)
    assert new_v.tobytes() == want_v.tobytes()
    assert new_x.tobytes() == (x - lr * (mass * want_v + g)).tobytes()


def test_sgd_keeps_no_velocity_and_mass_zero_keeps_one() -> None:
    x, g = _arrays()
    new_x, velocity = jel.update(x, g, None, step_size=0.1)
    assert velocity is None
    assert new_x.tobytes() == (x - np.float32(0.1) * g).tobytes()
    _, velocity = jel.update(x, -np.zeros_like(g), None, step_size=0.1, mass=0.0)
    assert velocity is not None
    assert not np.signbit(velocity).any()  # zeros_like(x0) * 0 + (-0.0) is +0.0


def test_jit_contracts_where_eager_rounds_twice() -> None:
    x, g = _arrays(1000)
    eager, _ = jel.update(x, g, None, step_size=0.1)
    jitted, _ = jel.update(x, g, None, step_size=0.1, jit=True)
    assert eager.tobytes() != jitted.tobytes()


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_the_same_bits_as_optax_with_its_learning_rate_a_float_or_a_schedule(
    dtype: str, jit: bool, nesterov: bool
) -> None:
    # measured: the same operations in the same roundings (the module's docstring)
    from backends import numpy_dtype  # noqa: PLC0415

    x, g = (a.astype(numpy_dtype(dtype)) for a in _arrays())
    for form, learning_rate_form in (("constant", "float"), ("schedule", "schedule")):
        for native in (False, True):
            ours = jel.update(
                x, g, None, step_size=TWICE, mass=TWICE, nesterov=nesterov, jit=jit,
                step_size_form=form, native_float16=native,
            )  # fmt: skip
            theirs = optax.sgd(
                x, g, None, learning_rate=TWICE, momentum=TWICE, nesterov=nesterov, jit=jit,
                learning_rate_form=learning_rate_form, native_float16=native,
            )  # fmt: skip
            for a, b in zip(ours, theirs, strict=True):
                assert a.tobytes() == b.tobytes(), (form, native)


def test_the_step_size_form_decides_float16_under_jit_only_without_avx512fp16() -> None:
    x = np.zeros(3, np.float16)
    g = np.ones(3, np.float16)

    def step(form: str, jit: bool, native: bool) -> float:
        new_x, _ = jel.update(
            x, g, None, step_size=TWICE, step_size_form=form, jit=jit, native_float16=native
        )
        return -float(new_x[0])

    once, twice = 0.288818359375, 0.28857421875  # measured (the live rows check them)
    assert step("constant", True, False) == once  # folded on the host
    assert step("schedule", True, False) == twice  # XLA's convert, through float32
    assert step("constant", False, False) == twice  # eager: at run time
    assert step("schedule", True, True) == once  # AVX512-FP16 converts directly


def test_arguments_are_checked_before_anything_runs() -> None:
    x, g = _arrays()
    with pytest.raises(TypeError, match="step_size must be a real number, got str 'a'"):
        jel.update(x, g, None, step_size="a")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mass must be a real number"):
        jel.update(x, g, None, step_size=0.1, mass=True)
    with pytest.raises(ValueError, match="step_size_form must be one of constant, schedule"):
        jel.update(x, g, None, step_size=0.1, step_size_form="array")
    with pytest.raises(ValueError, match="nesterov=True needs a mass"):
        jel.update(x, g, None, step_size=0.1, nesterov=True)
    with pytest.raises(TypeError, match="jit must be a bool, got int 1"):
        jel.update(x, g, None, step_size=0.1, jit=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="native_float16 must be a bool or None"):
        jel.update(x, g, None, step_size=0.1, native_float16="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"out\[1\] must be None: this step returns no velocity"):
        jel.update(x, g, None, step_size=0.1, out=(None, np.empty_like(x)))


def test_it_is_pure_and_writes_out() -> None:
    x, g = _arrays()
    v = np.ones_like(x)
    before = (x.copy(), g.copy(), v.copy())
    new_x, new_v = jel.update(x, g, v, step_size=0.1, mass=0.9)
    for a, b in zip((x, g, v), before, strict=True):
        assert a.tobytes() == b.tobytes()
    x_out, v_out = np.empty_like(x), np.empty_like(v)
    written = jel.update(x, g, v, step_size=0.1, mass=0.9, out=(x_out, v_out))
    assert written[0] is x_out
    assert written[1] is v_out
    assert x_out.tobytes() == new_x.tobytes()
    assert v_out.tobytes() == new_v.tobytes()
