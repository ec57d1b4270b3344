"""nagref.conventions.pytorch: validation, purity, pytrees, the first step, scalars."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from oracle import exact_fma, round_rational
from oracle import numpy_dtype as oracle_dtype

from nagref import explaining
from nagref._engine import execute, kernels
from nagref.conventions import _aten, pytorch


def _arrays(dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal(37).astype(dtype), rng.standard_normal(37).astype(dtype)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -0.1}, "Invalid learning rate: -0.1"),
        ({"lr": 0.1, "momentum": -0.5}, "Invalid momentum value: -0.5"),
        ({"lr": 0.1, "weight_decay": -1.0}, "Invalid weight_decay value: -1.0"),
        ({"lr": 0.1, "nesterov": True}, "Nesterov momentum requires a momentum and zero dampening"),
        (
            {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True},
            "Nesterov momentum requires a momentum and zero dampening",
        ),
    ],
)
def test_validates_with_torchs_messages(kwargs: dict[str, object], message: str) -> None:
    p, g = _arrays()
    with pytest.raises(ValueError, match=f"^{message}$"):
        pytorch.sgd(p, g, None, **kwargs)  # type: ignore[arg-type]


def test_a_non_number_hyperparameter_is_named() -> None:
    p, g = _arrays()
    with pytest.raises(TypeError, match=r"lr must be a real number, got str '0\.1'"):
        pytorch.sgd(p, g, None, lr="0.1")  # type: ignore[arg-type]


def test_the_first_step_clones_the_gradient_and_nothing_is_mutated() -> None:
    p, g = _arrays()
    g[0] = -0.0
    p_copy, g_copy = p.copy(), g.copy()
    new_p, buf = pytorch.sgd(p, g, None, lr=0.1, momentum=0.9, dampening=0.5)
    assert buf is not None
    assert buf.tobytes() == g.tobytes()  # no dampening, and -0.0 kept
    assert p.tobytes() == p_copy.tobytes()
    assert g.tobytes() == g_copy.tobytes()
    assert new_p is not p


def test_no_buffer_without_momentum_and_pytrees_keep_their_structure() -> None:
    p, g = _arrays()
    tree = {"w": p, "b": [p[:3], p[:0]]}
    grads = {"w": g, "b": [g[:3], g[:0]]}
    new, buf = pytorch.sgd(tree, grads, None, lr=0.1)
    assert buf is None
    assert set(new) == {"w", "b"}
    assert new["b"][1].shape == (0,)


def test_fused_float16_is_refused_with_the_reason() -> None:
    p, g = _arrays("float16")
    with pytest.raises(NotImplementedError, match=r"pytorch/pytorch#191763"):
        pytorch.sgd(p, g, None, lr=0.1, fused=True)


def test_complex_parameters_are_refused() -> None:
    p = np.ones(3, np.complex64)
    with pytest.raises(TypeError, match="param has dtype complex64"):
        pytorch.sgd(p, p, None, lr=0.1)


def test_fused_and_foreach_together_are_refused_like_torch() -> None:
    p, g = _arrays()
    with pytest.raises(RuntimeError, match=r"^`fused` and `foreach` cannot be `True` together\.$"):
        pytorch.sgd(p, g, None, lr=0.1, fused=True, foreach=True)


def test_a_python_scalar_reaches_float16_through_float32() -> None:
    # c10::Half(double) is Half(float(d)): for this lr the two roundings give
    # a different alpha than one rounding would, and a different parameter
    lr, p, g = 0.003417014972781023, -0.10968017578125, -2.15234375
    twice = float(np.float16(np.float32(-lr)))
    assert twice != float(np.float16(-lr))
    expected = exact_fma(g, twice, p, "float16")
    assert expected != exact_fma(g, float(np.float16(-lr)), p, "float16")
    arrays = (np.full(40, p, np.float16), np.full(40, g, np.float16))  # SIMD body and tail
    new, _ = pytorch.sgd(*arrays, None, lr=lr)
    assert np.all(new == np.float16(expected))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_foreach_rounds_the_momentum_to_the_dtype_in_float16_only(dtype: str) -> None:
    p, g = _arrays(dtype)
    b = np.linspace(-2, 2, 37).astype(dtype)
    single = pytorch.sgd(p, g, b, lr=0.1, momentum=0.9, foreach=False)[1]
    foreach = pytorch.sgd(p, g, b, lr=0.1, momentum=0.9, foreach=True)[1]
    assert single is not None
    assert foreach is not None
    if dtype != "float16":
        assert single.tobytes() == foreach.tobytes()
        return

    def buffer(mu: float) -> np.ndarray:  # fl16(g + fl16(b * mu)), each step exact in float64
        product = (b.astype(np.float64) * mu).astype(np.float16)
        return (g.astype(np.float64) + product).astype(np.float16)

    assert single.tobytes() == buffer(float(np.float32(0.9))).tobytes()  # mul_: float32
    assert foreach.tobytes() == buffer(float(np.float16(np.float32(0.9)))).tobytes()
    assert single.tobytes() != foreach.tobytes()


# -- threads and CPU capability (issue 14) ------------------------------------------


def _issue_tensor(n: int = 65537) -> tuple[np.ndarray, np.ndarray]:
    """The issue's float16 tensor: every p = 0x30c6, every g = 0x3e83."""
    return (
        np.full(n, 0x30C6, np.uint16).view(np.float16),
        np.full(n, 0x3E83, np.uint16).view(np.float16),
    )


