"""nagref.report.problems: the built-in problems' starts, gradients and step sizes."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest

from nagref.report.problems import PROBLEMS, Problem

BY_NAME = {p.name: p for p in PROBLEMS}


def _rosenbrock(x: list[float]) -> float:
    return sum((1.0 - x[i]) ** 2 + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 for i in range(len(x) - 1))


def test_the_problems_and_their_starts() -> None:
    assert list(BY_NAME) == ["quadratic", "rosenbrock", "noisy-schedule", "complex-quadratic"]
    assert all(p.description for p in PROBLEMS)
    for name in ("quadratic", "noisy-schedule", "complex-quadratic"):
        assert len(BY_NAME[name].start) == 37  # odd: vectorised kernels run their tails
    assert BY_NAME["rosenbrock"].start == (-1.2, 1.0) * 4
    assert BY_NAME["quadratic"].start[:3] == (1.0, -(1.0 + 1 / 7), 1.0 + 2 / 7)
    assert [p.complex_valued for p in PROBLEMS] == [False, False, False, True]
    z = BY_NAME["complex-quadratic"].start
    assert all(isinstance(v, complex) for v in z)
    assert all(v.imag == pytest.approx(-v.real / 3) for v in z)
    with pytest.raises(dataclasses.FrozenInstanceError):
        BY_NAME["quadratic"].name = "x"  # type: ignore[misc]


def test_the_quadratics_curvatures_span_a_condition_number_of_100() -> None:
    problem = BY_NAME["quadratic"]
    a = problem.gradient([1.0] * 37, 0)  # the gradient a_i x_i at x = 1 gives the a_i
    assert a[0] == 1.0
    assert a[-1] == pytest.approx(0.01)
    ratios = [a[i + 1] / a[i] for i in range(36)]
    assert ratios == pytest.approx([100 ** (-1 / 36)] * 36)
    x = [0.5 * (i - 18) for i in range(37)]
    assert problem.gradient(x, 3) == pytest.approx([ai * xi for ai, xi in zip(a, x, strict=True)])


def test_the_complex_quadratic_scales_each_coordinate() -> None:
    problem = BY_NAME["complex-quadratic"]
    a = BY_NAME["quadratic"].gradient([1.0] * 37, 0)
    z = list(problem.start)
    assert problem.gradient(z, 0) == pytest.approx([ai * zi for ai, zi in zip(a, z, strict=True)])


def test_the_rosenbrock_gradient() -> None:
    problem = BY_NAME["rosenbrock"]
    assert problem.gradient([1.0] * 8, 0) == [0.0] * 8  # the minimum
    x = [v.real for v in problem.start]
    g = problem.gradient(x, 0)
    h = 1e-6
    for i in range(8):
        up, down = list(x), list(x)
        up[i] += h
        down[i] -= h
        assert g[i] == pytest.approx((_rosenbrock(up) - _rosenbrock(down)) / (2 * h), rel=1e-6)


def test_the_noisy_gradient_is_deterministic_bounded_noise() -> None:
    noisy, clean = BY_NAME["noisy-schedule"], BY_NAME["quadratic"]
    x = list(noisy.start)
    base = clean.gradient(x, 0)
    first = noisy.gradient(x, 5)
    assert first == noisy.gradient(x, 5)
    assert first != noisy.gradient(x, 6)
    assert all(abs(n - c) <= 0.05 for n, c in zip(first, base, strict=True))
    assert max(abs(n - c) for n, c in zip(first, base, strict=True)) > 0.01


def test_the_step_sizes() -> None:
    for name in ("quadratic", "complex-quadratic"):
        assert {BY_NAME[name].lr(t) for t in range(50)} == {0.9}
        assert {BY_NAME[name].momentum(t) for t in range(50)} == {0.9}
    assert BY_NAME["rosenbrock"].lr(7) == 1e-3
    noisy: Problem = BY_NAME["noisy-schedule"]
    lrs = [noisy.lr(t) for t in range(100)]
    assert lrs[0] == 0.5
    assert lrs[10] == 0.25
    assert all(b < a for a, b in itertools.pairwise(lrs))
    momenta = [noisy.momentum(t) for t in range(100)]
    assert momenta[0] == pytest.approx(0.4)
    assert all(b >= a for a, b in itertools.pairwise(momenta))
    assert max(momenta) == 0.95
    assert all(math.isfinite(m) and 0 <= m < 1 for m in momenta)
