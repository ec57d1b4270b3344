"""The live conformance table: one row per convention, variant and dtype."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._tables import aligned
from .cases import VARIANTS, random_spec
from .suite import Worker, check

__all__ = ["LiveRow", "format_live_table", "frameworks", "run_live", "stderr_progress"]


#: The framework column of a row whose framework did not import.
NOT_INSTALLED = "not installed"


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


Progress = Callable[[int, int, str], None]  # (cases done, cases in all, what runs now)


def run_live(cases: int, seed: int = 0, progress: Progress | None = None) -> list[LiveRow]:
    """Run ``cases`` random cases per row on every framework that is installed."""
    rng = np.random.default_rng(seed)
    rows: list[LiveRow] = []
    total = cases * sum(
        len(dtypes) for variants in VARIANTS.values() for dtypes in variants.values()
    )
    done = 0
    # start every worker at once: their frameworks import in parallel
    started = [
        (
            convention,
            group,
            Worker(convention, group[0] if convention == "keras" else None, wait=False),
        )
        for convention, variants in VARIANTS.items()
        for group in ([[v] for v in variants] if convention == "keras" else [list(variants)])
    ]
    for convention, group, worker in started:
        variants = VARIANTS[convention]
        try:
            version = worker.wait()
        except RuntimeError:
            missing = [(v, d) for v in group for d in variants[v]]
            rows += [LiveRow(convention, v, d, NOT_INSTALLED, 0, 0, 0.0) for v, d in missing]
            done += cases * len(missing)
            worker.close()
            continue
        for variant in group:
            for dtype in variants[variant]:
                bitwise, worst = 0, 0.0
                for _ in range(cases):
                    if progress is not None:
                        progress(done, total, f"{convention} {variant} {dtype}")
                    spec = random_spec(rng, convention, variant, dtype)
                    result = check(worker, spec)
                    bitwise += result.bitwise
                    worst = max(worst, result.max_ulp)
                    done += 1
                rows.append(LiveRow(convention, variant, dtype, version, cases, bitwise, worst))
        worker.close()
    return rows


def format_live_table(rows: list[LiveRow]) -> str:
    """The rows as an aligned text table."""
    header = ("convention", "variant", "dtype", "cases", "bitwise", "max ulp", "framework")
    body = [
        (
            r.convention,
            r.variant,
            r.dtype,
            str(r.cases),
            str(r.bitwise),
            "-" if r.cases == 0 else f"{r.max_ulp:g}",
            r.framework,
        )
        for r in rows
    ]
    return "\n".join(aligned(header, body))


def frameworks(rows: list[LiveRow]) -> tuple[list[str], list[str]]:
    """The frameworks found (name and version) and the conventions whose were not."""
    found = sorted({r.framework for r in rows if r.framework != NOT_INSTALLED})
    missing = sorted(
        {
            r.convention if r.convention != "keras" else f"keras ({r.variant} backend)"
            for r in rows
            if r.framework == NOT_INSTALLED
        }
    )
    return found, missing


def stderr_progress(done: int, total: int, what: str) -> None:
    """A one-line progress bar on standard error."""
    width = 30
    filled = width * done // max(total, 1)
    bar = "#" * filled + "." * (width - filled)
    sys.stderr.write(f"\r\x1b[K[{bar}] {done}/{total} cases: {what}")
    sys.stderr.flush()
