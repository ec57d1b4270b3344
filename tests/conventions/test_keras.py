"""nagref.conventions.keras: validation, states, purity (its live checks: conformance/)."""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from nagref.conventions import keras


def _arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal(20).astype("float32"), rng.standard_normal(20).astype("float32")


@pytest.mark.parametrize("momentum", [1, -0.1, 1.5])
def test_keras_validates_momentum_like_keras(momentum: object) -> None:
    p, g = _arrays()
    with pytest.raises(ValueError, match=r"^`momentum` must be a float between \[0, 1\]\.$"):
        keras.sgd(p, g, None, learning_rate=0.1, momentum=momentum)  # type: ignore[arg-type]


def test_keras_names_a_bad_backend_and_learning_rate() -> None:
    p, g = _arrays()
    with pytest.raises(ValueError, match=r"backend must be one of .* got 'jaxx'"):
        keras.sgd(p, g, None, learning_rate=0.1, backend="jaxx")
    with pytest.raises(ValueError, match="Received instead: learning_rate=fast"):
        keras.sgd(p, g, None, learning_rate="fast")  # type: ignore[arg-type]


def test_keras_velocity_starts_at_zero_so_the_first_step_is_plain_sgd() -> None:
    p, g = _arrays()
    lr32 = np.float32(0.1)
    for backend in keras.BACKENDS:
        new, velocity = keras.sgd(p, g, None, learning_rate=0.1, momentum=0.9, backend=backend)
        assert velocity is not None
        plain, none = keras.sgd(p, g, None, learning_rate=0.1, backend=backend)
        assert none is None
        assert new.tobytes() == plain.tobytes(), backend
        assert np.array_equal(velocity, -(g * lr32)) or backend == "torch"


def test_a_float64_learning_rate_reaches_float64_variables_unrounded() -> None:
    lr = 0.9000000000000001  # not a float32 number
    var, grad = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    for backend in ("jax", "torch"):
        wide, _ = keras.sgd(var, grad, None, learning_rate=lr, backend=backend,
                            learning_rate_dtype="float64")  # fmt: skip
        narrow, _ = keras.sgd(var, grad, None, learning_rate=lr, backend=backend)
        assert wide.tobytes() == (var - grad * lr).tobytes()
        assert narrow.tobytes() == (var - grad * float(np.float32(lr))).tobytes()
    # float16 on JAX: the Python float rounded once, as jnp converts it on the host
    half = np.array([1.0], np.float16)
    twice_lr = 0.288696291246982  # rounds to float16 differently through float32
    new, _ = keras.sgd(half, half, None, learning_rate=twice_lr, backend="jax",
                       learning_rate_dtype="float64")  # fmt: skip
    assert new[0] == half[0] - half[0] * np.float16(twice_lr)
    with pytest.raises(ValueError, match="learning_rate_dtype must be one of float32, float64"):
        keras.sgd(var, grad, None, learning_rate=lr, learning_rate_dtype="bfloat16")


def test_the_torch_backend_takes_torchs_threads_and_cpu_capability() -> None:
    """The same _foreach_ kernels as torch.optim.SGD: chunks, and no fusing in "default"."""
    n = 65537  # the tensor (issue 14): every p = 0x30c6, every g = 0x3e83
    p = np.full(n, 0x30C6, np.uint16).view(np.float16)
    g = np.full(n, 0x3E83, np.uint16).view(np.float16)
    runs = {
        (threads, capability): keras.sgd(
            p,
            g,
            None,
            learning_rate=0.1,
            backend="torch",
            threads=threads,
            cpu_capability=capability,
        )[0].view(np.uint16)
        for threads in (1, 2)
        for capability in ("avx512", "default")
    }
    assert np.flatnonzero(runs[1, "avx512"] == 0xA2F0).tolist() == [65536]
    assert np.flatnonzero(runs[2, "avx512"] == 0xA2F0).tolist() == [32768]
    assert set(runs[1, "default"].tolist()) == set(runs[2, "default"].tolist()) == {0xA2F0}


def test_float32_torch_backend_fuses_nothing_in_the_default_capability() -> None:
    rng = np.random.default_rng(2)
    p, g = (rng.standard_normal(1000).astype("float32") for _ in range(2))
    lr = np.float32(0.1)
    new, _ = keras.sgd(p, g, None, learning_rate=0.1, backend="torch", cpu_capability="default")
    assert new.tobytes() == (p + g * -lr).tobytes()
    fused, _ = keras.sgd(p, g, None, learning_rate=0.1, backend="torch", cpu_capability="avx2")
    assert fused.tobytes() != new.tobytes()


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "numpy"])
def test_threads_and_cpu_capability_are_the_torch_backends(backend: str) -> None:
    p, g = _arrays()
    for keywords in ({"threads": 1}, {"cpu_capability": "avx2"}):
        with pytest.raises(ValueError, match="threads and cpu_capability are the torch backend's"):
            keras.sgd(p, g, None, learning_rate=0.1, backend=backend, **keywords)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cpu_capability must be one of avx512, avx2, default"):
        keras.sgd(p, g, None, learning_rate=0.1, backend="torch", cpu_capability="neon")
    with pytest.raises(ValueError, match="threads must be a whole number >= 1"):
        keras.sgd(p, g, None, learning_rate=0.1, backend="torch", threads=0)


