"""Conformance of nagref against independent references (``nagref conformance``)."""

from __future__ import annotations

from .report import DTYPES, RULES, Row, format_table, run, verdict

__all__ = ["DTYPES", "RULES", "Row", "format_table", "run", "verdict"]
