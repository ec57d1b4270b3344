"""The first steps' fit, a recipe's roots and the shortest decimals (nagref.auditing.estimate)."""

from __future__ import annotations

import numpy as np
import pytest

from nagref.auditing import Trajectory, TrajectoryError
from nagref.auditing.estimate import Fit, decimals, root


def test_decimals_are_listed_shortest_first_and_nearest_first() -> None:
    found = decimals(0.0122, 0.0124, 0.0123)
    assert found[0] == (3, 0.0123)  # 0.01 and 0.012 lie outside
    assert (4, 0.01231) in found or (4, 0.01229) in found
    assert [d for d, _ in found] == sorted(d for d, _ in found)
    assert decimals(0.0, 0.01, 0.001)[0] == (0, 0.0)  # 0 where the interval holds it
    assert decimals(0.94999, 0.95001, 0.95)[:1] == [(2, 0.95)]
    assert all(0.94999 <= v <= 0.95001 for _, v in decimals(0.94999, 0.95001, 0.95))


def test_a_recipes_root_lies_in_the_unit_interval() -> None:
    assert root(np.array([1.0, -0.5]), None) == 0.5  # m - 0.5
    r = 0.9**2 / 1.9  # Nesterov's C / A = m² / (1 + m) at m = 0.9
    assert root(np.array([1.0, -r, -r]), None) == pytest.approx(0.9)
    assert root(np.array([1.0, -2.0]), None) is None  # m = 2: no momentum
    assert root(np.array([0.0, 0.0, 1.0]), None) is None  # a constant: no root


def _tr(grads: np.ndarray, params: np.ndarray) -> Trajectory:
    return Trajectory(np.ones(4), grads, params, None, None, source="memory")


def test_the_fit_recovers_lr_and_momentum_with_bounds_that_hold() -> None:
    g1, g2 = np.array([1.0, 2.0, -1.0, 0.5]), np.array([0.5, -1.0, 2.0, 1.0])
    lr, mu = 0.0123, 0.95
    p1 = 1.0 - lr * g1
    p2 = p1 - lr * (g2 + mu * g1)
    fit = Fit.of([_tr(np.stack([g1, g2]), np.stack([p1, p2]))], 2, "memory")
    assert abs(fit.a - lr) <= fit.ea
    assert abs(fit.c - lr * mu) <= fit.ec
    assert fit.ea < 1e-12
    probed = np.array([[1.0, 1.0, m] for m in (0.25, 0.5, 0.75)])  # heavy ball: A = 1, C = mu
    solved = fit.solve(probed, None, None)
    assert solved is not None
    (lr_c, mu_c), guesses = solved
    assert (lr_c, mu_c) == (pytest.approx(lr), pytest.approx(mu))
    assert (lr, mu) in guesses


@pytest.mark.parametrize(
    ("g2", "message"),
    [
        ("same", "cannot infer momentum: steps 1 and 2's gradients are proportional"),
        ("zero1", "cannot infer lr: step 1's gradient is zero or not finite"),
    ],
)
def test_the_fit_refuses_steps_that_cannot_fix_the_values(g2: str, message: str) -> None:
    g1 = np.array([1.0, 2.0, -1.0, 0.5])
    grads = np.stack([g1, g1 * 3]) if g2 == "same" else np.stack([0 * g1, g1])
    params = np.stack([1.0 - 0.1 * grads[0], 1.0 - 0.1 * grads[0] - 0.1 * grads[1]])
    with pytest.raises(TrajectoryError, match=message):
        Fit.of([_tr(grads, params)], 2, "memory")
