"""Run cases on both sides and compare them element by element, bit for bit."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Any, NoReturn

import numpy as np
import numpy.typing as npt

from .._compare import bitwise_equal, ulp_distance
from .._compat import named_dtype
from ..conventions import lookup
from .cases import Spec, arrays
from .worker import PARENT

__all__ = [
    "CASE_TIMEOUT",
    "START_TIMEOUT",
    "CaseResult",
    "FrameworkError",
    "MissingFrameworkError",
    "Worker",
    "WorkerError",
    "WorkerFailedError",
    "check",
    "compare",
    "run_nagref",
]

Trajectory = list[tuple[npt.NDArray[Any], npt.NDArray[Any] | None]]


#: seconds a worker may take to import its framework, counted from when it is waited for
START_TIMEOUT = 300.0
#: seconds a worker may take to answer one case
CASE_TIMEOUT = 300.0
_TAIL = 4096  # the bytes of a worker's stderr kept, for the reason it failed


class WorkerError(RuntimeError):
    """A worker cannot run cases: its framework is missing, or the worker failed."""


class MissingFrameworkError(WorkerError):
    """The framework's own package is not installed (the worker said so)."""


class WorkerFailedError(WorkerError):
    """The worker died, or timed out and was killed; the message says which and why."""


class FrameworkError(RuntimeError):
    """The framework raised on one case; the worker serves the next."""


class Worker:
    """A live framework in a child process (see :mod:`.worker`).

    The process starts at construction; :meth:`wait` (or the first case)
    waits for its framework to import, so several workers can start at once.
    ``start_timeout`` bounds that wait and ``case_timeout`` each case's reply
    (and any stall within it), in seconds; a worker past either is killed and
    :class:`WorkerFailedError` raised. The worker has its own session (Ctrl-C
    reaches only this process) and, on Linux, dies with the thread that
    started it. End it with :meth:`close`.
    """

    def __init__(
        self,
        convention: str,
        variant: str | None = None,
        *,
        wait: bool = True,
        start_timeout: float = START_TIMEOUT,
        case_timeout: float = CASE_TIMEOUT,
    ) -> None:
        lookup(convention)  # an unknown convention is an error here, not in the child
        args = [sys.executable, "-m", "nagref.live.worker", convention]
        if variant is not None:
            args.append(variant)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
        env[PARENT] = str(os.getpid())
        self._timeouts = (start_timeout, case_timeout)
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        assert self._process.stdout is not None
        assert self._process.stderr is not None
        self._stdout = self._process.stdout.fileno()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._stdout, selectors.EVENT_READ)
        self._stderr = _Tail(self._process.stderr)
        self._stderr.start()
        self._buffer = bytearray()
        self._deadline = 0.0
        self._version: str | None = None
        self._failure: WorkerError | None = None
        self._ended = False
        if wait:
            self.wait()

    def wait(self) -> str:
        """Wait until the framework has imported; return its name and version.

        Raises:
            MissingFrameworkError: the framework is not installed.
            WorkerFailedError: the worker died or did not start in time.
        """
        if self._version is None:
            timeout = self._timeouts[0]
            reply = self._read(time.monotonic() + timeout, timeout, "while starting")
            if "missing" in reply:
                self._fail(MissingFrameworkError(str(reply["missing"])))
            if "version" not in reply:
                self._fail(WorkerFailedError(f"worker sent {str(reply)[:80]!r} while starting"))
            self._version = str(reply["version"])
        return self._version

    @property
    def version(self) -> str:
        return self.wait()

    def _failed(self) -> None:
        """Raise the worker's failure again, if it failed."""
        if self._failure is not None:
            raise type(self._failure)(str(self._failure))

    def _read(self, deadline: float, timeout: float, when: str) -> dict[str, Any]:
        """The next JSON line, by ``deadline``; a dead or late worker raises WorkerFailedError."""
        self._failed()
        while (end := self._buffer.find(b"\n")) < 0:
            # past the deadline, what has arrived is still read (select polls)
            if self._selector.select(max(0.0, deadline - time.monotonic())):
                chunk = os.read(self._stdout, 1 << 16)
                if not chunk:
                    self._fail(self._death(when))
                self._buffer += chunk
                # a reply under way has ``timeout`` for each further piece
                deadline = max(deadline, time.monotonic() + timeout)
            elif time.monotonic() >= deadline:
                late = f"worker timed out {when}: no reply within {timeout:g} s; killed"
                self._fail(WorkerFailedError(late))
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            self._fail(WorkerFailedError(f"worker sent {line[:80]!r} {when}, not a JSON object"))
        return reply

    def _death(self, when: str) -> WorkerFailedError:
        """Why the worker's output ended: its exit code or signal, and its last words."""
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # it closed its output and lives on
            self._process.kill()
            code = self._process.wait()
        how = f"exit code {code}"
        if code < 0:
            try:
                how = f"killed by signal {-code} ({signal.Signals(-code).name})"
            except ValueError:
                how = f"killed by signal {-code}"
        self._stderr.join(timeout=2)
        last = self._stderr.last_line()
        return WorkerFailedError(f"worker died {when}: {how}" + (f": {last}" if last else ""))

    def _fail(self, error: WorkerError) -> NoReturn:
        self._failure = error
        self.kill()
        raise error

    def run(self, spec: Spec) -> Trajectory:
        """The framework's parameters and state after every step of ``spec``."""
        self.submit(spec)
        return self.result(spec)

    def submit(self, spec: Spec) -> None:
        """Start ``spec`` in the worker and return at once.

        Collect it with :meth:`result`; in between, the caller's own work runs
        in parallel with the worker's (:func:`check` runs nagref there).
        """
        self.wait()
        self._failed()
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(spec.to_json()).encode() + b"\n")
            self._process.stdin.flush()
        except OSError:  # a broken pipe: the worker is gone
            self._fail(self._death("during a case"))
        self._deadline = time.monotonic() + self._timeouts[1]

    def result(self, spec: Spec) -> Trajectory:
        """The trajectory of the ``spec`` submitted last.

        Raises:
            FrameworkError: the framework raised on ``spec``.
            WorkerFailedError: the worker died or did not answer in time.
        """
        reply = self._read(self._deadline, self._timeouts[1], "during a case")
        if "error" in reply:
            raise FrameworkError(f"the framework raised {reply['error']} on {spec}")
        dtype = np.dtype(named_dtype(np, spec.dtype))
        state = np.dtype(named_dtype(np, spec.state_dtype))
        return [
            (_decode(p, dtype, spec.shape), _decode(s, state, spec.shape))
            for p, s in reply["steps"]
        ]

    def close(self, timeout: float = 30.0) -> None:
        """End the worker: its input ends, and past ``timeout`` seconds it is killed."""
        if not self._ended:
            with contextlib.suppress(OSError):
                assert self._process.stdin is not None
                self._process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=timeout)
        self.kill()

    def kill(self) -> None:
        """Kill the worker at once (a stopped one too) and reap it; idempotent."""
        if self._ended:
            return
        self._ended = True
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()
        self._process.wait()
        self._selector.close()
        for pipe in (self._process.stdin, self._process.stdout):
            with contextlib.suppress(OSError):
                assert pipe is not None
                pipe.close()


