"""nagref.conventions.keras: validation, states, purity (its live checks: conformance/)."""

from __future__ import annotations

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