def _bits16(x: np.ndarray) -> np.ndarray:
    return np.asarray(x).view(np.uint16)


@pytest.mark.parametrize(
    ("threads", "tails"),
    [(1, [65536]), (2, [32768]), (3, list(range(21824, 21846)) + list(range(43670, 43692)))],
)
def test_the_issues_float16_tensor_depends_on_the_threads(threads: int, tails: list[int]) -> None:
    """torch 2.13.0 (measured): 0xa2f4 in each chunk's SIMD body, 0xa2f0 in its scalar tail.

    The chunks: min(threads, ceil(65537 / 32768)) of ceil(65537 / that) elements;
    with 3 threads, 21846, 21846 and 21845 (tails of 22, 22 and 21 elements).
    """
    p, g = _issue_tensor()
    new, _ = pytorch.sgd(p, g, None, lr=0.1, threads=threads, cpu_capability="avx512")
    bits = _bits16(new)
    if threads == 3:
        tails = tails + list(range(65516, 65537))
    assert np.flatnonzero(bits == 0xA2F0).tolist() == tails
    assert set(np.unique(bits).tolist()) == {0xA2F0, 0xA2F4}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("foreach", [False, True])
def test_each_chunk_computes_as_a_tensor_of_its_own(dtype: str, foreach: bool) -> None:
    """With threads, the update of each chunk is the one-thread update of that chunk alone."""
    rng = np.random.default_rng(4)
    n = 100_001  # 3 threads: chunks of 33334, 33334 and 33333 elements
    p, g, b = (rng.standard_normal(n).astype(oracle_dtype(dtype)) for _ in range(3))
    keywords = {"lr": 0.0123457, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}
    new_p, new_b = pytorch.sgd(
        p, g, b, **keywords, foreach=foreach, threads=3, cpu_capability="avx512"
    )
    assert new_b is not None
    whole_p, _ = pytorch.sgd(p, g, b, **keywords, foreach=foreach, threads=1, cpu_capability="avx2")
    assert new_p.tobytes() != whole_p.tobytes()  # the tails moved
    for start, stop in [(0, 33334), (33334, 66668), (66668, n)]:
        part_p, part_b = pytorch.sgd(
            p[start:stop], g[start:stop], b[start:stop], **keywords, foreach=foreach, threads=1
        )
        assert part_b is not None
        assert new_p[start:stop].tobytes() == part_p.tobytes()
        assert new_b[start:stop].tobytes() == part_b.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fused", [False, True])
def test_threads_change_nothing_in_float32_and_float64(dtype: str, fused: bool) -> None:
    rng = np.random.default_rng(5)
    p, g, b = (rng.standard_normal(65543).astype(dtype) for _ in range(3))
    runs = {
        threads: pytorch.sgd(p, g, b, lr=0.1, momentum=0.9, fused=fused, threads=threads)[0]
        for threads in (1, 2, 3)
    }
    assert runs[1].tobytes() == runs[2].tobytes() == runs[3].tobytes()


