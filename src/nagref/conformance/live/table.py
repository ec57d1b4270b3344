"""The live conformance table: one row per convention, variant and dtype."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .cases import VARIANTS, random_spec
from .suite import Worker, check

__all__ = ["LiveRow", "format_live_table", "run_live"]


@dataclass(frozen=True)
class LiveRow:
    """One convention's variant and dtype against its live framework."""

    convention: str
    variant: str
    dtype: str
    framework: str  # name and version, or why it did not run
    cases: int
    bitwise: int
    max_ulp: float

    @property
    def passed(self) -> bool:
        return self.bitwise == self.cases


def run_live(
    cases: int, seed: int = 0, progress: Callable[[str], None] | None = None
) -> list[LiveRow]:
    """Run ``cases`` random cases per row on every framework that is installed."""
    rng = np.random.default_rng(seed)
    rows: list[LiveRow] = []
    for convention, variants in VARIANTS.items():
        groups = [[v] for v in variants] if convention == "keras" else [list(variants)]
        for group in groups:
            try:
                worker = Worker(convention, group[0] if convention == "keras" else None)
            except RuntimeError:
                rows += [
                    LiveRow(convention, v, d, "not installed", 0, 0, 0.0)
                    for v in group
                    for d in variants[v]
                ]
                continue
            for variant in group:
                for dtype in variants[variant]:
                    if progress is not None:
                        progress(f"{convention} {variant} {dtype}")
                    bitwise, worst = 0, 0.0
                    for _ in range(cases):
                        spec = random_spec(rng, convention, variant, dtype)
                        result = check(worker, spec)
                        bitwise += result.bitwise
                        worst = max(worst, result.max_ulp)
                    rows.append(
                        LiveRow(convention, variant, dtype, worker.version, cases, bitwise, worst)
                    )
            worker.close()
    return rows


def format_live_table(rows: list[LiveRow]) -> str:
    """The rows as an aligned text table."""
    header = ("convention", "variant", "dtype", "cases", "bitwise", "max ulp", "framework")
    lines = [header]
    for r in rows:
        ulp = "-" if r.cases == 0 else f"{r.max_ulp:g}"
        lines.append(
            (r.convention, r.variant, r.dtype, str(r.cases), str(r.bitwise), ulp, r.framework)
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = []
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        out.append("  ".join([*cells, line[-1]]).rstrip())
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def stderr_progress(text: str) -> None:
    """A one-line progress report on standard error."""
    sys.stderr.write(f"\r\x1b[K{text}")
    sys.stderr.flush()
