"""Hypothesis strategies for live cases (the shapes, steps and values of issue 3)."""

from __future__ import annotations

from hypothesis import strategies as st

from nagref.conventions import REGISTRY
from nagref.live import Spec

# empty, scalar, and lengths that leave SIMD tails (8, 16 and 32 lanes)
LENGTHS = st.sampled_from([0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 37, 63, 64, 65, 100])
SHAPES = st.one_of(
    st.just(()),
    st.tuples(LENGTHS),
    st.tuples(st.integers(1, 4), st.integers(1, 12)),
)
# mostly short runs; a quarter of them up to 200 steps
STEPS = st.one_of(st.integers(1, 4), st.integers(1, 8), st.integers(1, 16), st.integers(1, 200))
UNIT = st.floats(0.0, 1.0, exclude_max=True)


@st.composite
def specs(draw: st.DrawFn, convention: str, variant: str, dtype: str) -> Spec:
    """A case for one convention's variant and dtype."""
    record = REGISTRY[convention]
    can = record.can(record.variant(variant))  # the variant's own, where it has them
    steps = draw(STEPS)
    base = draw(st.floats(1e-4, 0.5))
    if can.changing_lr and draw(st.booleans()):  # lr changes every step
        factors = draw(st.lists(st.floats(0.5, 1.5), min_size=steps, max_size=steps))
        lr = tuple(base * f for f in factors)
    else:
        lr = (base,) * steps
    momentum: float | None = draw(st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99]), UNIT))
    if can.momentum_none and draw(st.booleans()):
        momentum = None
    nesterov = momentum is not None and momentum > 0 and draw(st.booleans())
    dampening, weight_decay, maximize = 0.0, None, False
    if can.dampening and not nesterov:
        dampening = draw(st.one_of(st.just(0.0), UNIT))
    if can.weight_decay:
        weight_decay = draw(st.one_of(st.none(), st.just(0.0), st.floats(0.0, 0.1)))
    if can.maximize:
        maximize = draw(st.booleans())
    return Spec(
        convention=convention,
        variant=variant,
        dtype=dtype,
        shape=draw(SHAPES),
        seed=draw(st.integers(0, 2**31 - 1)),
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        dampening=dampening,
        weight_decay=weight_decay,
        maximize=maximize,
        special=draw(st.sampled_from([0.0, 0.05, 0.3])),  # ±0, subnormals, ±inf, nan
        scale=draw(st.floats(1e-3, 1e2)),
    )