def test_a_chunked_tensor_runs_on_the_interpreter_with_the_same_bits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kernel computes one body and one tail per leaf: the executor does not give it
    a batch whose leaves are cut into chunks (the C kernel would need a chunk loop)."""
    p, g = _issue_tensor()
    small = (p[:100], g[:100])
    real = kernels.kernel_for(np)
    seen: list[int] = []

    def spy(batch: Any) -> Any:
        seen.append(len(batch.columns[0]))
        return real(batch) if real is not None else [None] * len(batch.columns[0])

    monkeypatch.setattr(execute, "kernel_for", lambda xp: spy)
    chunked, _ = pytorch.sgd(p, g, None, lr=0.1, threads=2, cpu_capability="avx512")
    assert seen == []
    one_chunk, _ = pytorch.sgd(p, g, None, lr=0.1, threads=1, cpu_capability="avx512")
    pytorch.sgd(*small, None, lr=0.1, threads=2, cpu_capability="avx512")  # under the grain
    assert seen == [1, 1]
    with kernels.disabled():
        assert pytorch.sgd(p, g, None, lr=0.1, threads=2)[0].tobytes() == chunked.tobytes()
        assert pytorch.sgd(p, g, None, lr=0.1, threads=1)[0].tobytes() == one_chunk.tobytes()
    assert chunked.tobytes() != one_chunk.tobytes()


def test_threads_default_to_torchs(monkeypatch: pytest.MonkeyPatch) -> None:
    p, g = _issue_tensor()
    monkeypatch.setattr(_aten, "default_threads", lambda: 2)
    new, _ = pytorch.sgd(p, g, None, lr=0.1, cpu_capability="avx512")
    assert np.flatnonzero(_bits16(new) == 0xA2F0).tolist() == [32768]


@pytest.mark.parametrize(
    ("threads", "error", "message"),
    [
        (True, TypeError, "threads must be a whole number, got bool True"),
        ("2", TypeError, "threads must be a whole number, got str '2'"),
        (0, ValueError, "threads must be a whole number >= 1, got 0"),
        (1.5, ValueError, r"threads must be a whole number >= 1, got 1\.5"),
        (float("inf"), ValueError, "threads must be a whole number >= 1, got inf"),
        (float("nan"), ValueError, "threads must be a whole number >= 1, got nan"),
    ],
)
def test_threads_are_validated(threads: object, error: type[Exception], message: str) -> None:
    p, g = _arrays()
    with pytest.raises(error, match=f"^{message}$"):
        pytorch.sgd(p, g, None, lr=0.1, threads=threads)  # type: ignore[arg-type]


def test_a_whole_float_is_a_thread_count_as_a_vector_carries_it() -> None:
    p, g = _issue_tensor()
    two = pytorch.sgd(p, g, None, lr=0.1, threads=2.0, cpu_capability="avx512")[0]  # type: ignore[arg-type]
    assert (
        two.tobytes()
        == pytorch.sgd(p, g, None, lr=0.1, threads=2, cpu_capability="avx512")[0].tobytes()
    )


@pytest.mark.parametrize("capability", ["AVX2", "avx", "sve256", 2])
def test_the_cpu_capability_is_one_of_atens_names(capability: object) -> None:
    p, g = _arrays()
    with pytest.raises(ValueError, match=r"^cpu_capability must be one of avx512, avx2, default "):
        pytorch.sgd(p, g, None, lr=0.1, cpu_capability=capability)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dtype", "path"),
    [
        (dtype, path)
        for dtype in ("float16", "float32", "float64", "bfloat16")
        for path in ({"foreach": False}, {"foreach": True}, {"fused": True})
        if not (path.get("fused") and dtype in ("float16", "bfloat16"))  # refused
    ],
)
def test_avx2_gives_avx512s_bits(dtype: str, path: dict[str, bool]) -> None:
    rng = np.random.default_rng(6)
    p, g, b = (rng.standard_normal(101).astype(oracle_dtype(dtype)) for _ in range(3))
    keywords = {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01, **path}
    avx512 = pytorch.sgd(p, g, b, **keywords, cpu_capability="avx512")
    avx2 = pytorch.sgd(p, g, b, **keywords, cpu_capability="avx2")
    assert avx512[0].tobytes() == avx2[0].tobytes()
    assert avx512[1] is not None
    assert avx2[1] is not None
    assert avx512[1].tobytes() == avx2[1].tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fused", [False, True])
def test_default_capability_rounds_product_and_sum_separately(dtype: str, fused: bool) -> None:
    """ATen's scalar kernels: p + fl(g·(−lr)), two roundings, in every element."""
    rng = np.random.default_rng(7)
    p, g = (rng.standard_normal(64).astype(dtype) for _ in range(2))
    neg_lr = np.asarray(-0.1, dtype)
    scalar, _ = pytorch.sgd(p, g, None, lr=0.1, fused=fused, cpu_capability="default")
    assert scalar.tobytes() == (p + g * neg_lr).tobytes()  # NumPy rounds each operation
    simd, _ = pytorch.sgd(p, g, None, lr=0.1, fused=fused, cpu_capability="avx512")
    fused_values = [
        exact_fma(float(x), float(neg_lr), float(y), dtype) for x, y in zip(g, p, strict=True)
    ]
    assert simd.tobytes() == np.array(fused_values, dtype).tobytes()
    assert simd.tobytes() != scalar.tobytes()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_default_capability_fused_is_the_unfused_update(dtype: str) -> None:
    """Nothing fuses in the scalar kernels, so the fused kernel's two recipes coincide."""
    rng = np.random.default_rng(8)
    p, g, b = (rng.standard_normal(77).astype(dtype) for _ in range(3))
    for keywords in ({"nesterov": True, "weight_decay": 0.3}, {"dampening": 0.37}):
        args = {"lr": 0.0123457, "momentum": 0.987654, **keywords}
        fused = pytorch.sgd(p, g, b, **args, fused=True, cpu_capability="default")
        single = pytorch.sgd(p, g, b, **args, cpu_capability="default")
        assert fused[0].tobytes() == single[0].tobytes()
        assert fused[1] is not None
        assert single[1] is not None
        assert fused[1].tobytes() == single[1].tobytes()


