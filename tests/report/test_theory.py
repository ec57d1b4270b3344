"""nagref.report.theory: quick checks of the theory's pieces, on small sizes.

conformance/theory/test_quadratics.py runs the full rates, edges and bounds.
"""

from __future__ import annotations

import math

import pytest

from nagref.report import theory
from nagref.report.theory import BoundRow, EdgeRow, RateRow


def test_spectral_radius_by_hand() -> None:
    assert theory.spectral_radius("gd", 0.5, 0.0, 3.0) == 0.5  # |1 - 1.5|
    # no momentum: every method is gradient descent
    for method in ("heavy_ball", "nag"):
        assert theory.spectral_radius(method, 0.3, 0.0, 1.0) == pytest.approx(0.7)
    # heavy ball, h = 1, β = 1/4: z² − z/4 + 1/4, complex roots of modulus 1/2
    assert theory.spectral_radius("heavy_ball", 1.0, 0.25, 1.0) == pytest.approx(0.5)
    # NAG, h = 1/2, β = 1/2: z² − 3z/4 + 1/4, complex roots of modulus 1/2
    assert theory.spectral_radius("nag", 0.5, 0.5, 1.0) == pytest.approx(0.5)
    # heavy ball, h = 0.1, β = 0.01: two real roots of z² − (1 + β − h)z + β; the larger
    roots = sorted(abs(r) for r in _roots(1.0 + 0.01 - 0.1, 0.01))
    assert theory.spectral_radius("heavy_ball", 0.1, 0.01, 1.0) == pytest.approx(roots[-1])


def _roots(trace: float, det: float) -> tuple[complex, complex]:
    disc = complex(trace * trace - 4 * det) ** 0.5
    return (trace + disc) / 2, (trace - disc) / 2


def test_the_published_rates() -> None:
    assert theory.theoretical_rate("gd", 9.0) == pytest.approx(0.8)
    assert theory.theoretical_rate("heavy_ball", 9.0) == pytest.approx(0.5)
    assert theory.theoretical_rate("nag", 9.0) == pytest.approx(2 / 3)


def test_rates_for_a_small_condition_number() -> None:
    rows = theory.rates(kappas=(4.0,))
    assert [(r.method, r.kappa) for r in rows] == [("gd", 4.0), ("heavy_ball", 4.0), ("nag", 4.0)]
    assert [r.theory for r in rows] == pytest.approx([0.6, 1 / 3, 0.5])
    for r in rows:
        assert r.matrix == pytest.approx(r.theory, rel=1e-7)
        assert math.log(r.measured) / math.log(r.theory) == pytest.approx(1.0, abs=0.01)


def test_edges_for_another_momentum() -> None:
    rows = theory.edges(momenta=(0.3,), delta=0.05)
    assert [(r.method, r.momentum) for r in rows] == [
        ("gd", 0.0),
        ("heavy_ball", 0.3),
        ("nag", 0.3),
    ]
    assert [r.edge for r in rows] == pytest.approx([2.0, 2.6, 2.6 / 1.6])
    gd = rows[0]
    assert gd.radius_inside == pytest.approx(0.9)  # |1 - 2·0.95|
    assert gd.radius_outside == pytest.approx(1.1)
    for r in rows:
        assert r.radius_inside < 1.0 < r.radius_outside
        assert r.measured_inside == pytest.approx(r.radius_inside, rel=1e-6)
        assert r.measured_outside == pytest.approx(r.radius_outside, rel=1e-6)


def test_bounds_on_a_short_run() -> None:
    rows = theory.bounds(steps=50, n=10)
    assert [r.schedule for r in rows] == ["nesterov", "fista", "k_over_k3"]
    assert all(r.steps == 50 for r in rows)
    assert all(0.0 < r.worst_ratio <= 1.0 for r in rows)
    assert rows[0].bound.startswith("4L")


RATE = RateRow("nag", 100.0, 0.9, 0.9, 0.9)
EDGE = EdgeRow("gd", 0.0, 2.0, 0.98, 1.02, 0.98, 1.02)
BOUND = BoundRow("nesterov", "4L‖x0−x*‖²/(k+2)²", 10, 0.5)


def test_format_theory() -> None:
    text = theory.format_theory([RATE], [EDGE], [BOUND]).split("\n")
    assert text[0] == "linear rates on quadratics (tuned constants, L = 1)"
    assert text[1].split() == ["method", "kappa", "theory", "iteration", "matrix", "measured"]
    assert text[3].split() == ["nag", "100", "0.900000", "0.900000", "0.900000"]
    assert "" in text
    assert any(line.startswith("stability edges") for line in text)
    assert ["gd", "0", "2.000000", "0.980000", "0.980000", "1.020000", "1.020000"] in [
        line.split() for line in text
    ]
    assert text[-1].split()[-1] == "0.5000"
    assert text[-1].startswith("nesterov")


def test_verdict() -> None:
    passed, line = theory.verdict([RATE], [EDGE], [BOUND])
    assert passed
    assert line == (
        "PASS: theory: 1 of 1 linear rates, 1 of 1 stability edges and 1 of 1 O(1/k²) bounds hold"
    )
    slow = RateRow("nag", 100.0, 0.9, 0.9, 0.9**0.98)  # the exponent 2% off
    off = RateRow("nag", 100.0, 0.9, 0.9 * (1 + 1e-6), 0.9)  # the matrix off
    unstable = EdgeRow("gd", 0.0, 2.0, 0.98, 1.02, 1.01, 1.02)
    over = BoundRow("fista", "", 10, 1.01)
    passed, line = theory.verdict([RATE, slow, off], [EDGE, unstable], [BOUND, over])
    assert not passed
    assert line == (
        "FAIL: theory: 1 of 3 linear rates, 1 of 2 stability edges and 1 of 2 O(1/k²) bounds hold"
    )
