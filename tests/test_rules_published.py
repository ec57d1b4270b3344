"""Property: every rule equals the published formula, evaluated element by element.

The reference is :mod:`nagref.report.published` (Ruder 2016's
form, which has the seeds' sign; gradient descent for ``sgd``), evaluated in
binary64 with Python floats, independently of :mod:`nagref.rules`. In
float64 the two must agree bit for bit (up to the sign of zero in complex
arithmetic, and except where XLA contracts under jit). In narrower dtypes the
difference must lie within the rounding-error bound of the operation order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from backends import XP
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes
from oracle import error_bound
from test_rules import RULES, run_rule

from nagref._compare import bitwise_equal, ulp_distance
from nagref.report.published import (
    Arithmetic,
    rounded_gd,
    rounded_ruder,
    rounded_ruder_lookahead,
)

F64 = Arithmetic("float64")
_values = st.floats(-1e3, 1e3, allow_subnormal=False).filter(lambda x: x == 0 or abs(x) > 1e-30)


def published(rule: str, w: float, g: float, v: float, lr: float, mu: float) -> tuple[float, ...]:
    if rule == "sgd":
        return (rounded_gd(F64, w, g, eps=lr),)
    if rule == "lookahead":
        return (rounded_ruder_lookahead(F64, w, v, gamma=mu),)
    return rounded_ruder(F64, w, v, g, eta=lr, gamma=mu)


def published_array(rule: str, w: Any, g: Any, v: Any, lr: float, mu: float) -> list[Any]:
    """The published formula on every element (each part of a complex number)."""
    parts = (np.real, np.imag) if np.iscomplexobj(w) else (np.real,)
    columns: list[list[Any]] = []
    for part in parts:
        flat = [
            published(rule, *map(float, e), lr, mu)
            for e in zip(part(w).ravel(), part(g).ravel(), part(v).ravel(), strict=True)
        ]
        columns.append(
            [
                np.asarray([e[i] for e in flat]).reshape(w.shape)
                for i in range(len(published(rule, 0.0, 0.0, 0.0, lr, mu)))
            ]
        )
    if len(columns) == 1:
        return columns[0]
    return [re + 1j * im for re, im in zip(*columns, strict=True)]


@pytest.mark.parametrize("rule", RULES)
@given(data=st.data())
def test_rule_equals_the_published_formula(xp: XP, rule: str, data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(xp.dtypes), label="dtype")
    shape = data.draw(array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5), label="shape")
    lr = data.draw(st.floats(0, 8), label="lr")
    mu = data.draw(st.floats(0, 1, exclude_max=True), label="momentum")
    size = int(np.prod(shape))
    n_parts = 2 if dtype.startswith("complex") else 1

    def draw_array(label: str) -> Any:
        flat = data.draw(
            st.lists(_values, min_size=size * n_parts, max_size=size * n_parts), label=label
        )
        a = np.asarray(flat, dtype="float64")
        if n_parts == 2:
            a = a[:size] + 1j * a[size:]
        return a.reshape(shape).astype(dtype)

    w, g, v = draw_array("w"), draw_array("g"), draw_array("v")
    got = [
        xp.to_numpy(o) for o in run_rule(xp, rule, *map(xp.asarray, (w, g, v)), lr=lr, momentum=mu)
    ]
    wide = "complex128" if n_parts == 2 else "float64"
    want = published_array(rule, *(a.astype(wide) for a in (w, g, v)), lr, mu)
    # the published formula in float64 rounds lr and μ to float64 only;
    # nagref rounds them to the dtype first, so compare against that:
    lr_d, mu_d = (float(np.asarray(h, dtype=dtype).real) for h in (lr, mu))
    want_d = published_array(rule, *(a.astype(wide) for a in (w, g, v)), lr_d, mu_d)
    for a, b, b_d in zip(got, want, want_d, strict=True):
        assert a.dtype == np.dtype(dtype)
        assert a.shape == shape
        if dtype in ("float64", "complex128") and not xp.contracts:
            same = ulp_distance(a, b.astype(dtype)) == 0 if n_parts == 2 else bitwise_equal(a, b)
            assert same.all(), f"{a[~same]} != {b[~same]}"
        else:
            bound = error_bound(
                rule,
                dtype,
                w=w.astype(wide),
                g=g.astype(wide),
                v=v.astype(wide),
                lr=lr_d,
                momentum=mu_d,
            )
            assert (np.abs(a.astype(wide) - b_d) <= bound).all()
