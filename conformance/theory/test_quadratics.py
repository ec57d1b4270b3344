"""nagref's rules against the theory on quadratics: rates, stability edges, O(1/k²)."""

from __future__ import annotations

import math

import pytest

from nagref.report import theory


@pytest.fixture(scope="module")
def rates() -> list[theory.RateRow]:
    return theory.rates()


def test_the_iteration_matrices_give_the_published_rates(rates: list[theory.RateRow]) -> None:
    assert {(r.method, r.kappa) for r in rates} == {
        (m, k) for m in ("gd", "heavy_ball", "nag") for k in (10.0, 100.0, 1000.0)
    }
    for r in rates:
        # a double root (at the optimum) costs eigvals about √ε of accuracy
        assert r.matrix == pytest.approx(r.theory, rel=1e-7), r


def test_nagrefs_iterates_converge_at_the_published_rates(rates: list[theory.RateRow]) -> None:
    for r in rates:
        # the convergence exponents −log(rate) agree to 1% (a double root at
        # the optimum adds a k·ρ^k factor, which the finite window sees)
        assert math.log(r.measured) / math.log(r.theory) == pytest.approx(1.0, abs=0.01), r


def test_the_stability_edges() -> None:
    rows = theory.edges()
    assert [(r.method, r.momentum) for r in rows] == [
        ("gd", 0.0),
        ("heavy_ball", 0.5),
        ("nag", 0.5),
        ("heavy_ball", 0.9),
        ("nag", 0.9),
    ]
    for r in rows:
        assert theory.spectral_radius(r.method, r.edge, r.momentum, 1.0) == pytest.approx(1.0)  # type: ignore[arg-type]
        assert r.radius_inside < 1.0 < r.radius_outside, r
        assert r.measured_inside < 1.0 < r.measured_outside, r
        assert r.measured_inside == pytest.approx(r.radius_inside, abs=1e-3), r
        assert r.measured_outside == pytest.approx(r.radius_outside, abs=1e-3), r
    nag = {r.momentum: r.edge for r in rows if r.method == "nag"}
    assert nag[0.9] == pytest.approx((2 + 1.8) / (1 + 1.8))  # tends to 4/3 as β → 1


def test_the_accelerated_schedules_stay_under_their_o_1_over_k2_bounds() -> None:
    rows = theory.bounds()
    assert [r.schedule for r in rows] == ["nesterov", "fista", "k_over_k3"]
    for r in rows:
        assert r.steps == 2000
        assert 0.0 < r.worst_ratio <= 1.0, r
