"""The array-API fused multiply-add against exact rational arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from backends import XP, Backend, load, numpy_dtype
from hypothesis import given
from hypothesis import strategies as st
from oracle import exact_fma, finfo

from nagref._engine.fma import fma

#: Backends that evaluate one IEEE operation at a time with gradual underflow,
#: which the error-free transformations need (docs/conventions.md): JAX on CPU
#: flushes subnormals and jax.jit contracts a·b + c, so they are tested apart.
IEEE = [Backend.NUMPY, Backend.ARRAY_API_STRICT, Backend.TORCH, Backend.DASK]
DTYPES = ["float16", "float32", "float64", "bfloat16"]


@pytest.fixture(params=IEEE, ids=[b.value for b in IEEE])
def ieee(request: pytest.FixtureRequest) -> XP:
    return load(request.param)


def _check(xp: XP, dtype: str, a: list[float], b: list[float], c: list[float]) -> None:
    if dtype not in xp.dtypes:
        pytest.skip(f"{xp} has no {dtype}")
    with np.errstate(all="ignore"):
        na, nb, nc = (np.asarray(v, dtype=np.float64).astype(numpy_dtype(dtype)) for v in (a, b, c))
        got = xp.to_numpy(fma(*(xp.asarray(v, dtype) for v in (na, nb, nc))))
    want = np.array(
        [
            exact_fma(float(x), float(y), float(z), dtype)
            for x, y, z in zip(na, nb, nc, strict=True)
        ],
        dtype=numpy_dtype(dtype),
    )
    bits = {2: np.uint16, 4: np.uint32, 8: np.uint64}[want.itemsize]
    same = (got.view(bits) == want.view(bits)) | (np.isnan(got) & np.isnan(want))
    bad = np.flatnonzero(~same)
    assert not bad.size, [(na[i], nb[i], nc[i], got[i], want[i]) for i in bad[:5]]


def _edge_values(dtype: str) -> list[float]:
    info = finfo(dtype)
    tiny, sub, big = float(info.smallest_normal), float(info.smallest_subnormal), float(info.max)
    one_ulp = float(info.eps)
    return [
        0.0,
        -0.0,
        sub,
        -sub,
        3 * sub,
        tiny,
        -tiny,
        tiny * (1 - one_ulp),
        big,
        -big,
        1.0,
        1.0 + one_ulp,
        1.0 - one_ulp / 2,
        0.1,
        -0.3,
        math.inf,
        -math.inf,
        math.nan,
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_combination_of_edge_values(ieee: XP, dtype: str) -> None:
    values = _edge_values(dtype)
    triples = [(x, y, z) for x in values for y in values for z in values]
    a, b, c = (list(t) for t in zip(*triples, strict=True))
    _check(ieee, dtype, a, b, c)


def _floats(dtype: str) -> st.SearchStrategy[float]:
    """Any value of ``dtype``, drawn as a bit pattern (all exponents equally likely)."""
    width = numpy_dtype(dtype).itemsize * 8
    bits = {16: np.uint16, 32: np.uint32, 64: np.uint64}[width]
    return st.integers(0, 2**width - 1).map(
        lambda k: float(np.asarray(k, dtype=bits).view(numpy_dtype(dtype)))
    )


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_random_and_cancelling_operands(ieee: XP, dtype: str, data: st.DataObject) -> None:
    n = 64
    a = data.draw(st.lists(_floats(dtype), min_size=n, max_size=n))
    b = data.draw(st.lists(_floats(dtype), min_size=n, max_size=n))
    # half of the addends nearly cancel the product: the hard cases
    noise = data.draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    with np.errstate(all="ignore"):
        product = np.asarray(a, numpy_dtype(dtype)) * np.asarray(b, numpy_dtype(dtype))
        near = [
            float(np.nextafter(-p, np.inf * k)) if k else float(-p)
            for p, k in zip(product, noise, strict=True)
        ]
    free = data.draw(st.lists(_floats(dtype), min_size=n, max_size=n))
    c = [near[i] if i % 2 else free[i] for i in range(n)]
    _check(ieee, dtype, a, b, c)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiny_products_and_ties(ieee: XP, dtype: str) -> None:
    info = finfo(dtype)
    rng = np.random.default_rng(0)
    n = 2000
    low = info.minexp - info.nmant
    with np.errstate(all="ignore"):
        a = np.ldexp(rng.random(n) + 0.5, rng.integers(low, info.minexp // 2, n))
        b = np.ldexp(rng.random(n) + 0.5, rng.integers(-30, 10, n)) * rng.choice([-1, 1], n)
        a, b = a.astype(numpy_dtype(dtype)), b.astype(numpy_dtype(dtype))
        c = -(a.astype(np.float64) * b.astype(np.float64)).astype(numpy_dtype(dtype))
        away = np.nextafter(c, rng.choice([-np.inf, np.inf], n).astype(c.dtype))
        c = np.where(rng.random(n) < 0.5, away, c)
    _check(
        ieee,
        dtype,
        a.astype(np.float64).tolist(),
        b.astype(np.float64).tolist(),
        c.astype(np.float64).tolist(),
    )


def test_jax_eager_is_exact_away_from_subnormals() -> None:
    jax = load(Backend.JAX)
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(500), rng.standard_normal(500)
    c = -(a * b) * (1 + rng.choice([0, 1e-16, -1e-16, 1e-8], 500))
    for dtype in DTYPES:
        _check(jax, dtype, a.tolist(), b.tolist(), c.tolist())


def test_an_element_gets_the_same_bits_whichever_branches_its_neighbours_need(ieee: XP) -> None:
    # float64 skips its tiny and huge branches when no element takes them (on
    # eager arrays); each element alone must equal it among tiny and huge ones
    rng = np.random.default_rng(2)
    ordinary = rng.standard_normal((3, 64))
    ordinary[2] = -ordinary[0] * ordinary[1] * (1 + 2.0**-40)  # cancelling
    edges = np.array([[2.0**-600, 2.0**600], [2.0**-500, 2.0**500], [2.0**-1074, 2.0**1000]])
    together = [ieee.asarray(np.concatenate([x, e])) for x, e in zip(ordinary, edges, strict=True)]
    alone = [ieee.asarray(x) for x in ordinary]
    with np.errstate(all="ignore"):
        mixed = ieee.to_numpy(fma(*together))[:64]
        plain = ieee.to_numpy(fma(*alone))
    assert mixed.tobytes() == plain.tobytes()
