"""``nagref audit --plot``: each candidate's ULP distance from the recording, step by step.

:func:`series` is the data (each candidate's :attr:`~.report.Match.history`,
the candidates with the same history on one line), :func:`figure` draws it
with matplotlib, an optional extra (``pip install 'nagref[plot]'``), and
:func:`plot` writes it as a PNG. Only :func:`figure` and :func:`plot` need
matplotlib; they use its object interface (no pyplot, no global state).
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .model import ModelReport
from .replaying import Status
from .report import AuditReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["EXTRA", "Series", "figure", "matplotlib_missing", "plot", "series"]

#: How to install what :func:`figure` needs.
EXTRA = "pip install 'nagref[plot]'"
_NAMES_SHOWN = 3


@dataclass(frozen=True)
class Series:
    """One line of the plot: the candidates whose replays had this history."""

    candidates: tuple[str, ...]  # in the report's order
    status: Status
    ulps: tuple[float, ...]  # the max ULP distance at steps 1, 2, ...; inf: a NaN met a number

    @property
    def steps(self) -> tuple[int, ...]:
        return tuple(range(1, len(self.ulps) + 1))

    @property
    def label(self) -> str:
        names = ", ".join(self.candidates[:_NAMES_SHOWN])
        more = len(self.candidates) - _NAMES_SHOWN
        return names + (f" and {more} more" if more > 0 else "") + f" ({self.status})"


def series(report: AuditReport | ModelReport) -> list[Series]:
    """The plot's lines, best first: every candidate that ran, those with equal histories
    (and status) on one line."""
    lines: dict[tuple[Status, tuple[float, ...]], list[str]] = {}
    for m in report.matches:
        if m.history:
            lines.setdefault((m.status, m.history), []).append(m.candidate)
    return [Series(tuple(names), status, ulps) for (status, ulps), names in lines.items()]


def matplotlib_missing() -> str | None:
    """Why :func:`figure` cannot draw (matplotlib is not installed), or None."""
    try:
        import matplotlib  # noqa: F401, PLC0415  (an optional extra)
    except ImportError:
        return f"drawing needs matplotlib, which is not installed: {EXTRA}"
    return None


def figure(report: AuditReport | ModelReport) -> Figure:
    """Each line of :func:`series` against the step: a symlog y axis that shows 0, where the
    bitwise candidates lie; a replay that met a NaN where a number was recorded (an
    infinite distance) is drawn at the top, marked x.

    Raises:
        ImportError: matplotlib is not installed (the message says how to install it).
    """
    why = matplotlib_missing()
    if why is not None:
        raise ImportError(why)
    from matplotlib.figure import Figure  # noqa: PLC0415  (an optional extra)

    drawn = series(report)
    fig = Figure(figsize=(12, 6), layout="constrained")
    ax = fig.add_subplot()
    finite = [u for s in drawn for u in s.ulps if math.isfinite(u)]
    top = max([1.0, *finite]) * 4  # where an infinite distance is drawn
    for s in drawn:
        y = [u if math.isfinite(u) else top for u in s.ulps]
        (line,) = ax.plot(s.steps, y, marker="o", markersize=3, label=s.label)
        infinite = [(t, top) for t, u in zip(s.steps, s.ulps, strict=True) if not math.isfinite(u)]
        if infinite:
            ax.plot(*zip(*infinite, strict=True), "x", color=line.get_color(), markersize=9)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(bottom=-0.1, top=top * 2)
    ax.set_xlim(0.5, max([1, report.steps]) + 0.5)
    ax.set_xlabel("step")
    ax.set_ylabel("max ULP distance from the recording (0: bitwise)")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(_title(report), fontsize=9, loc="left")
    if drawn:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return fig


def plot(report: AuditReport | ModelReport, path: str | os.PathLike[str]) -> None:
    """Write :func:`figure` to ``path`` as a PNG.

    Raises:
        ImportError: matplotlib is not installed.
        OSError: the file cannot be written.
    """
    figure(report).savefig(os.fspath(path), format="png", dpi=100)


def _title(report: AuditReport | ModelReport) -> str:
    lines: Sequence[str] = textwrap.wrap(report.verdict, 140, max_lines=3, placeholder=" ...")
    return "\n".join([f"nagref audit {report.source}", *lines])
