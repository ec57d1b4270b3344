"""The live conformance table: one row per convention, variant and dtype."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._tables import aligned
from ..conventions import REGISTRY
from .cases import VARIANTS, random_spec, worker_groups
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
        (convention, group, Worker(convention, variant, wait=False))
        for convention, variant, group in worker_groups()
    ]
    try:
        for convention, group, worker in started:
            rows += _run_group(
                worker, convention, group, cases=cases, rng=rng, progress=progress,
                count=(done, total),
            )  # fmt: skip
            done += cases * sum(len(VARIANTS[convention][v]) for v in group)
    finally:  # every worker ends, whatever was raised
        for _, _, worker in started:
            worker.close()
    return rows


def _run_group(
    worker: Worker,
    convention: str,
    group: tuple[str, ...],
    *,
    cases: int,
    rng: np.random.Generator,
    progress: Progress | None,
    count: tuple[int, int],
) -> list[LiveRow]:
    """The rows of one worker's variants; "not installed" rows where it did not start."""
    variants = VARIANTS[convention]
    try:
        version = worker.wait()
    except RuntimeError:
        missing = [(v, d) for v in group for d in variants[v]]
        return [LiveRow(convention, v, d, NOT_INSTALLED, 0, 0, 0.0) for v, d in missing]
    done, total = count
    rows = []
    for variant in group:
        for dtype in variants[variant]:
            bitwise, worst = 0, 0.0
            for _ in range(cases):
                if progress is not None:
                    progress(done, total, f"{convention} {variant} {dtype}")
                result = check(worker, random_spec(rng, convention, variant, dtype))
                bitwise += result.bitwise
                worst = max(worst, result.max_ulp)
                done += 1
            rows.append(LiveRow(convention, variant, dtype, version, cases, bitwise, worst))
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
            f"{r.convention} ({r.variant})"
            if REGISTRY[r.convention].process_per_variant
            else r.convention
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
