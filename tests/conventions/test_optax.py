"""nagref.conventions.optax: validation, states, purity (its live checks: conformance/)."""

from __future__ import annotations

import numpy as np
import pytest
from backends import numpy_dtype

from nagref import _dtypes
from nagref._dtypes import round_to
from nagref.conventions import _common, optax


def _arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal(20).astype("float32"), rng.standard_normal(20).astype("float32")


def test_optax_momentum_none_has_no_trace_but_zero_keeps_one() -> None:
    p, g = _arrays()
    assert optax.sgd(p, g, None, learning_rate=0.1)[1] is None
    _, trace = optax.sgd(p, g, None, learning_rate=0.1, momentum=0.0)
    assert trace is not None
    assert trace.tobytes() == (g + np.float32(0)).tobytes()


def test_optax_jit_contracts_where_eager_rounds_twice() -> None:
    p, g = _arrays()
    rng = np.random.default_rng(2)
    p, g = rng.standard_normal(1000).astype("float32"), rng.standard_normal(1000).astype("float32")
    eager, _ = optax.sgd(p, g, None, learning_rate=0.1)
    jitted, _ = optax.sgd(p, g, None, learning_rate=0.1, jit=True)
    assert eager.tobytes() == (p + np.float32(-0.1) * g).tobytes()
    assert eager.tobytes() != jitted.tobytes()


def _bfloat16(x: np.ndarray) -> np.ndarray:
    return x.astype(numpy_dtype("bfloat16"))


def test_a_float32_trace_of_bfloat16_parameters_is_float32_arithmetic() -> None:
    p32, g32 = _arrays()
    p, g = _bfloat16(p32), _bfloat16(g32)
    # the oracle: optax's promotion, written out in NumPy float32
    t = np.zeros(20, np.float32)
    mu, lr = np.float32(0.9), np.float32(-0.1)
    for jit in (False, True):
        new_p, new_t = optax.sgd(
            p, g, t, learning_rate=0.1, momentum=0.9, accumulator_dtype="float32", jit=jit
        )
        assert new_p.dtype == p.dtype
        assert new_t.dtype == np.float32
        want_t = g.astype(np.float32) + mu * t  # exact: t is zero
        assert new_t.tobytes() == want_t.tobytes()
        if not jit:
            want_p = _bfloat16(p.astype(np.float32) + lr * want_t)
            assert new_p.tobytes() == want_p.tobytes()
    # the same step with a bfloat16 trace rounds differently somewhere
    p2, t2 = optax.sgd(p, g, t, learning_rate=0.1, momentum=0.9, accumulator_dtype="float32")
    for _ in range(3):
        p2, t2 = optax.sgd(p2, g, t2, learning_rate=0.1, momentum=0.9, accumulator_dtype="float32")
    p3, t3 = optax.sgd(p, g, None, learning_rate=0.1, momentum=0.9)
    for _ in range(3):
        p3, t3 = optax.sgd(p3, g, t3, learning_rate=0.1, momentum=0.9)
    assert t3 is not None
    assert t3.dtype == p.dtype
    assert p2.tobytes() != p3.tobytes()


def test_accumulator_dtype_is_checked_before_anything_runs() -> None:
    p32, g32 = _arrays()
    p, g = _bfloat16(p32), _bfloat16(g32)
    with pytest.raises(ValueError, match=r"accumulator_dtype must be None or one of .*'int8'"):
        optax.sgd(p, g, None, learning_rate=0.1, momentum=0.9, accumulator_dtype="int8")
    with pytest.raises(TypeError, match=r"trace has dtype bfloat16 but must be float32"):
        optax.sgd(p, g, g, learning_rate=0.1, momentum=0.9, accumulator_dtype="float32")
    out_p, out_t = np.empty_like(p), np.empty(20, p.dtype)
    with pytest.raises(TypeError, match=r"out\[1\] has dtype bfloat16 but must be float32"):
        optax.sgd(
            p,
            g,
            None,
            learning_rate=0.1,
            momentum=0.9,
            accumulator_dtype="float32",
            out=(out_p, out_t),
        )
    with pytest.raises(NotImplementedError, match=r"accumulator_dtype='float32' with float64"):
        optax.sgd(
            p32.astype(np.float64),
            g32.astype(np.float64),
            None,
            learning_rate=0.1,
            momentum=0.9,
            accumulator_dtype="float32",
        )
    with pytest.raises(NotImplementedError, match=r"accumulator_dtype='bfloat16' with float16"):
        optax.sgd(
            p32.astype(np.float16),
            g32.astype(np.float16),
            None,
            learning_rate=0.1,
            momentum=0.9,
            accumulator_dtype="bfloat16",
        )
    # without momentum there is no trace, and the accumulator changes nothing
    plain, none = optax.sgd(p, g, None, learning_rate=0.1, accumulator_dtype="float32")
    assert none is None
    assert plain.tobytes() == optax.sgd(p, g, None, learning_rate=0.1)[0].tobytes()


