"""``nagref audit``: its arguments, and the command (for :mod:`nagref.cli`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import auditing

__all__ = ["add_parser", "run"]


def add_parser(commands: Any, ulps: Callable[[str], int], max_ulps: int) -> None:
    """Add ``audit`` to ``commands``; ``ulps`` parses ``--ulps`` (0 to ``max_ulps``)."""
    trail = commands.add_parser(
        "audit",
        help="whose SGD, momentum or NAG produced a recorded trajectory?",
        description="Replay every rule, formulation and framework convention on a recorded "
        "trajectory's gradients and rank them: bitwise matches, matches within K ULP, and where "
        "the rest leave the recording. Exit code 0 when some candidate matches bit for bit, 1 "
        "when none does, 2 on bad input.",
    )
    trail.add_argument(
        "trajectory",
        type=Path,
        metavar="TRAJECTORY",
        help="a whole run's .trajectory file (nagref.record), a .npz file (initial, grads, "
        "params; optionally lr and momentum, else inferred, nesterov, dampening, weight_decay) or "
        "a test-vector .json file",
    )
    trail.add_argument("--json", action="store_true", help="print the report as JSON")
    trail.add_argument(
        "--ulps",
        type=ulps,
        default=4,
        metavar="K",
        help=f"the distance that counts as a near match, 0 to 2**53 = {max_ulps} (default: 4)",
    )
    trail.add_argument(
        "--infer",
        action="store_true",
        help="infer lr and momentum from the first two steps even where the file records them "
        "(a constant lr and momentum: the shortest decimals that reproduce those steps bit for "
        "bit under each candidate's recipe); an lr or momentum the file lacks is always inferred",
    )
    trail.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="also draw each candidate's ULP distance from the recording against the step, as "
        "a PNG: one audit, one file (needs matplotlib: pip install 'nagref[plot]')",
    )


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Audit ``args.trajectory``: print the report, draw ``--plot``; return the exit code."""
    if "\0" in str(args.trajectory):
        parser.error(f"argument TRAJECTORY: {str(args.trajectory)!r} holds a NUL character")
    ulps, shown = float(args.ulps), None if args.json else _progress
    if args.plot is not None:
        _check_plot(parser, args.plot)
    try:
        report = auditing.audit(
            args.trajectory, tolerance_ulps=ulps, infer=args.infer, progress=shown
        )
    except auditing.TrajectoryError as error:
        parser.error(str(error))
    finally:
        if sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K")  # the progress line
    text = json.dumps(report.to_json(), indent=1) if args.json else auditing.format_report(report)
    print(text)
    if args.plot is not None:
        try:
            auditing.plot(report, args.plot)
        except OSError as error:
            parser.error(
                f"argument --plot: cannot write {str(args.plot)!r}: {error.strerror or error}"
            )
    return int(report.exit_code)


def _check_plot(parser: argparse.ArgumentParser, path: Path) -> None:
    """Refuse a --plot path that cannot be a PNG, or drawing without matplotlib, up front."""
    if "\0" in str(path):
        parser.error(f"argument --plot: {str(path)!r} holds a NUL character")
    if path.suffix.lower() != ".png":
        parser.error(f"argument --plot: expected a .png file name, got {str(path)!r}")
    if (why := auditing.matplotlib_missing()) is not None:
        parser.error(f"argument --plot: {why}")


def _progress(done: int, total: int, tensor: str) -> None:
    """The whole-model audit's progress, on a terminal's standard error."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\x1b[Kaudit: tensor {done + 1} of {total}: {tensor[:60]}")
        sys.stderr.flush()
