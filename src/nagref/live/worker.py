"""A worker process that runs one framework on cases sent as JSON lines.

``python -m nagref.live.worker CONVENTION [VARIANT]`` loads the
convention's live driver (its registry record names it; see
:mod:`nagref.live.drivers`), prints the framework's name and version as a
JSON line, then reads one :class:`~.cases.Spec` per line on stdin and
answers, per case, one JSON line: the parameters and the state after every
step, as raw bytes in base64, or an error message. It exits at the end of
its input.

Where the framework's own package is not installed, the first line is
``{"missing": "No module named 'torch'"}`` instead; any other failure to
start is a traceback on stderr and a non-zero exit. The worker ignores
SIGINT (its parent handles Ctrl-C and ends it) and, on Linux, dies with its
parent.

Test hook: ``NAGREF_LIVE_FAULT`` makes workers fail on purpose, so that the
suite's handling of broken workers can be tested without breaking a
framework. It holds comma-separated ``CONVENTION[/VARIANT]:KIND[:N]``
(``*`` for every convention), KIND one of ``missing`` (the framework is
not installed), ``import`` (its import raises), ``exit`` (exit code 3),
``crash`` (SIGKILL), ``stop`` (SIGSTOP) or ``hang`` (sleep forever): at
start-up, or with ``:N`` on receiving case N + 1.
"""

from __future__ import annotations

import base64
import ctypes
import importlib
import importlib.util
import json
import os
import re
import signal
import sys
import time
from typing import Any

import numpy as np

from ..conventions import lookup
from .cases import Spec

#: the environment variable of the test hook (see the module's docstring)
FAULT = "NAGREF_LIVE_FAULT"
#: the parent's process id, set by :class:`~.suite.Worker`
PARENT = "NAGREF_LIVE_PARENT"


def _encode(x: np.ndarray | None) -> str | None:
    return None if x is None else base64.b64encode(np.ascontiguousarray(x).tobytes()).decode()


def _say(message: dict[str, Any]) -> None:
    """One JSON line on stdout, in one write (stdout may be unbuffered)."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


#: pip names (normalised) whose top-level module is named otherwise
_MODULES = {"scikit_learn": "sklearn", "paddlepaddle": "paddle"}


def framework_modules(requirement: str) -> set[str]:
    """The top-level modules of a convention's ``requirement`` (pip names)."""
    names = [re.split(r"[=<>!~\[;]", item)[0] for item in requirement.split()]
    # tensorflow-cpu installs tensorflow
    normalised = (name.lower().replace("-", "_").removesuffix("_cpu") for name in names)
    return {_MODULES.get(name, name) for name in normalised}


def _missing(error: ModuleNotFoundError, requirement: str) -> str | None:
    """The framework's own top-level package that ``error`` says is not installed, if any."""
    top = (error.name or "").partition(".")[0]
    if top in framework_modules(requirement) and importlib.util.find_spec(top) is None:
        return top
    return None


def fault(convention: str, variant: str | None, hook: str) -> tuple[str, int | None] | None:
    """The test hook's fault for this worker: its kind, and after how many cases."""
    for item in hook.split(","):
        where, _, rest = item.strip().partition(":")
        kind, _, after = rest.partition(":")
        name, _, only = where.partition("/")
        if name in ("*", convention) and only in ("", variant):
            return kind, int(after) if after else None
    return None


def _strike(kind: str, requirement: str) -> None:
    """Fail as the test hook asks."""
    if kind == "missing":  # the driver's import of the framework then finds nothing
        for name in framework_modules(requirement):
            sys.modules[name] = None  # type: ignore[assignment]
        return
    if kind == "import":
        raise ImportError(f"{FAULT}: the framework's import raised")
    if kind == "exit":
        sys.stderr.write(f"{FAULT}: exiting with code 3\n")
        sys.stderr.flush()
        os._exit(3)
    if kind in ("crash", "stop"):
        os.kill(os.getpid(), signal.SIGKILL if kind == "crash" else signal.SIGSTOP)
    while kind == "hang":
        time.sleep(60)


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when its parent dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - no prctl here
        return
    parent = os.environ.get(PARENT, "")
    if parent.isdigit() and os.getppid() != int(parent):
        os._exit(1)  # the parent died before prctl took effect


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends us
    _die_with_parent()
    convention = lookup(argv[0])
    variant = argv[1] if len(argv) > 1 else None
    planned = fault(convention.name, variant, os.environ.get(FAULT, ""))
    try:
        if planned is not None and planned[1] is None:
            _strike(planned[0], convention.requirement)
        driver = importlib.import_module(convention.driver)
        version, run = driver.start(variant)
    except ModuleNotFoundError as error:
        top = _missing(error, convention.requirement)
        if top is None:
            raise
        _say({"missing": f"No module named {top!r}"})
        return 0
    _say({"version": version})
    for n, line in enumerate(sys.stdin):
        if planned is not None and planned[1] == n:
            _strike(planned[0], convention.requirement)
        try:  # a malformed line is answered too, so the suite stays in step
            steps = run(Spec.from_json(json.loads(line)))
            reply: dict[str, Any] = {"steps": [[_encode(p), _encode(s)] for p, s in steps]}
        except Exception as error:  # reported to the caller, who decides
            reply = {"error": f"{type(error).__name__}: {error}"}
        _say(reply)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