def test_a_float32_trace_is_written_into_out() -> None:
    p32, g32 = _arrays()
    p, g = _bfloat16(p32), _bfloat16(g32)
    t = np.zeros(20, np.float32)
    want = optax.sgd(p, g, t, learning_rate=0.1, momentum=0.9, accumulator_dtype="float32")
    got = optax.sgd(
        p, g, t, learning_rate=0.1, momentum=0.9, accumulator_dtype="float32", out=(p, t)
    )
    assert got[0] is p
    assert got[1] is t
    assert p.tobytes() == want[0].tobytes()
    assert t.tobytes() == want[1].tobytes()


# a float16 and a bfloat16 learning rate whose 16-bit value depends on whether
# the float64 is rounded once or through float32
_TWICE = {"float16": 0.288696291246982, "bfloat16": 0.125 * (1 + 2.0**-8) * (1 + 2.0**-30)}


def _lr_reached(dtype: str, *, jit: bool, native: bool, form: str) -> str:
    """Whether ``form``'s learning rate reached ``dtype`` rounded "once" or "twice"."""
    lr = _TWICE[dtype]
    param = np.zeros(4, numpy_dtype(dtype))
    new, _ = optax.sgd(
        param,
        np.ones(4, param.dtype),
        None,
        learning_rate=lr,
        jit=jit,
        native_float16=native,
        learning_rate_form=form,
    )
    reached = -float(new[0])
    once, twice = round_to(lr, dtype), round_to(round_to(lr, "float32"), dtype)
    assert once != twice
    assert reached in (once, twice)
    return "once" if reached == once else "twice"


#: a bfloat16 host conversion (ml_dtypes'): through float32 with ml_dtypes 0.6, once with 0.7
_HOST = "twice" if _dtypes.host_via("bfloat16") == "float32" else "once"

# (dtype, native float16, form) -> eager, jit: as measured against Optax 0.2.8
# on JAX 0.10.2 (without native float16: XLA kept to AVX2)
_CONVERSIONS = {
    ("float16", False, "schedule"): ("twice", "twice"),
    ("float16", False, "float"): ("twice", "once"),
    ("float16", False, "float_schedule"): ("once", "once"),
    ("float16", False, "array"): ("twice", "once"),
    ("float16", True, "schedule"): ("once", "once"),
    ("float16", True, "float"): ("once", "once"),
    ("float16", True, "float_schedule"): ("once", "once"),
    ("float16", True, "array"): ("once", "once"),
    ("bfloat16", False, "schedule"): ("twice", "twice"),
    ("bfloat16", False, "float"): ("twice", _HOST),
    ("bfloat16", False, "float_schedule"): (_HOST, _HOST),
    ("bfloat16", False, "array"): ("twice", "once"),
}


@pytest.mark.parametrize(("dtype", "native", "form"), list(_CONVERSIONS))
def test_each_learning_rate_form_is_converted_where_jax_converts_it(
    dtype: str, native: bool, form: str
) -> None:
    eager, jit = _CONVERSIONS[dtype, native, form]
    assert _lr_reached(dtype, jit=False, native=native, form=form) == eager
    assert _lr_reached(dtype, jit=True, native=native, form=form) == jit
    if dtype == "bfloat16":  # native float16 arithmetic changes nothing of bfloat16's
        for mode in (False, True):
            assert _lr_reached(dtype, jit=mode, native=not native, form=form) == (
                jit if mode else eager
            )


def test_a_learning_rate_form_is_checked() -> None:
    param = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="learning_rate_form must be one of schedule, float, "):
        optax.sgd(param, param, None, learning_rate=0.1, learning_rate_form="constant")
    with pytest.raises(TypeError, match="jit must be a bool, got int 1"):
        optax.sgd(param, param, None, learning_rate=0.1, jit=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("x86", "native", "live"),
    [(True, True, True), (True, False, True), (False, False, True), (False, True, False)],
)
def test_the_variants_without_native_float16_run_live_where_xla_can_be_kept_to_avx2(
    monkeypatch: pytest.MonkeyPatch, x86: bool, native: bool, live: bool
) -> None:
    # on x86-64 the live driver keeps XLA to AVX2 (XLA_FLAGS=--xla_cpu_max_isa=AVX2)
    monkeypatch.setattr(_common, "x86_64", lambda: x86)
    monkeypatch.setattr(_common, "native_float16", lambda: native)
    jit = optax.CONVENTION.variant("jit")
    assert jit.live("float16") is live
    assert jit.live("bfloat16")
    assert jit.live("float32")
    assert optax.CONVENTION.variant("jit-avx512fp16").live("float16") is native