def test_default_capability_rounds_float16_products_in_every_element() -> None:
    """No SIMD body: every element rounds as the scalar tail does, chunks or not."""
    p, g = _issue_tensor()
    for threads in (1, 2):
        new, _ = pytorch.sgd(p, g, None, lr=0.1, threads=threads, cpu_capability="default")
        assert set(_bits16(new).tolist()) == {0xA2F0}


def test_fused_16_bit_stays_refused_under_every_capability() -> None:
    p, g = _arrays("float16")
    for capability in pytorch.CPU_CAPABILITIES:
        with pytest.raises(NotImplementedError, match=r"pytorch/pytorch#191763"):
            pytorch.sgd(p, g, None, lr=0.1, fused=True, cpu_capability=capability)


def test_off_x86_the_capability_is_avx512s_and_no_variant_runs_live(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_aten, "x86_64", lambda: False)
    assert pytorch.default_cpu_capability() == "avx512"
    assert not any(v.live("float32") for v in pytorch.CONVENTION.variants)


def test_every_variant_pins_one_thread_and_a_capability() -> None:
    """Every eager variant; the compiled ones (no SIMD tail, no capability) are
    tests/conventions/test_inductor.py's."""
    variants = {v.name: v for v in pytorch.CONVENTION.variants if not v.options.get("compiled")}
    assert list(variants) == [
        f"{path}{suffix}"
        for suffix in ("", "-avx2", "-default")
        for path in ("single-tensor", "foreach", "fused")
    ] + ["fused-2.14", "fused-2.14-avx2", "fused-2.14-default"]
    for name, variant in variants.items():
        capability = name.rpartition("-")[2] if name.endswith(("avx2", "default")) else "avx512"
        assert variant.options["threads"] == 1
        assert variant.options["cpu_capability"] == capability
        assert variant.options["fused"] == name.startswith("fused")
        assert variant.options["foreach"] == name.startswith("foreach")
        if name.startswith("fused-2.14"):
            continue  # see test_the_2_14_variants_are_the_fused_16_bit_kernel
        fused_dtypes = ("float32", "float64")
        assert (variant.dtypes == fused_dtypes) == name.startswith("fused")
        assert "version" not in variant.options  # recordings store the options
    # one worker: its driver hands a case of other kernels to a helper of its own
    assert not pytorch.CONVENTION.process_per_variant