def test_the_torch_variants_pin_one_thread_and_a_capability() -> None:
    variants = {v.name: v.options for v in keras.CONVENTION.variants}
    torch = {name: options for name, options in variants.items() if options["backend"] == "torch"}
    assert set(torch) == {"torch", "torch-callable-lr", "torch-default"}
    assert {name: options["cpu_capability"] for name, options in torch.items()} == {
        "torch": "avx512",
        "torch-callable-lr": "avx512",
        "torch-default": "default",
    }
    assert all(options["threads"] == 1 for options in torch.values())
    others = [o for o in variants.values() if o["backend"] != "torch"]
    assert not any("threads" in o or "cpu_capability" in o for o in others)


# --- the compiled step (jit=True) ---------------------------------------------------------


def _f32(x: Fraction) -> float:
    """``x`` rounded once to float32 (to nearest, ties to even; x a normal float32 number)."""
    if x == 0:
        return 0.0
    e = abs(x.numerator).bit_length() - abs(x.denominator).bit_length()
    if abs(x) < Fraction(2) ** e:
        e -= 1  # now 2**e <= |x| < 2**(e + 1)
    ulp = Fraction(2) ** (e - 23)
    q = x / ulp
    n = math.floor(q)
    rest = q - n
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and n % 2):
        n += 1
    return float(n * ulp)


def _exact(x: object) -> Fraction:
    return Fraction(float(x))  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_jit_is_refused_where_keras_does_not_compile_with_xla(backend: str) -> None:
    p, g = _arrays()
    match = r"^jit=True models XLA on the jax and tensorflow backends, got backend="
    with pytest.raises(ValueError, match=match):
        keras.sgd(p, g, None, learning_rate=0.1, backend=backend, jit=True)
    if backend == "torch":
        with pytest.raises(ValueError, match=r"torch\.compile, which is not modelled"):
            keras.sgd(p, g, None, learning_rate=0.1, backend=backend, jit=True)


