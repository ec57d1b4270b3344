"""The rules on a dask.distributed cluster: 200M float32 elements, checked chunk by chunk."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from dask.distributed import Client, LocalCluster

import nagref

N, CHUNK, STEPS = 200_000_000, 10_000_000, 10
LR, MU = 0.1, 0.9


def _numpy_nag(x: np.ndarray) -> np.ndarray:
    """The same 10 NAG steps on one chunk, in NumPy, in the documented order."""
    v = np.zeros_like(x)
    lr, mu = np.float32(LR), np.float32(MU)
    for _ in range(STEPS):
        g = np.float32(0.5) * (x - mu * v)  # ∇(¼ x²) at the look-ahead point
        v = mu * v + lr * g
        x = x - v
    return x


@pytest.mark.filterwarnings("ignore::UserWarning")  # distributed's port and memory notices
def test_two_workers_update_a_200m_element_vector_bit_for_bit() -> None:
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit="6GiB",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        start = da.random.default_rng(0).standard_normal(N, chunks=CHUNK, dtype=np.float32)
        w, v = start, da.zeros(N, chunks=CHUNK, dtype=np.float32)
        for _ in range(STEPS):
            g = 0.5 * nagref.lookahead(w, v, momentum=MU)
            w, v = nagref.nag(w, g, v, lr=LR, momentum=MU)
            w, v = client.persist([w, v])
        assert w.dtype == np.float32
        assert w.numblocks == (N // CHUNK,)
        for i in range(N // CHUNK):
            got = w.blocks[i].compute()
            want = _numpy_nag(start.blocks[i].compute())
            assert got.tobytes() == want.tobytes(), f"chunk {i}"
