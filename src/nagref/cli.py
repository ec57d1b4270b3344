"""The ``nagref`` command line (also ``python -m nagref``).

Exit codes: 0 when every check passes, 1 when a check fails (or checked
nothing), 2 on bad arguments (one line on standard error, no traceback),
130 on Ctrl-C and 143 on SIGTERM (one line; no live worker outlives it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from . import _audit_command, _dtypes, explaining, vectors
from ._version import __version__
from .live.suite import CASE_TIMEOUT, START_TIMEOUT
from .live.table import (
    format_live_table,
    frameworks,
    live_verdict,
    run_live,
    stderr_progress,
)
from .report import DTYPES, format_table, run, theory, verdict

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


def _one_line(text: str) -> str:
    """``text`` with every character that is not printable escaped: one line, always."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


#: the largest --steps, --cases and --ulps, and the longest timeout (seconds)
MAX_STEPS, MAX_CASES, MAX_ULPS, MAX_SECONDS = 100_000, 10_000, 2**53, 86_400.0


def _integer(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``minimum`` to ``maximum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # also a string of over 4300 digits
            value = minimum - 1
        if not minimum <= value <= maximum:
            wanted = f"an integer from {minimum} to {maximum}"
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {_shown(text)}")
        return value

    return parse


def _shown(text: str, limit: int = 40) -> str:
    """``text`` quoted, its middle cut out where it is long (a 5000-digit number, say)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[: limit // 2]!r}...{text[-limit // 2 :]!r} ({len(text)} characters)"


def _seconds(text: str) -> float:
    """An argparse type: a number of seconds, above 0 and at most a day."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_SECONDS:  # nan and inf too
        wanted = f"a number of seconds above 0 and at most {MAX_SECONDS:g}"
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {_shown(text)}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nagref",
        description="The reference for how SGD, momentum and Nesterov (NAG) update parameters.",
    )
    parser.add_argument("--version", action="version", version=f"nagref {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    conformance = commands.add_parser(
        "conformance",
        help="check the rules against the published formulas (NumPy only)",
        description="Run every rule on built-in problems and compare it, bit for bit, "
        "with the published formulas evaluated element by element.",
    )
    conformance.add_argument(
        "--steps",
        type=_integer(1, MAX_STEPS),
        default=100,
        metavar="N",
        help=f"steps per problem, 1 to {MAX_STEPS} (default: 100)",
    )
    conformance.add_argument(
        "--cases",
        type=_integer(0, MAX_CASES),
        default=10,
        metavar="N",
        help=f"random cases per framework convention, variant and dtype, 0 to {MAX_CASES}, "
        "run against the installed frameworks (default: 10; 0 skips them; none installed "
        "fails: nothing was checked)",
    )
    conformance.add_argument(
        "--timeout",
        type=_seconds,
        default=CASE_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds a live case may take before its worker is killed and its rows fail "
        f"(default: {CASE_TIMEOUT:g})",
    )
    conformance.add_argument(
        "--start-timeout",
        type=_seconds,
        default=START_TIMEOUT,
        metavar="SECONDS",
        help=f"seconds a framework may take to import, the same way (default: {START_TIMEOUT:g})",
    )
    conformance.add_argument(
        "--theory",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check the rules against the theory on quadratics: linear rates, stability "
        "edges, O(1/k²) bounds (default: on)",
    )
    conformance.add_argument("--json", action="store_true", help="print the report as JSON")
    conformance.add_argument(
        "--dtype",
        action="append",
        choices=DTYPES,
        metavar="DTYPE",
        help=f"a dtype to check, repeatable; one of {', '.join(DTYPES)} (default: all)",
    )
    out = commands.add_parser(
        "vectors",
        help="write language-neutral test vectors (one JSON file per case)",
        description="Write nagref's trajectories for every rule, formulation and framework "
        "convention as JSON test vectors, every float as an exact hex string and a decimal. "
        "The same command writes byte-identical files.",
    )
    out.add_argument("--out", required=True, dest="out_text", metavar="DIR", help="the directory")
    out.add_argument(
        "--convention",
        action="append",
        choices=tuple(vectors.CONVENTIONS),
        metavar="NAME",
        help=f"a convention, repeatable; one of {', '.join(vectors.CONVENTIONS)} (default: all)",
    )
    out.add_argument(
        "--dtype",
        action="append",
        choices=vectors.DTYPES,
        metavar="DTYPE",
        help=f"a dtype, repeatable; one of {', '.join(vectors.DTYPES)} (default: all)",
    )
    _audit_command.add_parser(commands, _integer(0, MAX_ULPS), MAX_ULPS)
    _explain_parser(commands)
    return parser