def test_jit_validates_its_arguments() -> None:
    p, g = _arrays()
    with pytest.raises(TypeError, match=r"^jit must be a bool, got "):
        keras.sgd(p, g, None, learning_rate=0.1, backend="jax", jit=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^native_float16 must be a bool or None, got "):
        keras.sgd(p, g, None, learning_rate=0.1, jit=True, native_float16="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"learning_rate_dtype='float32'\), got .*'float64'"):
        keras.sgd(p, g, None, learning_rate=0.1, backend="jax", jit=True,
                  learning_rate_dtype="float64")  # fmt: skip


def _decayed(p: float, lr: float, wd: float, *, one: bool) -> float:
    """XLA's weight decay, exactly: fma(fl(p*wd), -lr, p) (``one`` element), else fma(-p, c, p)."""
    lr32, wd32, x = _exact(np.float32(lr)), _exact(np.float32(wd)), _exact(p)
    if one:
        return _f32(x - _exact(_f32(x * wd32)) * lr32)
    c = _exact(_f32(lr32 * wd32))
    return _f32(x - x * c)


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_jit_folds_the_weight_decay_differently_in_one_element_leaves(backend: str) -> None:
    lr, wd = 0.7, 0.3
    rng = np.random.default_rng(5)
    pool = rng.uniform(0.5, 2.0, 200).astype("float32")
    # parameters where the two foldings give different float32 numbers
    split = [x for x in pool if _decayed(x, lr, wd, one=True) != _decayed(x, lr, wd, one=False)]
    assert len(split) >= 6
    params = {"one": np.array(split[:1], np.float32), "five": np.array(split[1:6], np.float32)}
    zeros = {k: np.zeros_like(v) for k, v in params.items()}  # momentum 0: p = fma(0, -lr, p)
    new, velocity = keras.sgd(params, zeros, None, learning_rate=lr, weight_decay=wd,
                              backend=backend, jit=True)  # fmt: skip
    assert velocity is None
    assert list(new) == ["one", "five"]
    for name, one in (("one", True), ("five", False)):
        expected = [_decayed(x, lr, wd, one=one) for x in params[name]]
        assert new[name].dtype == np.float32
        assert new[name].tolist() == expected, name
        other = [_decayed(x, lr, wd, one=not one) for x in params[name]]
        assert all(a != b for a, b in zip(new[name].tolist(), other, strict=True))
    # the same step in place (out=): each leaf written where it came from
    given = {k: v.copy() for k, v in params.items()}
    keras.sgd(given, zeros, None, learning_rate=lr, weight_decay=wd, backend=backend, jit=True,
              out=(given, None))  # fmt: skip
    assert all(given[k].tobytes() == new[k].tobytes() for k in params)


def test_jit_contracts_the_velocity_and_the_step() -> None:
    lr, mu = 0.1, 0.9
    p, g = (np.array([x], np.float32) for x in (1.0, 0.3))
    v = np.array([0.7], np.float32)
    new, velocity = keras.sgd(p, g, v, learning_rate=lr, momentum=mu, nesterov=True,
                              backend="jax", jit=True)  # fmt: skip
    assert velocity is not None
    lr32, mu32 = _exact(np.float32(lr)), _exact(np.float32(mu))
    b = _exact(_f32(_exact(g[0]) * lr32))
    v_new = _f32(_exact(v[0]) * mu32 - b)
    u = _f32(_exact(v_new) * mu32 - b)
    assert velocity.tolist() == [v_new]
    assert new.tolist() == [float(np.float32(p[0]) + np.float32(u))]


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_jit_bfloat16_is_the_eager_model(backend: str) -> None:
    rng = np.random.default_rng(3)
    tree = [rng.standard_normal(n).astype(ml_dtypes.bfloat16) for n in (1, 7, 300)]
    grad = [rng.standard_normal(x.shape).astype(ml_dtypes.bfloat16) for x in tree]
    keywords = {"learning_rate": 0.037, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}
    eager = keras.sgd(tree, grad, grad, backend=backend, **keywords)  # type: ignore[arg-type]
    jit = keras.sgd(tree, grad, grad, backend=backend, jit=True, **keywords)  # type: ignore[arg-type]
    for a, b in zip(eager, jit, strict=True):
        assert a is not None
        assert b is not None
        assert [x.tobytes() for x in a] == [x.tobytes() for x in b]


def test_jit_differs_from_eager_in_float32() -> None:
    p, g = _arrays()
    keywords = {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.01}
    eager, _ = keras.sgd(p, g, g, backend="jax", **keywords)  # type: ignore[arg-type]
    jit, _ = keras.sgd(p, g, g, backend="jax", jit=True, **keywords)  # type: ignore[arg-type]
    assert eager.tobytes() != jit.tobytes()


def test_the_jit_variants_pin_native_float16() -> None:
    variants = {v.name: v for v in keras.CONVENTION.variants}
    for backend in keras.JIT_BACKENDS:
        plain, native = variants[f"{backend}-jit"], variants[f"{backend}-jit-avx512fp16"]
        assert plain.options == {"backend": backend, "jit": True, "native_float16": False}
        assert native.options == {"backend": backend, "jit": True, "native_float16": True}
        assert native.dtypes == ("float16",)
        assert plain.cost == native.cost == 10


def test_tf_function_folds_the_weight_decay_except_on_0d_variables() -> None:
    """tf.function(optimizer.apply) on TensorFlow: θ − θ·fl(ηλ), except on 0-d variables
    (one-element float32 ones folded too, unlike tf-keras's: measured)."""
    lr, wd = 0.037, 0.061
    theta = np.random.default_rng(2).uniform(-30, 30, 4000).astype(np.float32)
    folded = theta - theta * (np.float32(lr) * np.float32(wd))
    eager = theta - (theta * np.float32(wd)) * np.float32(lr)
    k = int(np.flatnonzero(folded != eager)[0])

    def step(p: object, **kw: object) -> object:
        zero = {n: 0 * a for n, a in p.items()} if isinstance(p, dict) else 0 * p
        return keras.sgd(p, zero, None, learning_rate=lr, weight_decay=wd, **kw)[0]  # type: ignore[arg-type]

    got = step(
        {"s": theta[k].reshape(()), "one": theta[k : k + 1], "many": theta}, tf_function=True
    )
    assert isinstance(got, dict)
    assert got["s"].shape == ()
    assert got["s"] == eager[k]
    assert got["one"][0] == folded[k]
    assert got["many"].tobytes() == folded.tobytes()
    wide = theta[k : k + 1].astype(np.float64)
    assert (
        step(wide, tf_function=True)[0]
        == (wide - wide * (float(np.float32(lr)) * float(np.float32(wd))))[0]
    )  # type: ignore[index]
    # without weight decay: the eager step, no new arithmetic
    g = np.random.default_rng(3).standard_normal(4000).astype(np.float32)
    for momentum in (0.0, 0.9):
        a = keras.sgd(theta, g, None, learning_rate=lr, momentum=momentum, tf_function=True)
        b = keras.sgd(theta, g, None, learning_rate=lr, momentum=momentum)
        assert a[0].tobytes() == b[0].tobytes()


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"backend": "jax", "tf_function": True}, "tensorflow backend"),
        ({"backend": "tensorflow", "jit": True, "tf_function": True}, "uncompiled"),
    ],
)
def test_tf_function_is_the_tensorflow_backends_uncompiled_step(
    keywords: dict[str, object], message: str
) -> None:
    one = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=message):
        keras.sgd(one, one, None, learning_rate=0.1, **keywords)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tf_function must be a bool"):
        keras.sgd(one, one, None, learning_rate=0.1, tf_function=1)  # type: ignore[arg-type]
