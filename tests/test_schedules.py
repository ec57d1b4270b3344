"""nagref.schedules: values, tuned constants, and argument checks."""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from nagref import schedules


def test_sutskever_steps_every_250_and_caps() -> None:
    values = {t: schedules.sutskever(t, mu_max=0.995) for t in (0, 249, 250, 499, 500, 1000)}
    assert values == {0: 0.5, 249: 0.5, 250: 0.75, 499: 0.75, 500: 5 / 6, 1000: 0.9}
    assert schedules.sutskever(10**6, mu_max=0.995) == 0.995
    assert schedules.sutskever(10**6, mu_max=0.0) == 0.0


def test_nesterov_fista_and_k_over_k3_start_at_zero_and_rise_to_one() -> None:
    assert schedules.nesterov(0) == 0.0
    assert schedules.fista(1) == 0.0
    assert schedules.k_over_k3(1) == 0.0
    for fn, first in ((schedules.nesterov, 0), (schedules.fista, 1), (schedules.k_over_k3, 1)):
        values = [fn(k) for k in range(first, first + 3000)]
        assert all(a < b < 1 for a, b in itertools.pairwise(values))
        assert values[-1] > 0.998


def test_tuned_constants_give_the_published_rates() -> None:
    # the spectral radius of each method's iteration matrix, over the spectrum [1/κ, 1]
    for kappa in (10.0, 100.0, 1000.0):
        root = math.sqrt(kappa)
        expected = {
            "gd": (kappa - 1) / (kappa + 1),
            "heavy_ball": (root - 1) / (root + 1),
            "nag": 1 - 1 / root,
        }
        for method in schedules.METHODS:
            lr, mu = schedules.tuned(kappa, method)
            radius = max(_radius(method, lr, mu, lam) for lam in np.geomspace(1 / kappa, 1, 401))
            assert radius == pytest.approx(expected[method], rel=1e-6), (kappa, method)


def _radius(method: str, lr: float, mu: float, lam: float) -> float:
    h = lr * lam
    if method == "nag":  # x' = (1+μ)(1−h)x − μ(1−h)x_prev
        matrix = [[(1 + mu) * (1 - h), -mu * (1 - h)], [1.0, 0.0]]
    else:  # heavy ball (μ = 0: gradient descent): x' = (1+μ−h)x − μx_prev
        matrix = [[1 + mu - h, -mu], [1.0, 0.0]]
    return float(max(abs(np.linalg.eigvals(np.array(matrix)))))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: schedules.sutskever(-1, mu_max=0.9),
            ValueError,
            "t must be an integer >= 0, got -1",
        ),
        (
            lambda: schedules.sutskever(1.5, mu_max=0.9),
            TypeError,
            "t must be an integer, got float 1.5",
        ),
        (
            lambda: schedules.sutskever(True, mu_max=0.9),
            TypeError,
            "t must be an integer, got bool",
        ),
        (
            lambda: schedules.sutskever(3, mu_max=1.0),
            ValueError,
            r"mu_max must be in \[0, 1\), got 1.0",
        ),
        (lambda: schedules.sutskever(3, mu_max="0.9"), TypeError, "mu_max must be a real number"),
        (lambda: schedules.nesterov(-2), ValueError, "k must be an integer >= 0, got -2"),
        (lambda: schedules.fista(0), ValueError, "k must be an integer >= 1, got 0"),
        (lambda: schedules.k_over_k3(0), ValueError, "k must be an integer >= 1, got 0"),
        (
            lambda: schedules.tuned(0.5, "nag"),
            ValueError,
            "kappa must be a finite number >= 1, got 0.5",
        ),
        (
            lambda: schedules.tuned(math.inf, "nag"),
            ValueError,
            "kappa must be a finite number >= 1",
        ),
        (
            lambda: schedules.tuned(10, "adam"),
            ValueError,
            "method must be one of gd, heavy_ball, nag, got 'adam'",
        ),
    ],
)
def test_bad_arguments_are_named(call: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_numpy_integers_are_steps() -> None:
    assert schedules.nesterov(np.int64(3)) == schedules.nesterov(3)


def _a_by_hand(k: int) -> float:
    a = 1.0
    for _ in range(k):
        a = (1.0 + math.sqrt(4.0 * a * a + 1.0)) / 2.0
    return a


def test_nesterov_is_thread_safe_on_a_cold_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # eight threads extending an empty cache at once got a wrong value once
    monkeypatch.setattr(schedules, "_CHECKPOINTS", [1.0])
    k = 300_000
    want = (_a_by_hand(k) - 1.0) / _a_by_hand(k + 1)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(schedules.nesterov, [k] * 8 + [k - 1, 5, 4096, 4097]))
    assert got[:8] == [want] * 8
    assert got[8:] == [(_a_by_hand(j) - 1.0) / _a_by_hand(j + 1) for j in (k - 1, 5, 4096, 4097)]


def test_nesterov_keeps_a_bounded_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schedules, "_CHECKPOINTS", [1.0])
    schedules.nesterov(10**7)
    assert len(schedules._CHECKPOINTS) <= 10**7 // 4096 + 2  # was one float per step
