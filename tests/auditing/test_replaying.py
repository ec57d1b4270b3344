"""The replay: candidates stepped together, dropped where they leave, each step's max ULP kept."""

from __future__ import annotations

import numpy as np

from nagref.auditing import Trajectory
from nagref.auditing.candidates import Candidate
from nagref.auditing.replaying import replay


def _sgd(lr: float) -> Candidate:
    return Candidate(f"sgd {lr}", lambda p, g, s, t: (p - lr * g, s), np.zeros_like)


def test_each_candidate_keeps_its_history_until_it_is_dropped() -> None:
    g = np.ones((4, 3))
    params = np.cumsum(-0.5 * g, axis=0) + 1.0
    params[2, 1] = np.nextafter(params[2, 1], np.inf)  # 1 ULP off at step 3
    tr = Trajectory(np.ones(3), g, params, (0.5,) * 4, (0.0,) * 4, source="memory")
    out = {c.name: m for c, m in replay([_sgd(0.5), _sgd(0.25)], tr, 2.0)}
    near = out["sgd 0.5"]
    assert (near.status, near.history, near.steps_replayed) == ("within", (0.0, 0.0, 1.0, 0.0), 4)
    far = out["sgd 0.25"]
    assert far.status == "diverges"
    assert far.steps_replayed == 1  # dropped at step 1: its history ends there
    assert len(far.history) == 1
    assert far.history[0] == far.max_ulp > 2.0
    strict = {c.name: m for c, m in replay([_sgd(0.5)], tr, 0.0)}["sgd 0.5"]
    assert (strict.status, strict.history) == ("diverges", (0.0, 0.0, 1.0))


def test_a_candidate_that_cannot_run_has_no_history() -> None:
    def refuses(p: object, g: object, s: object, t: int) -> tuple[object, object]:
        raise ValueError("lr must be positive")

    tr = Trajectory(np.ones(2), np.ones((2, 2)), np.ones((2, 2)), (0.1, 0.1), (0.0, 0.0))
    ((_, m),) = replay([Candidate("no", refuses, np.zeros_like)], tr, 4.0)  # type: ignore[arg-type]
    assert (m.status, m.reason, m.history) == ("cannot run", "lr must be positive", ())
