"""``nagref conformance``: the rules against the published formulas, on NumPy.

For every rule, published formula, built-in problem and dtype, the rule
(:mod:`nagref.rules`, run on NumPy arrays) and the formula
(:mod:`.published`, in Python floats) each take the same number of steps from
the same start. The states are compared after every step. Both sides round
every operation to the dtype, so they must agree bit for bit: exactly with
Ruder's form, which shares the seeds' sign, and up to the sign of zero with
Sutskever's, whose velocity has the opposite sign (see :mod:`.published`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _dtypes, rules
from .._compare import bitwise_equal, ulp_distance
from .._compat import named_dtype
from .._tables import aligned
from .problems import PROBLEMS, Problem
from .published import Arithmetic
from .published import rounded_gd as gd_step
from .published import rounded_ruder as ruder_step
from .published import rounded_ruder_lookahead as ruder_lookahead
from .published import rounded_sutskever as sutskever_step
from .published import rounded_sutskever_lookahead as sutskever_lookahead

__all__ = ["DTYPES", "RULES", "Row", "format_table", "run", "verdict"]

RULES = ("sgd", "momentum", "nag")
DTYPES = _dtypes.NAMES
_REAL_PART = {name: _dtypes.TABLE[name].real for name in _dtypes.COMPLEX}
#: dtypes NumPy holds through another library (bfloat16: ml_dtypes)
_NO_NUMPY_TYPE = frozenset(n for n, row in _dtypes.TABLE.items() if row.library is not None)


@dataclass(frozen=True)
class Row:
    """One line of the conformance table."""

    rule: str
    formula: str
    problem: str
    dtype: str
    steps: int
    elements: int
    bitwise: int
    zero_sign_only: int
    max_ulp: float
    zero_sign_exact: bool

    @property
    def passed(self) -> bool:
        """Bitwise everywhere, or, where the formula's velocity has the opposite
        sign, everywhere but the sign of exact zeros."""
        if self.zero_sign_exact:
            return self.bitwise == self.elements
        return self.bitwise + self.zero_sign_only == self.elements


@dataclass(frozen=True)
class _Formula:
    """A published formula: its name, its rules, and how its velocity maps to V."""

    name: str
    rules: tuple[str, ...]
    velocity_sign: float  # V = velocity_sign * (the formula's v)


_FORMULAS = (
    _Formula("GD", ("sgd",), 1.0),
    _Formula("Ruder 2016", ("momentum", "nag"), 1.0),
    _Formula("Sutskever 2013", ("momentum", "nag"), -1.0),
)


def run(steps: int = 100, dtypes: Sequence[str] = DTYPES) -> list[Row]:
    """Run every rule on every built-in problem in every dtype."""
    rows = []
    for problem in PROBLEMS:
        for dtype in dtypes:
            if problem.complex_valued != dtype.startswith("complex"):
                continue
            for rule in RULES:
                ours = _run_nagref(rule, problem, dtype, steps)
                for formula in _FORMULAS:
                    if rule in formula.rules:
                        theirs = _run_published(formula, rule, problem, dtype, steps)
                        rows.append(
                            _compare(
                                rule=rule,
                                formula=formula,
                                problem=problem,
                                dtype=dtype,
                                steps=steps,
                                ours=ours,
                                theirs=theirs,
                            )
                        )
    return rows


def _compare(
    *,
    rule: str,
    formula: _Formula,
    problem: Problem,
    dtype: str,
    steps: int,
    ours: Sequence[Any],
    theirs: Sequence[Any],
) -> Row:
    elements = matches = zero_signs = 0
    worst = 0.0
    for a, b in zip(ours, theirs, strict=True):
        same = bitwise_equal(a, b)
        distance = ulp_distance(a, b)
        elements += a.size
        matches += int(np.count_nonzero(same))
        zero_signs += int(np.count_nonzero(~same & (distance == 0)))
        if a.size:
            worst = max(worst, float(np.max(distance)))
    return Row(
        rule,
        formula.name,
        problem.name,
        dtype,
        steps,
        elements,
        matches,
        zero_signs,
        worst,
        zero_sign_exact=formula.velocity_sign > 0,
    )


def _run_nagref(rule: str, problem: Problem, dtype: str, steps: int) -> list[Any]:
    """The trajectory of nagref's rule: [W_1, V_1, W_2, V_2, ...] (no V for sgd)."""
    w = _array(problem.start, dtype)
    v = rules.init_velocity(w)
    out = []
    for t in range(steps):
        lr, mu = problem.lr(t), problem.momentum(t)
        if rule == "sgd":
            w = rules.sgd(w, _grad(problem, w, t, dtype), lr=lr)
            out.append(w)
            continue
        at = rules.lookahead(w, v, momentum=mu) if rule == "nag" else w
        step = rules.nag if rule == "nag" else rules.momentum
        w, v = step(w, _grad(problem, at, t, dtype), v, lr=lr, momentum=mu)
        out += [w, v]
    return out


