"""The ``nagref`` command line (also ``python -m nagref``).

Exit codes: 0 when every check passes, 1 when a check fails, 2 on bad
arguments (one line on standard error, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from . import _dtypes, auditing, explaining, vectors
from ._version import __version__
from .live.table import format_live_table, frameworks, run_live, stderr_progress
from .report import DTYPES, format_table, run, theory, verdict

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
        default=10,
        metavar="N",
        help="random cases per framework convention, variant and dtype, run against "
        "the installed frameworks (default: 10; 0 skips them)",
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
        help="a .npz file (initial, grads, params, lr, momentum; optionally nesterov, "
        "dampening, weight_decay) or a test-vector .json file",
    )
    trail.add_argument("--json", action="store_true", help="print the report as JSON")
    trail.add_argument(
        "--ulps",
        type=_non_negative_int,
        default=4,
        metavar="K",
        help="the distance that counts as a near match (default: 4)",
    )
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "vectors":
        return _vectors(parser, args)
    if args.command == "audit":
        return _audit(parser, args)
    if args.command == "explain":
        return _explain(parser, args)
    return _conformance(args)


def _audit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        report = auditing.audit(args.trajectory, tolerance_ulps=float(args.ulps))
    except auditing.TrajectoryError as error:
        parser.error(str(error))
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    else:
        print(auditing.format_report(report))
    return report.exit_code


def _vectors(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    directory = Path(args.out_text)
    if not str(args.out_text):
        parser.error("argument --out: expected a directory, got ''")
    if directory.exists() and not directory.is_dir():
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
        live = run_live(args.cases, progress=bar)
        if bar is not None:
            sys.stderr.write("\r\x1b[K")
        found, missing = frameworks(live)
        failed = [r for r in live if not r.passed]
        ran = sum(r.cases for r in live)
        if failed:
            differ = sum(r.cases - r.bitwise for r in failed)
            line = f"FAIL: {differ} of {ran} live cases not bitwise, in {len(failed)} rows"
        else:
            line = f"PASS: {ran} live cases, every one bitwise"
        report["live"] = {
            "frameworks_found": found,
            "frameworks_missing": missing,
            "rows": [asdict(r) for r in live],
            "passed": not failed,
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
        passed = passed and not failed
    report["passed"] = passed
    print(json.dumps(report, indent=1, default=str) if args.json else "\n".join(text))
    sys.stdout.flush()
    return 0 if passed else 1
