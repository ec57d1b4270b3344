"""Run cases on both sides and compare them element by element, bit for bit."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .._compare import bitwise_equal, ulp_distance
from ..conventions import lookup
from .cases import Spec, arrays

__all__ = ["CaseResult", "Worker", "check", "compare", "run_nagref"]

Trajectory = list[tuple[npt.NDArray[Any], npt.NDArray[Any] | None]]


class Worker:
    """A live framework in a child process (see :mod:`.worker`).

    The process starts at construction; :meth:`wait` (or the first case)
    waits for its framework to import, so several workers can start at once.
    """

    def __init__(self, convention: str, variant: str | None = None, *, wait: bool = True) -> None:
        lookup(convention)  # an unknown convention is an error here, not in the child
        args = [sys.executable, "-m", "nagref.live.worker", convention]
        if variant is not None:
            args.append(variant)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self._version: str | None = None
        if wait:
            self.wait()

    def wait(self) -> str:
        """Wait until the framework has imported; return its name and version.

        Raises:
            RuntimeError: the worker exited (the framework is not installed).
        """
        if self._version is None:
            self._version = str(self._read()["version"])
        return self._version

    @property
    def version(self) -> str:
        return self.wait()

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the framework worker exited; is the framework installed?")
        return dict(json.loads(line))

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
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(spec.to_json()) + "\n")
        self._process.stdin.flush()

    def result(self, spec: Spec) -> Trajectory:
        """The trajectory of the ``spec`` submitted last."""
        reply = self._read()
        if "error" in reply:
            raise RuntimeError(f"the framework raised {reply['error']} on {spec}")
        dtype = np.dtype(spec.dtype)
        return [
            (_decode(p, dtype, spec.shape), _decode(s, dtype, spec.shape))
            for p, s in reply["steps"]
        ]

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=60)


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
        with contextlib.suppress(RuntimeError):
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
    state: Any = np.zeros_like(param) if convention.first_state == "zeros" else None
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