@pytest.mark.parametrize(
    ("flags", "live"),
    [
        ({"avx512vl", "avx512bw", "avx512dq", "avx2", "fma"}, {"avx512", "avx2", "default"}),
        ({"avx2", "fma"}, {"avx2", "default"}),
        (set(), {"default"}),
    ],
)
def test_a_variant_runs_live_where_the_cpu_runs_its_kernels(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], live: set[str]
) -> None:
    monkeypatch.setattr(_aten, "x86_64", lambda: True)
    monkeypatch.setattr(_aten, "cpu_flags", lambda: frozenset(flags))
    running = {
        str(v.options["cpu_capability"])
        for v in pytorch.CONVENTION.variants
        if v.live("float16") and "cpu_capability" in v.options
    }
    assert running == live


def test_explain_lists_the_default_capability_as_one_segment_and_chunks_in_words() -> None:
    text = explaining.explain("pytorch.sgd", dtype="float16", variant="foreach-default").text()
    assert "every element" in text
    assert "scalar tail" not in text
    one = np.ones(1, np.float16)

    def two_threads(*_: object, **__: object) -> object:
        return pytorch.sgd(one, one, None, lr=0.1, threads=2, cpu_capability="avx512")

    listing = explaining._listing(two_threads, [], {}, "float16", "every step", state=None)
    body, tail = (segment.elements for segment in listing.segments)
    assert body.startswith("elements [0, m - m mod 32) of each chunk of m elements")
    assert "2 threads cut a leaf of n > 32768 elements into c = min(2, ⌈n / 32768⌉)" in body
    assert tail == "the last m mod 32 elements of each chunk (its scalar tail)"


# -- torch 2.14: the fused kernel in float16 and bfloat16 ------------------------------

_HALF = ("float16", "bfloat16")


@pytest.mark.parametrize(
    ("version", "shown"), [("2.12", "str '2.12'"), ("2.14.1", "str '2.14.1'"), (2.14, "float 2.14")]
)
def test_the_version_is_a_modelled_torch_release(version: object, shown: str) -> None:
    p, g = _arrays()
    message = (
        r"^version must be one of 2\.13, 2\.14 \(the torch release whose CPU kernels are "
        rf"modelled\), got {shown.replace('.', '[.]')}$"
    )
    with pytest.raises(ValueError, match=message):
        pytorch.sgd(p, g, None, lr=0.1, version=version)  # type: ignore[arg-type]
    assert pytorch.VERSIONS == ("2.13", "2.14")


@pytest.mark.parametrize("dtype", _HALF)
@pytest.mark.parametrize("version", [None, "2.13"])
def test_2_13_refuses_fused_16_bit_and_names_the_fix(dtype: str, version: str | None) -> None:
    p, g = _arrays()
    p, g = p.astype(oracle_dtype(dtype)), g.astype(oracle_dtype(dtype))
    keywords = {} if version is None else {"version": version}
    message = (
        rf"^fused=True with {dtype} is not modelled for torch 2\.13: .*pytorch/pytorch#191763\); "
        r"torch 2\.14 fixed it, and version='2\.14' models that$"
    )
    with pytest.raises(NotImplementedError, match=message):
        pytorch.sgd(p, g, None, lr=0.1, fused=True, **keywords)  # type: ignore[arg-type]


def _f32(x: Fraction | float) -> float:
    """``x`` rounded once to float32."""
    return round_rational(Fraction(x), "float32")


def _fused16_element(
    p: float,
    g: float,
    b: float | None,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
    tail: bool = False,
    fuse: bool = True,
) -> tuple[float, float | None]:
    """torch 2.14.1's fused kernel on one element, by hand: everything in float32.

    Every product, sum and fused multiply-add is computed exactly and rounded
    once to float32 (``fuse=False``: the product and the sum separately, as
    the ``default`` kernels do); the constants are double -> float32 once. The
    buffer of the SIMD body is fma(g, 1-tau, fl(b*mu)), the epilogue's
    (``tail``) fma(b, mu, fl((1-tau)*g)). Returns (p, b) in float32, before
    the stores round them to the 16-bit format.
    """

    def muladd(x: float, y: float, z: float) -> float:
        if fuse:
            return exact_fma(x, y, z, "float32")
        return _f32(Fraction(_f32(Fraction(x) * Fraction(y))) + Fraction(z))

    neg_lr, mu, keep, wd = (_f32(v) for v in (-lr, momentum, 1.0 - dampening, weight_decay))
    if maximize:
        g = -g
    if weight_decay:
        g = muladd(p, wd, g)
    buffer: float | None = None
    if momentum:
        if b is None:
            buffer = g
        elif tail:
            buffer = muladd(b, mu, _f32(Fraction(g) * Fraction(keep)))
        else:
            buffer = muladd(g, keep, _f32(Fraction(b) * Fraction(mu)))
    direction = g if buffer is None else buffer
    if nesterov:
        assert buffer is not None
        direction = muladd(buffer, mu, g)
    return muladd(direction, neg_lr, p), buffer


