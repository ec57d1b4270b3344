"""The first steps, fitted in float64: what :mod:`.infer` solves each recipe with.

``a = lr * A(mu)`` from step 1 and ``c = lr * C(mu)`` from step 2 (least
squares of the parameters' moves on the gradients, over every finite
element), each with a bound on its error from the recording's rounding. A
recipe's ``A`` and ``C``, quadratics in ``mu`` probed at :data:`PROBES`, then
give ``mu`` (``C / A = c / a``) and ``lr``, and :func:`decimals` lists the
shortest decimals in their intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import numpy as np

from .trajectory import TrajectoryError

__all__ = ["EPS", "PAIRS", "PROBES", "First", "Fit", "columns", "decimals", "root"]

#: The momenta each recipe is probed at: exact in every dtype, their squares too.
PROBES = (0.25, 0.5, 0.75)
#: Each dtype's machine epsilon.
EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
#: The guesses (lr, momentum) kept per recipe, shortest first.
PAIRS = 48
_ESTIMATE = 1 << 20  # the elements the fit reads
_SAFETY = 8.0  # the error bounds, widened: a wide interval only costs a guess or two

Poly = np.ndarray[Any, Any]


class First(Protocol):
    """A run's first steps, as the fit reads them."""

    @property
    def initial(self) -> Any: ...
    @property
    def grads(self) -> Any: ...
    @property
    def params(self) -> Any: ...
    @property
    def dtype(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class Fit:
    """The first steps fitted in float64: ``a = lr * A``, ``c = lr * C`` and their errors."""

    a: float
    ea: float
    c: float  # NaN where only step 1 was fitted
    ec: float
    eps: float

    @staticmethod
    def of(runs: Sequence[First], k: int, where: str) -> Fit:
        """Fit the first ``k`` (1 or 2) steps of ``runs`` together.

        Raises:
            TrajectoryError: they cannot fix lr (no finite nonzero gradient, parameters that
                did not move) or momentum (proportional gradients).
        """
        cols = [columns(r, k) for r in runs]
        g1, d1, e1 = (np.concatenate([c[i] for c in cols]) for i in range(3))
        eps = EPS[runs[0].dtype]
        s11 = float(g1 @ g1)
        if s11 == 0 or not math.isfinite(s11):
            raise TrajectoryError(f"{where}: cannot infer lr: step 1's gradient is zero or not "
                                  "finite at every element; record lr and momentum")  # fmt: skip
        a = -float(g1 @ d1) / s11
        ea = _SAFETY * (float(np.abs(g1) @ e1) / s11 + eps * abs(a))
        if not (math.isfinite(a) and a > ea):
            raise TrajectoryError(f"{where}: cannot infer lr: the parameters did not move "
                                  "against step 1's gradient; record lr and momentum")  # fmt: skip
        if k == 1:
            return Fit(a, ea, math.nan, math.nan, eps)
        g2, d2, e2 = (np.concatenate([c[i] for c in cols]) for i in range(3, 6))
        s = np.array([[g2 @ g2, g2 @ g1], [g1 @ g2, s11]])
        if not float(np.linalg.det(s)) > 1e-12 * float(s[0, 0]) * s11:
            raise TrajectoryError(f"{where}: cannot infer momentum: steps 1 and 2's gradients "
                                  "are proportional (or step 2's is zero); record it")  # fmt: skip
        inv = np.linalg.inv(s)
        c = float(inv[1] @ np.array([g2 @ -d2, g1 @ -d2]))
        ec = _SAFETY * (float(np.abs(inv[1, 0] * g2 + inv[1, 1] * g1) @ e2) + eps * abs(c))
        return Fit(a, ea, c, ec, eps)

    @property
    def cast(self) -> float:
        """How far a hyperparameter may be from the decimal typed: a framework may round it to
        the dtype, or to float32 (JAX without x64), before it multiplies."""
        return 2 * max(self.eps, 2.0**-23)

    def solve(
        self, probed: Poly, mu: float | None, lr: float | None
    ) -> tuple[tuple[float, float], list[tuple[float, float]]] | None:
        """A recipe's estimate (lr, mu) and the decimals to try, shortest first; None where no
        momentum in [0, 1) fits it. ``probed``: (A, B, C) at each of :data:`PROBES`; ``mu``
        and ``lr``: the recorded values, where not inferred."""
        pa = np.polyfit(PROBES, probed[:, 0], 2)
        pc = np.polyfit(PROBES, probed[:, 2], 2)
        if mu is None:
            r = self.c / self.a
            spread = self.ec / self.a + abs(r) * self.ea / self.a
            ratios = [float(np.polyval(pc, m) / np.polyval(pa, m)) for m in (0.0, 1.0 - 1e-9)]
            low, high = max(r - spread, min(ratios)), min(r + spread, max(ratios))
            if low > high:
                return None  # no momentum in [0, 1) gives this recipe the fitted ratio
            centre = root(pc - min(max(r, low), high) * pa, None)
            if centre is None:
                return None
            ends = [e for x in (low, high) if (e := root(pc - x * pa, centre)) is not None]
            lo, hi = min([centre, *ends]), max([centre, *ends])
            mus = decimals(lo * (1 - self.cast), hi * (1 + self.cast), centre)
        else:
            centre, lo, hi, mus = mu, mu, mu, [(0, mu)]
        big_a = [float(np.polyval(pa, m)) for m in (lo, centre, hi)]
        if min(big_a) <= 0:
            return None
        lr_c = self.a / big_a[1]
        if lr is None:
            bounds = [(self.a + s) / x for s in (-self.ea, self.ea) for x in big_a]
            lrs = decimals(min(bounds) * (1 - self.cast), max(bounds) * (1 + self.cast), lr_c)
        else:
            lrs = [(0, lr)]
        pairs = sorted(
            (dl + dm, abs(vl / lr_c - 1) + abs(vm - centre), vl, vm)
            for dl, vl in lrs
            for dm, vm in mus
        )
        return (lr_c, centre), [(vl, vm) for *_, vl, vm in pairs[:PAIRS]]


def columns(run: First, k: int) -> list[np.ndarray[Any, Any]]:
    """g, the move -Δp and a bound on its rounding at steps 1..k, over the finite elements."""
    n = min(math.prod(run.shape), _ESTIMATE)
    arrays = (run.initial, *(run.grads[t] for t in range(k)), *(run.params[t] for t in range(k)))
    flat = [np.asarray(a, dtype=np.float64).ravel()[:n] for a in arrays]
    p0, grads, params = flat[0], flat[1 : 1 + k], flat[1 + k :]
    ok = np.logical_and.reduce([np.isfinite(x) for x in flat])
    eps = EPS[run.dtype]
    out, before = [], p0
    for g, p in zip(grads, params, strict=True):
        d = p - before
        out += [g[ok], d[ok], (eps * (np.abs(before) + np.abs(p) + 4 * np.abs(d)))[ok]]
        before = p
    return out


def root(poly: Poly, near: float | None) -> float | None:
    """The root of ``poly`` in [0, 1) (the one nearest ``near``, else the smallest), or None."""
    scale = max(float(np.abs(poly).max()), 1e-300)
    trimmed = np.trim_zeros(np.where(np.abs(poly) > 1e-12 * scale, poly, 0.0), "f")
    if trimmed.size < 2:
        return None
    roots = [float(z.real) for z in np.roots(trimmed) if abs(z.imag) < 1e-9]
    inside = [min(max(z, 0.0), 1.0 - 1e-16) for z in roots if -1e-9 <= z < 1.0]
    if not inside:
        return None
    return min(inside, key=lambda z: abs(z - (near if near is not None else 0.0)))


def decimals(
    lo: float, hi: float, centre: float, most: int = 9, per: int = 2
) -> list[tuple[int, float]]:
    """The decimals in [lo, hi] with 1 to ``most`` significant digits, the ``per`` nearest
    ``centre`` of each length, as (digits, value); 0 first where the interval holds it."""
    out: list[tuple[int, float]] = [(0, 0.0)] if lo <= 0.0 <= hi else []
    if hi <= 0 or centre <= 0:
        return out
    top = math.floor(math.log10(centre))
    for digits in range(1, most + 1):
        e = top - digits + 1
        unit = 10.0**e
        ks = range(max(math.ceil(lo / unit), 1), math.floor(hi / unit) + 1)
        if len(ks) > 10_000:
            continue
        near = sorted((k for k in ks if k % 10), key=lambda k: abs(k * unit - centre))
        out += [(digits, float(Decimal(k).scaleb(e))) for k in near[:per]]
    return out
