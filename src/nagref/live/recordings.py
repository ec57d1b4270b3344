"""Golden trajectories recorded from the live frameworks, as exact hex floats.

One text file per convention, variant and dtype. Each case records its
specification, the framework's version, the inputs (initial parameters and
every gradient) and the framework's parameters and state after every step.
Every float is written with ``float.hex`` (``nan``, ``inf`` and ``-inf`` as
such), so the files round-trip bit for bit, except for NaN payloads::

    nagref-vectors 1
    framework torch 2.13.0+cpu
    case {"convention": "pytorch", ...}
    initial 0x1.8p-1 -0x1.0p+0
    grad 1 0x1.0p-2 0x0.0p+0
    param 1 ...
    state 1 ... | none
    end

``python -m nagref.live.recordings DIR [CASES]`` records them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .cases import VARIANTS, Spec, arrays, random_spec
from .suite import Trajectory, Worker

__all__ = ["Recorded", "read", "record", "write"]

MAGIC = "nagref-vectors 1"


@dataclass(frozen=True)
class Recorded:
    """One recorded case: its spec, inputs, and the framework's trajectory."""

    framework: str
    spec: Spec
    initial: npt.NDArray[Any]
    grads: npt.NDArray[Any]
    trajectory: Trajectory


def _hex(values: npt.NDArray[Any]) -> str:
    return " ".join(
        "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf") if np.isinf(v) else float(v).hex()
        for v in values.reshape(-1).tolist()
    )


def _parse(text: str, dtype: str, shape: tuple[int, ...]) -> npt.NDArray[Any]:
    words = text.split()
    values = [float(w) if w in ("nan", "inf", "-inf") else float.fromhex(w) for w in words]
    return np.array(values, dtype=np.float64).astype(dtype).reshape(shape)


def write(path: Path, cases: list[Recorded]) -> None:
    """Write ``cases`` (all of one convention, variant and dtype) to ``path``."""
    lines = [MAGIC]
    for case in cases:
        lines.append(f"framework {case.framework}")
        lines.append(f"case {json.dumps(case.spec.to_json(), sort_keys=True)}")
        lines.append(f"initial {_hex(case.initial)}".rstrip())
        for t, (g, (p, s)) in enumerate(zip(case.grads, case.trajectory, strict=True), 1):
            lines.append(f"grad {t} {_hex(g)}".rstrip())
            lines.append(f"param {t} {_hex(p)}".rstrip())
            lines.append(f"state {t} none" if s is None else f"state {t} {_hex(s)}".rstrip())
        lines.append("end")
    path.write_text("\n".join(lines) + "\n")


def read(path: Path) -> list[Recorded]:
    """The cases in a file written by :func:`write`."""
    lines = path.read_text().splitlines()
    if not lines or lines[0] != MAGIC:
        raise ValueError(f"{path}: not a nagref vectors file (first line {lines[:1]!r})")
    cases: list[Recorded] = []
    i = 1
    while i < len(lines):
        framework = lines[i].removeprefix("framework ")
        spec = Spec.from_json(json.loads(lines[i + 1].removeprefix("case ")))
        initial = _parse(lines[i + 2].removeprefix("initial"), spec.dtype, spec.shape)
        grads, trajectory = [], []
        i += 3
        for t in range(1, spec.steps + 1):
            grads.append(_parse(lines[i].removeprefix(f"grad {t}"), spec.dtype, spec.shape))
            param = _parse(lines[i + 1].removeprefix(f"param {t}"), spec.dtype, spec.shape)
            state_text = lines[i + 2].removeprefix(f"state {t}").strip()
            state = None if state_text == "none" else _parse(state_text, spec.dtype, spec.shape)
            trajectory.append((param, state))
            i += 3
        if lines[i] != "end":
            raise ValueError(f"{path}: line {i + 1}: expected 'end', got {lines[i][:40]!r}")
        i += 1
        stacked = np.stack(grads) if grads else np.zeros((0, *spec.shape), spec.dtype)
        cases.append(Recorded(framework, spec, initial, stacked, trajectory))
    return cases


def record(directory: Path, cases: int, seed: int = 2026) -> list[Path]:
    """Record ``cases`` cases per convention, variant and dtype from the live frameworks."""
    rng = np.random.default_rng(seed)
    written = []
    for convention, variants in VARIANTS.items():
        for variant, dtypes in variants.items():
            worker = Worker(convention, variant if convention == "keras" else None)
            for dtype in dtypes:
                recorded = []
                for k in range(cases):
                    spec = random_spec(rng, convention, variant, dtype, max_steps=40)
                    if k == 0:  # always one run with special values and a SIMD tail
                        spec = replace(spec, shape=(37,), special=0.1)
                    initial, grads = arrays(spec)
                    with np.errstate(all="ignore"):
                        trajectory = worker.run(spec)
                    recorded.append(Recorded(worker.version, spec, initial, grads, trajectory))
                path = directory / f"{convention}-{variant}-{dtype}.txt"
                write(path, recorded)
                written.append(path)
            worker.close()
    return written


if __name__ == "__main__":
    for written_path in record(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 4):
        print(written_path)