def _stored(values: list[float], dtype: str) -> np.ndarray:
    """float32 values as the kernel stores them: rounded once to ``dtype``."""
    return np.array(values, np.float32).astype(oracle_dtype(dtype))


_FUSED16_CONFIGS = [
    {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.0123, "maximize": True},
    {"momentum": 0.987654, "nesterov": True, "weight_decay": 0.3},
    {"momentum": 0.5},
    {},
]


@pytest.mark.parametrize("capability", ["avx512", "avx2", "default"])
@pytest.mark.parametrize("first", [False, True])
@pytest.mark.parametrize("config", range(len(_FUSED16_CONFIGS)))
@pytest.mark.parametrize("dtype", _HALF)
def test_2_14_fused_16_bit_is_float32_arithmetic_with_a_scalar_epilogue(
    dtype: str, config: int, first: bool, capability: str
) -> None:
    """n = 19: the SIMD body (16 elements) and the scalar epilogue (the last 3), by hand."""
    keywords: dict[str, Any] = {"lr": 0.0123457, **_FUSED16_CONFIGS[config]}
    rng = np.random.default_rng(9 + config)
    p, g, b = (rng.standard_normal(19).astype(oracle_dtype(dtype)) for _ in range(3))
    buffer = None if first else b
    new_p, new_b = pytorch.sgd(
        p, g, buffer, **keywords, fused=True, cpu_capability=capability, version="2.14"
    )
    expected = [
        _fused16_element(
            float(p[i]),
            float(g[i]),
            None if buffer is None else float(buffer[i]),
            **keywords,
            tail=i >= 16,
            fuse=capability != "default",
        )
        for i in range(19)
    ]
    assert new_p.dtype == p.dtype
    assert new_p.tobytes() == _stored([e[0] for e in expected], dtype).tobytes()
    if not keywords.get("momentum"):
        assert new_b is None
        return
    assert new_b is not None
    assert new_b.tobytes() == _stored([e[1] for e in expected], dtype).tobytes()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("dtype", "bits", "body", "tail"),
    [  # (p, g, b) bits; the buffer's bits in the body and in the epilogue
        ("float16", (0x3D2E, 0xBA09, 0x3EC2), 0x3ABC, 0x3ABB),
        ("bfloat16", (0xBE10, 0x3EAF, 0xBF43), 0xBEC2, 0xBEC1),
    ],
)
def test_2_14_fused_16_bit_epilogue_is_the_last_n_mod_16_elements(
    dtype: str, bits: tuple[int, int, int], body: int, tail: int
) -> None:
    """The split matters: fma(g, 1-tau, fl(b*mu)) and fma(b, mu, fl((1-tau)*g)) differ here."""
    keywords = {"lr": 0.0123, "momentum": 0.9, "dampening": 0.1}
    p, g, b = (float(np.array([x], np.uint16).view(oracle_dtype(dtype))[0]) for x in bits)
    forms = [_fused16_element(p, g, b, **keywords, tail=tail) for tail in (False, True)]
    assert [int(_stored([f[1]], dtype).view(np.uint16)[0]) for f in forms] == [body, tail]  # type: ignore[list-item]
    for n in (19, 32, 35, 47):
        arrays = [np.full(n, x, oracle_dtype(dtype)) for x in (p, g, b)]
        for capability in ("avx512", "avx2"):
            _, new_b = pytorch.sgd(
                *arrays, **keywords, fused=True, cpu_capability=capability, version="2.14"
            )
            assert new_b is not None
            expected = [body] * (n - n % 16) + [tail] * (n % 16)
            assert new_b.view(np.uint16).tolist() == expected
        _, scalar = pytorch.sgd(
            *arrays, **keywords, fused=True, cpu_capability="default", version="2.14"
        )
        assert scalar is not None  # no split: every element alike
        assert len(set(scalar.view(np.uint16).tolist())) == 1