def _explain_parser(commands: Any) -> None:
    listing = commands.add_parser(
        "explain",
        help="the exact operations of a rule, formulation or convention, in order",
        description="Print the operations a rule, formulation or framework convention runs, in "
        "order: each with its rounding (fused or not, the dtype it computes in, flushing), the "
        "hyperparameters' casts and values, the first step, and the SIMD body and scalar tail "
        "where they differ. NAME is one of: " + ", ".join(explaining.names()) + ".",
    )
    listing.add_argument("name", metavar="NAME", help="e.g. nag, formulations.bengio, pytorch.sgd")
    listing.add_argument(
        "--dtype", default="float32", choices=_dtypes.NAMES, metavar="DTYPE",
        help=f"the storage dtype, one of {', '.join(_dtypes.NAMES)} (default: float32)",
    )  # fmt: skip
    listing.add_argument(
        "--variant", metavar="V", help="a convention's variant (default: its first)"
    )
    listing.add_argument("--nesterov", action="store_true", help="Nesterov's form")
    listing.add_argument("--lr", type=float, default=0.01, help="the learning rate (default 0.01)")
    listing.add_argument("--momentum", type=float, default=0.9, help="the momentum (default 0.9)")
    listing.add_argument("--dampening", type=float, default=0.0, help="PyTorch's dampening")
    listing.add_argument("--weight-decay", type=float, default=None, help="the weight decay")
    listing.add_argument("--maximize", action="store_true", help="PyTorch's maximize")
    listing.add_argument("--json", action="store_true", help="print the listing as JSON")


def _explain(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        explanation = explaining.explain(
            args.name,
            dtype=args.dtype,
            variant=args.variant,
            lr=args.lr,
            momentum=args.momentum,
            nesterov=args.nesterov,
            dampening=args.dampening,
            weight_decay=args.weight_decay,
            maximize=args.maximize,
        )
    except (ValueError, TypeError, RuntimeError) as error:
        parser.error(str(error).splitlines()[0])
    print(json.dumps(explanation.to_json(), indent=1) if args.json else explanation.text())
    return 0


class _Terminated(BaseException):
    """SIGTERM, raised where the command is, so that its ``finally`` blocks run."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """For the command's duration, SIGTERM raises :class:`_Terminated` (once)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can handle signals
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the next one waits for the cleanup
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        with _sigterm_raises():
            if args.command == "vectors":
                return _vectors(parser, args)
            if args.command == "audit":
                return _audit_command.run(parser, args)
            if args.command == "explain":
                return _explain(parser, args)
            return _conformance(args)
    except KeyboardInterrupt:
        return _stopped("interrupted", 130)
    except _Terminated:
        return _stopped("terminated", 143)


def _stopped(why: str, code: int) -> int:
    """One line on standard error (after clearing a progress bar) and the exit code."""
    sys.stdout.flush()
    sys.stderr.write(("\r\x1b[K" if sys.stderr.isatty() else "") + f"nagref: {why}\n")
    return code


def _vectors(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    directory = Path(args.out_text)
    if not str(args.out_text):
        parser.error("argument --out: expected a directory, got ''")
    if "\0" in args.out_text:
        parser.error(f"argument --out: {args.out_text!r} holds a NUL character")
    try:
        exists_elsewhere = directory.exists() and not directory.is_dir()
    except OSError as error:  # a name too long, say
        parser.error(f"argument --out: cannot use {str(directory)!r}: {error.strerror}")
    if exists_elsewhere:
        parser.error(f"argument --out: {str(directory)!r} exists and is not a directory")
    conventions = None if args.convention is None else tuple(args.convention)
    dtypes = None if args.dtype is None else tuple(args.dtype)
    try:
        paths = vectors.write(directory, conventions, dtypes)
    except OSError as error:
        parser.error(f"argument --out: cannot write to {str(directory)!r}: {error.strerror}")
    print(f"wrote {len(paths)} test vectors to {directory}")
    return 0


def _conformance(args: argparse.Namespace) -> int:
    rows = run(steps=args.steps, dtypes=args.dtype or DTYPES)
    published_ok = all(row.passed for row in rows)
    report: dict[str, Any] = {
        "published": {
            "rows": [asdict(r) for r in rows],
            "passed": published_ok,
            "verdict": verdict(rows),
        }
    }
    text = [format_table(rows), "", verdict(rows)]
    passed = published_ok
    if args.theory:
        checks = theory.rates(), theory.edges(), theory.bounds()
        held, line = theory.verdict(*checks)
        report["theory"] = {
            "rates": [asdict(r) for r in checks[0]],
            "edges": [asdict(r) for r in checks[1]],
            "bounds": [asdict(r) for r in checks[2]],
            "passed": held,
            "verdict": line,
        }
        text += ["", theory.format_theory(*checks), "", line]
        passed = passed and held
    if args.cases:
        bar = stderr_progress if sys.stderr.isatty() else None
        live = run_live(
            args.cases, progress=bar, start_timeout=args.start_timeout, case_timeout=args.timeout
        )
        if bar is not None:
            sys.stderr.write("\r\x1b[K")
        found, missing = frameworks(live)
        live_passed, line = live_verdict(live)
        report["live"] = {
            "frameworks_found": found,
            "frameworks_missing": missing,
            "rows": [asdict(r) for r in live],
            "passed": live_passed,
            "verdict": line,
        }
        text += [
            "",
            "frameworks found: " + ("; ".join(found) or "none"),
            "frameworks not found: " + ("; ".join(missing) or "none"),
            "",
            format_live_table(live),
            "",
            line,
        ]
        passed = passed and live_passed
    report["passed"] = passed
    print(json.dumps(report, indent=1, default=str) if args.json else "\n".join(text))
    sys.stdout.flush()
    return 0 if passed else 1