def _grad(problem: Problem, at: Any, t: int, dtype: str) -> Any:
    values = at.astype(np.float64).tolist() if dtype in _NO_NUMPY_TYPE else at.tolist()
    return _array(problem.gradient(values, t), dtype)


def _array(values: Sequence[complex], dtype: str) -> Any:
    """``values`` rounded once to ``dtype``, as a NumPy array.

    NumPy converts to its own dtypes once; ``ml_dtypes`` converts a float64
    to bfloat16 through float32, rounding twice, so those are rounded here.
    """
    if dtype not in _NO_NUMPY_TYPE:
        return np.asarray(values, dtype=dtype)
    rounded = [_dtypes.round_to(float(x.real), dtype) for x in values]
    return np.asarray(rounded).astype(named_dtype(np, dtype))  # exact


def _run_published(
    formula: _Formula, rule: str, problem: Problem, dtype: str, steps: int
) -> list[Any]:
    """The same trajectory from a published formula, mapped to the seeds' (W, V).

    The published rules are real-linear with real coefficients, so a complex
    problem is run as two real ones, on the real and on the imaginary parts.
    """
    ar = Arithmetic(_REAL_PART.get(dtype, dtype))
    n_parts = 2 if dtype in _REAL_PART else 1
    theta = [[ar.round(x) for x in part] for part in _split(problem.start, n_parts)]
    v = [[0.0] * len(part) for part in theta]
    lookahead, step = _steppers(formula)
    out = []
    for t in range(steps):
        eps, mu = problem.lr(t), problem.momentum(t)
        if rule == "nag":
            at = [
                [lookahead(ar, th, vi, mu) for th, vi in zip(*pv, strict=True)]
                for pv in zip(theta, v, strict=True)
            ]
        else:
            at = theta
        g = [
            [ar.round(x) for x in part] for part in _split(problem.gradient(_join(at), t), n_parts)
        ]
        if rule == "sgd":
            theta = [
                [gd_step(ar, th, gi, eps=eps) for th, gi in zip(*pg, strict=True)]
                for pg in zip(theta, g, strict=True)
            ]
            out.append(_array(_join(theta), dtype))
            continue
        pairs = [
            [step(ar, th, vi, gi, eps, mu) for th, vi, gi in zip(*pvg, strict=True)]
            for pvg in zip(theta, v, g, strict=True)
        ]
        theta = [[th for th, _ in part] for part in pairs]
        v = [[vi for _, vi in part] for part in pairs]
        sign = formula.velocity_sign
        out.append(_array(_join(theta), dtype))
        out.append(_array(_join([[sign * x for x in part] for part in v]), dtype))
    return out


def _steppers(formula: _Formula) -> tuple[Any, Any]:
    """The formula's (look-ahead, step) functions, with positional ε and μ."""
    if formula.velocity_sign > 0:
        return (
            lambda ar, th, v, mu: ruder_lookahead(ar, th, v, gamma=mu),
            lambda ar, th, v, g, eps, mu: ruder_step(ar, th, v, g, eta=eps, gamma=mu),
        )
    return (
        lambda ar, th, v, mu: sutskever_lookahead(ar, th, v, mu=mu),
        lambda ar, th, v, g, eps, mu: sutskever_step(ar, th, v, g, eps=eps, mu=mu),
    )


def _split(values: Sequence[complex], n_parts: int) -> list[list[float]]:
    if n_parts == 1:
        return [[float(x.real) for x in values]]
    return [[float(x.real) for x in values], [float(x.imag) for x in values]]


def _join(parts: Sequence[Sequence[float]]) -> list[complex]:
    if len(parts) == 1:
        return list(parts[0])
    return [complex(r, i) for r, i in zip(*parts, strict=True)]


def format_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table."""
    header = (
        "rule",
        "formula",
        "problem",
        "dtype",
        "steps",
        "elements",
        "bitwise",
        "±0 only",
        "max ULP",
        "result",
    )
    body = [
        (
            r.rule,
            r.formula,
            r.problem,
            r.dtype,
            str(r.steps),
            str(r.elements),
            str(r.bitwise),
            str(r.zero_sign_only),
            f"{r.max_ulp:g}",
            _result(r),
        )
        for r in rows
    ]
    return "\n".join(aligned(header, body, rule="columns"))


def _result(row: Row) -> str:
    if not row.passed:
        return "MISMATCH"
    return "ok" if row.bitwise == row.elements else "ok (±0)"


def verdict(rows: Sequence[Row]) -> str:
    """One line: does every rule match the published formulas bit for bit?"""
    passed = sum(r.passed for r in rows)
    elements = sum(r.elements for r in rows)
    if passed == len(rows):
        return (
            f"PASS: all {len(rows)} checks ({elements} elements) agree bit for bit with "
            "the published formulas (with Sutskever's, up to the sign of zero)"
        )
    return f"FAIL: {len(rows) - passed} of {len(rows)} checks differ from the published formulas"
