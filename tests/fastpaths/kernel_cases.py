"""The cases every kernel is proved on against the generic path, bit for bit.

Every canonical rule, and every registered convention's every variant (Nesterov
with everything it can express, plain with dampening, a first step), in every
dtype it models, on inputs of sizes around the C blocks and the split lanes,
holding signed zeros, subnormals, infinities and NaN. A case is a step on
three arrays of any library: the kernels of NumPy, torch and JAX run the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from array_api_compat import array_namespace
from hypothesis import strategies as st

import nagref
from nagref._dtypes import numpy_dtype
from nagref._engine import kernels
from nagref.conventions import REGISTRY, Convention, Hypers, Variant

DTYPES = ("float16", "float32", "float64", "bfloat16")
#: NumPy's dtype of each name (bfloat16 is ml_dtypes')
NUMPY_DTYPE = {name: numpy_dtype(name) for name in DTYPES}
#: hypothesis examples per case for the kernels of other libraries, whose route (views of
#: their arrays) the cases prove; the arithmetic, the NumPy kernel's, runs the profile's
EXAMPLES = 12
#: sizes around the C blocks (64 float64 / 128 float32 elements) and the split lanes
SIZES = (0, 1, 3, 7, 8, 31, 32, 33, 63, 64, 65, 127, 128, 129, 257, 1000)

Step = Callable[[Any, Any, Any, float, float], tuple[Any, ...]]


#: the dtypes a case models, where not all of DTYPES
CASE_DTYPES: dict[str, tuple[str, ...]] = {}


def _cases() -> dict[str, Step]:
    cases: dict[str, Step] = {
        "sgd": lambda p, g, b, lr, mu: (nagref.sgd(p, g, lr=lr),),
        "momentum": lambda p, g, b, lr, mu: nagref.momentum(p, g, b, lr=lr, momentum=mu),
        "nag": lambda p, g, b, lr, mu: nagref.nag(p, g, b, lr=lr, momentum=mu),
        "lookahead": lambda p, g, b, lr, mu: (nagref.lookahead(p, b, momentum=mu),),
    }
    # every registered convention's every variant, Nesterov with everything it
    # can express (weight decay, maximize), plain with dampening, and a first step
    for convention in REGISTRY.values():
        for variant in convention.variants:
            name = f"{convention.name}-{variant.name}"
            can = convention.can(variant)  # what this variant expresses
            full = {"weight_decay": 0.01 if can.weight_decay else None, "maximize": can.maximize}
            damped = {"dampening": 0.3 if can.dampening else 0.0}
            first = None if convention.first_state == "none" else 0.0
            for label, options, start in (
                ("nesterov", {"nesterov": True, **full}, "state"),
                ("dampening", damped, "state"),
                (
                    "first",
                    {"nesterov": not can.dampening, **damped, "maximize": can.maximize},
                    first,
                ),
            ):
                cases[f"{name}-{label}"] = _registered(convention, variant, options, start)
                # where the state has another dtype than the parameters (Optax's
                # float32 trace of 16-bit parameters) no batch has one dtype: no kernel
                CASE_DTYPES[f"{name}-{label}"] = tuple(
                    d for d in variant.dtypes if convention.state_dtype(variant.options, d) == d
                )
    return cases


def _registered(
    convention: Convention, variant: Variant, options: dict[str, Any], start: float | str | None
) -> Step:
    """A step of a registered convention; ``start``: the state given, zeros (0.0) or None."""

    def step(p: Any, g: Any, b: Any, lr: float, mu: float) -> tuple[Any, ...]:
        state = (
            b if start == "state" else (None if start is None else array_namespace(b).zeros_like(b))
        )
        hypers = Hypers(lr=lr, momentum=mu, **options)
        return convention.step(p, g, state, hypers, variant=variant)

    return step


CASES = _cases()

# finite values of every scale, signed zeros, subnormals (in each dtype), inf and NaN
VALUES = st.one_of(
    st.floats(-4.0, 4.0),
    st.sampled_from([0.0, -0.0, 1e-39, -3e-42, 5e-324, 6e-8, -1e-310, 1e30, np.inf, -np.inf]),
    st.just(np.nan),
)


def _same(fast: tuple[Any, ...], slow: tuple[Any, ...]) -> None:
    assert len(fast) == len(slow)
    for x, y in zip(fast, slow, strict=True):
        assert (x is None) == (y is None)
        if x is not None:
            assert x.dtype == y.dtype
            assert x.shape == y.shape
            same = x.view(f"u{x.itemsize}") == y.view(f"u{y.itemsize}")
            assert np.all(same | (np.isnan(x) & np.isnan(y)))


def _arrays(draw: st.DrawFn, dtype: str) -> list[np.ndarray]:
    size = draw(st.sampled_from(SIZES))
    elements = st.lists(VALUES, min_size=size, max_size=size)
    with np.errstate(over="ignore"):
        return [
            np.array(draw(elements), dtype=np.float64).astype(NUMPY_DTYPE[dtype]) for _ in range(3)
        ]


#: (case, dtype): every case in every dtype it models
PAIRS = [
    pytest.param(case, dtype, id=f"{case}-{dtype}")
    for case in CASES
    for dtype in DTYPES
    if dtype in CASE_DTYPES.get(case, DTYPES)
]


def spy_on(monkeypatch: pytest.MonkeyPatch, xp: Any, namespace: str) -> list[bool]:
    """Record, for each leaf the kernel of ``xp`` (registered for the namespace module
    ``namespace``) receives, whether it ran (True) or declined."""
    kernel = kernels.kernel_for(xp)
    assert kernel is not None
    calls: list[bool] = []

    def recording(batch: Any) -> Any:
        results = kernel(batch)
        calls.extend(result is not None for result in results)
        return results

    monkeypatch.setitem(kernels._loaded, namespace, recording)
    return calls


def zero_d_and_empty(xp: Any, to_numpy: Callable[[Any], Any], spy: list[bool]) -> Any:
    """nag on a pytree of a 0-d, a 200-element and an empty array of namespace ``xp``:
    the kernel takes all three, with the generic path's bits; the new trees."""
    from nagref import fastpaths  # noqa: PLC0415 - beside the kernels it turns off

    tree = {"w": xp.asarray(1.5), "b": xp.arange(200.0), "e": xp.ones(0)}
    velocity = {name: xp.full_like(x, -0.25) for name, x in tree.items()}
    fast = nagref.nag(tree, tree, velocity, lr=0.1, momentum=0.9)
    assert spy == [True] * 3
    with fastpaths.disabled():
        slow = nagref.nag(tree, tree, velocity, lr=0.1, momentum=0.9)
    for new, old in zip(fast, slow, strict=True):
        assert new["w"].shape == ()
        _same(tuple(map(to_numpy, new.values())), tuple(map(to_numpy, old.values())))
    return tree, fast
