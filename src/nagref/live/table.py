"""The live conformance table: one row per convention, variant and dtype."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._tables import aligned
from ..conventions import REGISTRY
from .cases import VARIANTS, random_spec, worker_groups
from .suite import (
    CASE_TIMEOUT,
    START_TIMEOUT,
    FrameworkError,
    MissingFrameworkError,
    Worker,
    WorkerFailedError,
    check,
)

__all__ = [
    "INSTALL",
    "LiveRow",
    "format_live_table",
    "frameworks",
    "live_verdict",
    "run_live",
    "stderr_progress",
]


#: The framework column of a row whose framework is not installed.
NOT_INSTALLED = "not installed"
#: The framework column of a row whose worker failed before it named its framework.
NOT_STARTED = "did not start"
#: How to install the frameworks (PyTorch first, as the CPU build; see pyproject.toml).
INSTALL = "pip install torch==2.13.0 && pip install 'nagref[frameworks]'"


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
    error: str | None = None  # why the row failed beyond its cases: a worker's failure

    @property
    def passed(self) -> bool:
        return self.error is None and self.bitwise == self.cases


Progress = Callable[[int, int, str], None]  # (cases done, cases in all, what runs now)


def run_live(
    cases: int,
    seed: int = 0,
    progress: Progress | None = None,
    *,
    start_timeout: float = START_TIMEOUT,
    case_timeout: float = CASE_TIMEOUT,
) -> list[LiveRow]:
    """Run ``cases`` random cases per row on every framework that is installed.

    A worker that dies or passes a timeout (seconds: ``start_timeout`` for its
    framework's import, ``case_timeout`` per case) fails its rows, with the
    reason, and the other frameworks still run. Whatever happens, every worker
    has ended when this returns or raises; on an exception (Ctrl-C) at once.
    """
    rng = np.random.default_rng(seed)
    rows: list[LiveRow] = []
    total = cases * sum(
        len(dtypes) for variants in VARIANTS.values() for dtypes in variants.values()
    )
    done = 0
    started: list[tuple[str, tuple[str, ...], Worker]] = []
    try:
        # start every worker at once: their frameworks import in parallel
        for convention, variant, group in worker_groups():
            worker = Worker(
                convention, variant, wait=False, start_timeout=start_timeout,
                case_timeout=case_timeout,
            )  # fmt: skip
            started.append((convention, group, worker))
        for convention, group, worker in started:
            rows += _run_group(
                worker, convention, group, cases=cases, rng=rng, progress=progress,
                count=(done, total),
            )  # fmt: skip
            done += cases * sum(len(VARIANTS[convention][v]) for v in group)
            worker.close()
    except BaseException:  # Ctrl-C, SIGTERM or a bug: no worker outlives it
        for _, _, worker in started:
            worker.kill()
        raise
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
    """The rows of one worker's variants; failed rows from where the worker failed on."""
    variants = VARIANTS[convention]
    wanted = [(v, d) for v in group for d in variants[v]]
    try:
        version = worker.wait()
    except MissingFrameworkError:
        return [LiveRow(convention, v, d, NOT_INSTALLED, 0, 0, 0.0) for v, d in wanted]
    except WorkerFailedError as failed:
        return [LiveRow(convention, v, d, NOT_STARTED, 0, 0, 0.0, str(failed)) for v, d in wanted]
    done, total = count
    rows = []
    failure: str | None = None
    for variant, dtype in wanted:
        ran = bitwise = 0
        worst = 0.0
        error = failure
        for _ in range(cases if failure is None else 0):
            if progress is not None:
                progress(done, total, f"{convention} {variant} {dtype}")
            spec = random_spec(rng, convention, variant, dtype)
            try:
                result = check(worker, spec)
            except FrameworkError as raised:  # a case that failed; the worker serves on
                error = error or _one_line(str(raised).partition(" on Spec(")[0])
            except WorkerFailedError as died:  # this row and the group's next ones fail
                error = failure = str(died)
                break
            else:
                bitwise += result.bitwise
                worst = max(worst, result.max_ulp)
            finally:
                done += 1
            ran += 1
        rows.append(LiveRow(convention, variant, dtype, version, ran, bitwise, worst, error))
    return rows


def live_verdict(rows: list[LiveRow]) -> tuple[bool, str]:
    """Whether the live rows pass, and the one-line verdict.

    A run that checked nothing (no framework installed) does not pass.
    """
    ran = sum(r.cases for r in rows)
    failures = _failures(rows)
    differ = [r for r in rows if r.bitwise != r.cases]
    if not ran and not failures:
        return False, f"NOTHING CHECKED: no framework is installed; install them with: {INSTALL}"
    if not differ and not failures:
        return True, f"PASS: {ran} live cases, every one bitwise"
    parts = []
    if differ:
        bad = sum(r.cases - r.bitwise for r in differ)
        parts.append(f"{bad} of {ran} live cases not bitwise, in {len(differ)} rows")
    failed = sum(r.error is not None for r in rows)
    parts += [f"{failed} rows failed", *failures]
    return False, "FAIL: " + "; ".join(parts)


def _failures(rows: list[LiveRow]) -> list[str]:
    """Each failed worker or framework, once: ``"pytorch: worker died ..."``."""
    seen: dict[str, None] = {}
    for r in rows:
        if r.error is not None:
            seen[f"{_framework_name(r)}: {r.error}"] = None
    return list(seen)


def _framework_name(row: LiveRow) -> str:
    if REGISTRY[row.convention].process_per_variant:
        return f"{row.convention} ({row.variant})"
    return row.convention


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


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
            _framework_cell(r),
        )
        for r in rows
    ]
    return "\n".join(aligned(header, body))


def _framework_cell(row: LiveRow) -> str:
    if row.error is None:
        return row.framework
    where = "" if row.framework == NOT_STARTED else f" ({row.framework})"
    return f"FAIL{where}: {row.error}"


def frameworks(rows: list[LiveRow]) -> tuple[list[str], list[str]]:
    """The frameworks found (name and version) and the conventions whose were not."""
    found = sorted({r.framework for r in rows if r.framework not in (NOT_INSTALLED, NOT_STARTED)})
    missing = sorted({_framework_name(r) for r in rows if r.framework == NOT_INSTALLED})
    return found, missing


def stderr_progress(done: int, total: int, what: str) -> None:
    """A one-line progress bar on standard error."""
    width = 30
    filled = width * done // max(total, 1)
    bar = "#" * filled + "." * (width - filled)
    sys.stderr.write(f"\r\x1b[K[{bar}] {done}/{total} cases: {what}")
    sys.stderr.flush()
