"""The live workers the framework suites share: one per convention and worker variant."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from nagref.live import Worker, worker_variant

#: ``live_worker(convention, variant)``: the running worker that serves that variant.
LiveWorker = Callable[[str, str], Worker]


@pytest.fixture(scope="session")
def live_worker() -> Iterator[LiveWorker]:
    """Start each worker once, on first use, for the whole session; close them all at its end."""
    workers: dict[tuple[str, str | None], Worker] = {}

    def get(convention: str, variant: str) -> Worker:
        key = (convention, worker_variant(convention, variant))
        if key not in workers:
            workers[key] = Worker(convention, key[1])
        return workers[key]

    yield get
    for worker in workers.values():
        worker.close()
