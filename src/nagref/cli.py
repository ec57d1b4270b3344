"""The ``nagref`` command line (also ``python -m nagref``).

Exit codes: 0 when every check passes, 1 when a check fails, 2 on bad
arguments (one line on standard error, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from . import __version__
from .conformance import DTYPES, format_table, run, theory, verdict
from .conformance.live.table import format_live_table, run_live, stderr_progress

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _integer(minimum: int, wanted: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``, described as ``wanted``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


_positive_int = _integer(1, "a positive integer")
_non_negative_int = _integer(0, "an integer >= 0")


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
        type=_positive_int,
        default=100,
        metavar="N",
        help="steps per problem (default: 100)",
    )
    conformance.add_argument(
        "--cases",
        type=_non_negative_int,
        default=20,
        metavar="N",
        help="random cases per framework convention, variant and dtype, run against "
        "the installed frameworks (default: 20; 0 skips them)",
    )
    conformance.add_argument(
        "--theory",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check the rules against the theory on quadratics: linear rates, stability "
        "edges, O(1/k²) bounds (default: on)",
    )
    conformance.add_argument(
        "--dtype",
        action="append",
        choices=DTYPES,
        metavar="DTYPE",
        help=f"a dtype to check, repeatable; one of {', '.join(DTYPES)} (default: all)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    rows = run(steps=args.steps, dtypes=args.dtype or DTYPES)
    print(format_table(rows))
    print()
    print(verdict(rows))
    passed = all(row.passed for row in rows)
    if args.theory:
        checks = theory.rates(), theory.edges(), theory.bounds()
        held, line = theory.verdict(*checks)
        print()
        print(theory.format_theory(*checks))
        print()
        print(line)
        passed = passed and held
    if args.cases:
        live = run_live(args.cases, progress=stderr_progress if sys.stderr.isatty() else None)
        if sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K")
        print()
        print(format_live_table(live))
        failed = [r for r in live if not r.passed]
        ran = sum(r.cases for r in live)
        print()
        if failed:
            differ = sum(r.cases - r.bitwise for r in failed)
            print(f"FAIL: {differ} of {ran} live cases not bitwise, in {len(failed)} rows")
        else:
            print(f"PASS: {ran} live cases, every one bitwise")
        passed = passed and not failed
    sys.stdout.flush()
    return 0 if passed else 1
