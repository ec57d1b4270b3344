"""nagref.fastpaths._views: a library's arrays through the NumPy kernel as views, leaf by leaf."""

from __future__ import annotations

from typing import Any

import numpy as np

from nagref import rules
from nagref._engine import execute
from nagref._engine.ir import Batch
from nagref._engine.kernels import disabled
from nagref.fastpaths import _views
from nagref.fastpaths import numpy as numpy_kernel


class Boxed:
    """Another library's array: an ndarray inside, viewable unless told otherwise."""

    def __init__(self, value: np.ndarray, viewable: bool = True) -> None:
        self.value, self.viewable = value, viewable


def _batch(monkeypatch: Any) -> Batch:
    """The batch the executor hands a kernel for a nag step on three leaves."""
    seen: list[Batch] = []

    def spy(batch: Batch) -> list[Any]:
        seen.append(batch)
        return [None] * len(batch.columns[0])

    monkeypatch.setattr(execute, "kernel_for", lambda xp: spy)
    rng = np.random.default_rng(0)
    leaves = [rng.standard_normal(n).astype(np.float32) for n in (5, 40, 1)]
    rules.nag(leaves, [x * 2 for x in leaves], [x / 2 for x in leaves], lr=0.1, momentum=0.9)
    monkeypatch.undo()
    return seen[0]


def test_viewed_leaves_run_in_one_batch_and_the_others_are_declined(monkeypatch: Any) -> None:
    batch = _batch(monkeypatch)
    boxed = batch._replace(
        columns=[[Boxed(x, viewable=k != 1) for k, x in enumerate(c)] for c in batch.columns]
    )
    wrapped: list[int] = []

    def wrap(new: list[np.ndarray]) -> list[Boxed]:
        wrapped.append(len(new))
        return [Boxed(x) for x in new]

    results = _views.run(boxed, lambda b: b.value if b.viewable else None, wrap)
    assert results[1] is None  # no view: the generic path runs it
    assert wrapped == [2 * len(batch.outputs)]  # the other two leaves' outputs, at once
    with disabled():
        p, g, v = (list(column) for column in batch.columns)
        generic = rules.nag(p, g, v, lr=0.1, momentum=0.9)
    for k in (0, 2):
        leaf = results[k]
        assert leaf is not None
        for got, want in zip(leaf, (generic[0][k], generic[1][k]), strict=True):
            assert isinstance(got, Boxed)
            assert got.value.tobytes() == np.asarray(want).tobytes()


def test_nothing_viewed_is_nothing_run(monkeypatch: Any) -> None:
    batch = _batch(monkeypatch)
    ran: list[Batch] = []
    monkeypatch.setattr(numpy_kernel, "run", lambda b: ran.append(b) or [])
    assert _views.run(batch, lambda x: None, lambda new: new) == [None] * 3
    assert ran == []