class _Tail(threading.Thread):
    """Drains a pipe to its end, keeping only its last bytes: the pipe never fills."""

    def __init__(self, pipe: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self._pipe = pipe
        self.data = b""

    def run(self) -> None:
        with self._pipe:
            while chunk := os.read(self._pipe.fileno(), 1 << 16):
                self.data = (self.data + chunk)[-_TAIL:]

    def last_line(self, limit: int = 200) -> str:
        """The last non-blank line, stripped, one printable line of at most ``limit`` chars."""
        lines = [line.strip() for line in self.data.decode(errors="replace").splitlines()]
        last = next((line for line in reversed(lines) if line), "")
        last = "".join(c if c.isprintable() else " " for c in last)
        return last if len(last) <= limit else last[: limit - 3] + "..."


def _decode(text: str | None, dtype: np.dtype[Any], shape: tuple[int, ...]) -> Any:
    if text is None:
        return None
    return np.frombuffer(base64.b64decode(text), dtype=dtype).reshape(shape).copy()


def check(worker: Worker, spec: Spec) -> CaseResult:
    """Run ``spec`` on the framework and on nagref at once, and compare them.

    The framework's reply is read even where nagref raised, so that the next
    case is in step; nagref's own error is then the one raised.
    """
    worker.submit(spec)
    try:
        with np.errstate(all="ignore"):  # inf and nan are part of the cases
            ours = run_nagref(spec)
    except Exception:
        with contextlib.suppress(FrameworkError, WorkerError):
            worker.result(spec)
        raise
    return compare(spec, worker.result(spec), ours)


def run_nagref(
    spec: Spec, inputs: tuple[npt.NDArray[Any], npt.NDArray[Any]] | None = None
) -> Trajectory:
    """nagref's convention on ``spec`` (or on recorded ``inputs``), step by step."""
    param, grads = arrays(spec) if inputs is None else inputs
    convention = lookup(spec.convention)
    variant = convention.variant(spec.variant)
    state_dtype = np.dtype(named_dtype(np, spec.state_dtype))
    state: Any = np.zeros(param.shape, state_dtype) if convention.first_state == "zeros" else None
    out: Trajectory = []
    for t, g in enumerate(grads):
        hypers = spec.hypers(t)
        param, state = convention.step(param, g, state, hypers, variant=variant, extra=spec.extra)
        out.append((param, state))
    return out


@dataclass(frozen=True)
class CaseResult:
    """How one case compared: elements checked, mismatching, and the worst ULP."""

    elements: int
    mismatches: int
    max_ulp: float
    first: str | None  # where the first mismatch is, for a failure message

    @property
    def bitwise(self) -> bool:
        return self.mismatches == 0


def compare(spec: Spec, live: Trajectory, ours: Trajectory) -> CaseResult:
    """Compare two trajectories, parameters and state, at every step."""
    elements = mismatches = 0
    worst = 0.0
    first = None
    if len(live) != len(ours):
        raise ValueError(f"{len(live)} steps against {len(ours)}")
    for t, ((lp, ls), (op, os_)) in enumerate(zip(live, ours, strict=True)):
        pairs: list[tuple[str, Any, Any]] = [("param", lp, op)]
        if (ls is None) != (os_ is None):
            raise AssertionError(f"step {t + 1}: state is {ls!r} live and {os_!r} in nagref")
        if ls is not None:
            pairs.append(("state", ls, os_))
        for name, left, right in pairs:
            a, b = np.asarray(left), np.asarray(right)
            same = bitwise_equal(a, b)
            elements += same.size
            bad = int(same.size - np.count_nonzero(same))
            if bad:
                mismatches += bad
                worst = max(worst, float(ulp_distance(a, b).max()))
                if first is None:
                    index = tuple(int(i) for i in np.argwhere(~same)[0])
                    first = (
                        f"step {t + 1}, {name}{list(index)}: framework {a[index]!r}, "
                        f"nagref {b[index]!r}"
                    )
    return CaseResult(elements, mismatches, worst, first)