@pytest.mark.parametrize(
    ("dtype", "path"),
    [
        (dtype, path)
        for dtype in ("float16", "float32", "float64", "bfloat16")
        for path in ({"foreach": False}, {"foreach": True}, {"fused": True})
        if not (path.get("fused") and dtype in _HALF)  # 2.13 refuses these
    ],
    ids=str,
)
@pytest.mark.parametrize("capability", ["avx512", "avx2", "default"])
def test_2_14_gives_2_13s_bits_wherever_2_13_is_modelled(
    dtype: str, path: dict[str, bool], capability: str
) -> None:
    rng = np.random.default_rng(10)
    p, g, b = (rng.standard_normal(101).astype(oracle_dtype(dtype)) for _ in range(3))
    for config in _FUSED16_CONFIGS:
        for buffer in (None, b):
            keywords: dict[str, Any] = {
                "lr": 0.0123457,
                **config,
                **path,
                "cpu_capability": capability,
            }
            old = pytorch.sgd(p, g, buffer, **keywords, version="2.13")
            new = pytorch.sgd(p, g, buffer, **keywords, version="2.14")
            assert old[0].tobytes() == new[0].tobytes()
            assert (old[1] is None) == (new[1] is None)
            if old[1] is not None and new[1] is not None:
                assert old[1].tobytes() == new[1].tobytes()


def test_2_14_fused_16_bit_threads_cut_no_extra_tails() -> None:
    """Whole 64-byte units per thread: only the tensor's last n mod 16 elements are its tail."""
    rng = np.random.default_rng(11)
    n = 65_543
    p, g, b = (rng.standard_normal(n).astype(np.float16) for _ in range(3))
    keywords: dict[str, Any] = {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "fused": True}
    runs = [
        pytorch.sgd(p, g, b, **keywords, threads=t, cpu_capability="avx512", version="2.14")
        for t in (1, 2, 3)
    ]
    for new_p, new_b in runs[1:]:
        assert new_p.tobytes() == runs[0][0].tobytes()
        assert new_b is not None
        assert runs[0][1] is not None
        assert new_b.tobytes() == runs[0][1].tobytes()


def test_2_14_fused_16_bit_has_no_overflow_check() -> None:
    """No checked_convert: an lr beyond float16's range is a float32 constant, and p goes to inf."""
    p, g = np.ones(19, np.float16), np.ones(19, np.float16)
    with pytest.raises(ValueError, match="out of range for float16"):
        pytorch.sgd(p, g, None, lr=1e5)  # add_'s alpha is checked
    new, _ = pytorch.sgd(p, g, None, lr=1e5, fused=True, version="2.14")
    assert new.tolist() == [-np.inf] * 19  # fl16(1 - 1e5)


def test_the_2_14_variants_are_the_fused_16_bit_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    variants = {v.name: v for v in pytorch.CONVENTION.variants if "2.14" in v.name}
    assert list(variants) == ["fused-2.14", "fused-2.14-avx2", "fused-2.14-default"]
    for name, variant in variants.items():
        capability = name.removeprefix("fused-2.14").removeprefix("-") or "avx512"
        assert dict(variant.options) == {
            "foreach": False,
            "fused": True,
            "threads": 1,
            "cpu_capability": capability,
            "version": "2.14",
        }
        assert variant.dtypes == _HALF
    monkeypatch.setattr(_aten, "x86_64", lambda: True)
    monkeypatch.setattr(_aten, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    for installed, live in [
        ("2.14.1", {"fused-2.14-avx2", "fused-2.14-default"}),
        ("2.14.0+cpu", {"fused-2.14-avx2", "fused-2.14-default"}),
        ("2.13.0", set()),
        ("2.15.0", set()),
        (None, set()),
    ]:
        monkeypatch.setattr(_aten, "installed_torch", lambda installed=installed: installed)
        assert {n for n, v in variants.items() if v.live("float16")} == live, installed
        assert pytorch.CONVENTION.variant("fused-avx2").live("float32")  # 2.13's: any torch


def test_release_and_the_installed_torch() -> None:
    assert pytorch.release("2.14.1+cu130") == "2.14"
    assert pytorch.release("2.13.0") == "2.13"
    installed = pytorch.installed_torch()
    assert installed is None or pytorch.release(installed) in ("2.13", "2.14")
