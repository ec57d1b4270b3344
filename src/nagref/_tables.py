"""Aligned text tables, as every report of nagref prints them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

__all__ = ["aligned"]


def aligned(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    rule: Literal["line", "columns"] = "line",
) -> list[str]:
    """The header and rows as lines of columns, each as wide as its widest cell.

    Columns are two spaces apart and trailing spaces are dropped. Under the
    header goes a rule of dashes: one line as long as the header (``"line"``)
    or one run per column (``"columns"``).
    """
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    text.insert(1, "-" * len(text[0]) if rule == "line" else "  ".join("-" * w for w in widths))
    return text
