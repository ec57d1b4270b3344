"""The conformance run: it passes on nagref and catches a wrong operation order."""

from __future__ import annotations

from typing import Any

import pytest

import nagref.rules
from nagref.report import format_table, run, verdict


def test_every_check_passes_and_ruder_is_exact() -> None:
    rows = run(steps=30)
    assert len(rows) == 70
    assert all(row.passed for row in rows)
    assert all(row.bitwise == row.elements for row in rows if row.formula in ("GD", "Ruder 2016"))
    assert {row.dtype for row in rows} == {
        "float16",
        "float32",
        "float64",
        "bfloat16",
        "complex64",
        "complex128",
    }
    assert verdict(rows).startswith("PASS: all 70 checks")
    table = format_table(rows).splitlines()
    assert len(table) == 72
    assert set(table[1]) == {"-", " "}


def test_a_wrong_operation_order_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """W − (βV + ηg) regrouped as (W − βV) − ηg is the same in exact arithmetic only."""

    def regrouped(param: Any, grad: Any, velocity: Any, *, lr: float, momentum: float) -> Any:
        new_velocity = momentum * velocity + lr * grad
        return (param - momentum * velocity) - lr * grad, new_velocity

    monkeypatch.setattr(nagref.rules, "momentum", regrouped)
    rows = run(steps=30, dtypes=["float32"])
    failed = [row for row in rows if not row.passed]
    assert failed
    assert {row.rule for row in failed} == {"momentum"}
    assert all(row.max_ulp > 0 for row in failed)
    assert verdict(rows).startswith("FAIL")
