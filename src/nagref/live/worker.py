"""A worker process that runs one framework on cases sent as JSON lines.

``python -m nagref.live.worker CONVENTION [VARIANT]`` loads the
convention's live driver (its registry record names it; see
:mod:`nagref.live.drivers`), prints the framework's name and version as a
JSON line, then reads one :class:`~.cases.Spec` per line on stdin and
answers, per case, one JSON line: the parameters and the state after every
step, as raw bytes in base64, or an error message.
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
from typing import Any

import numpy as np

from ..conventions import lookup
from .cases import Spec


def _encode(x: np.ndarray | None) -> str | None:
    return None if x is None else base64.b64encode(np.ascontiguousarray(x).tobytes()).decode()


def main(argv: list[str]) -> int:
    convention = lookup(argv[0])
    driver = importlib.import_module(convention.driver)
    version, run = driver.start(argv[1] if len(argv) > 1 else None)
    print(json.dumps({"version": version}), flush=True)
    for line in sys.stdin:
        try:  # a malformed line is answered too, so the suite stays in step
            steps = run(Spec.from_json(json.loads(line)))
            reply: dict[str, Any] = {"steps": [[_encode(p), _encode(s)] for p, s in steps]}
        except Exception as error:  # reported to the caller, who decides
            reply = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
