"""How torch runs SGD on the CPU, live: its threads and its CPU kernels (issue 14).

Threads: ``add_`` and ``_foreach_add_`` cut a tensor of more than 32,768
elements into one chunk per thread, each with its own SIMD body and scalar
tail, so float16 and bfloat16 bits depend on ``torch.set_num_threads``.
The issue's case: n = 65537, every p = 0x30c6 and g = 0x3e83 (float16),
``SGD([p], lr=0.1)`` on 2 threads: elements 32768 and 65536 differ from the
one-thread model and match the two-thread model.

CPU kernels: ``ATEN_CPU_CAPABILITY=default`` (ATen's scalar kernels, what
CPUs without AVX2 run) fuses nothing, where the AVX-512 and AVX2 kernels
fuse ``add_``. Torch reads the variable once, so each capability runs in a
worker of its own: the registry's variants pin it, and the pytorch driver
hands a case of other kernels to a helper worker, started with the variable
set (Keras: a worker per variant, as for its backends).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from conformance import require
from nagref.conventions import keras, pytorch
from nagref.live import Spec, Worker, check, compare, run_nagref, worker_variant

torch = require("torch")

#: the CPU capability of this process's torch (the in-process tests run its kernels)
HERE = pytorch.default_cpu_capability()
SIMD = HERE in ("avx512", "avx2")


@pytest.fixture
def threads() -> Iterator[None]:
    """Restore torch's thread count after a test that changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _issue_tensor(n: int = 65537) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.full(n, 0x30C6, np.uint16).view(np.float16),
        np.full(n, 0x3E83, np.uint16).view(np.float16),
    )


def _live_sgd(p: np.ndarray, g: np.ndarray, n_threads: int, **options: Any) -> np.ndarray:
    torch.set_num_threads(n_threads)
    param = torch.nn.Parameter(torch.from_numpy(p.copy()))
    param.grad = torch.from_numpy(g.copy())
    torch.optim.SGD([param], lr=0.1, **options).step()
    result: np.ndarray = param.detach().numpy().copy()
    return result


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize("foreach", [False, True])
def test_the_issues_tensor_on_two_threads(foreach: bool) -> None:
    p, g = _issue_tensor()
    live = _live_sgd(p, g, 2, foreach=foreach)
    one, _ = pytorch.sgd(p, g, None, lr=0.1, foreach=foreach, threads=1, cpu_capability=HERE)
    two, _ = pytorch.sgd(p, g, None, lr=0.1, foreach=foreach, threads=2, cpu_capability=HERE)
    assert live.tobytes() == two.tobytes()
    if not SIMD:
        pytest.skip(f"torch runs its {HERE} kernels here: no SIMD body, no tails to move")
    differ = np.flatnonzero(live.view(np.uint16) != one.view(np.uint16))
    assert differ.tolist() == [32768, 65536]
    assert [hex(b) for b in live.view(np.uint16)[differ]] == ["0xa2f0", "0xa2f4"]
    assert _live_sgd(p, g, 1, foreach=foreach).tobytes() == one.tobytes()


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize("n_threads", [3, 4])
def test_more_threads_than_cores_still_cut_the_tensor(n_threads: int) -> None:
    """OpenMP runs 3 and 4 threads on a 2-core machine too: 3 chunks of 65537 elements."""
    p, g = _issue_tensor()
    live = _live_sgd(p, g, n_threads)
    ours, _ = pytorch.sgd(p, g, None, lr=0.1, threads=n_threads, cpu_capability=HERE)
    assert live.tobytes() == ours.tobytes()
    if SIMD:  # tails of 22, 22 and 21 elements
        assert int(np.count_nonzero(live.view(np.uint16) == 0xA2F0)) == 65


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float32_and_float64_do_not_depend_on_the_threads(dtype: str) -> None:
    rng = np.random.default_rng(3)
    p, g = (rng.standard_normal(65543).astype(dtype) for _ in range(2))
    for options in ({"foreach": False}, {"foreach": True}, {"fused": True}):
        one, two = (_live_sgd(p, g, n, **options) for n in (1, 2))
        ours, _ = pytorch.sgd(p, g, None, lr=0.1, **options, threads=2, cpu_capability=HERE)
        assert one.tobytes() == two.tobytes() == ours.tobytes(), options


_workers: dict[tuple[str, str | None], Worker] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_workers() -> Iterator[None]:
    yield
    for worker in _workers.values():
        worker.close()
    _workers.clear()


def _worker(convention: str, variant: str) -> Worker:
    live = {v.name: v for v in (pytorch.CONVENTION.variants + keras.CONVENTION.variants)}
    if not live[variant].live("float32"):
        pytest.skip(f"this CPU does not run torch's kernels of {convention} {variant}")
    key = (convention, worker_variant(convention, variant))
    if key not in _workers:
        _workers[key] = Worker(convention, key[1])
    return _workers[key]


def _spec(convention: str, variant: str, dtype: str, shape: tuple[int, ...], **kw: Any) -> Spec:
    fields: dict[str, Any] = {
        "seed": 7,
        "lr": (0.0123457, 0.02, 0.0123457),
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 0.01,
        "scale": 1.0,
        **kw,
    }
    if convention == "pytorch":
        fields["dampening"] = 0.1
    else:  # Keras's driver keeps its first learning rate
        fields["lr"] = (fields["lr"][0],) * len(fields["lr"])
    return Spec(convention, variant, dtype, shape, **fields)


# sizes whose chunks have tails that one chunk would not: (n, threads) -> tails
LARGE = [
    ("pytorch", "single-tensor", "float16", 65537, 2),
    ("pytorch", "foreach", "bfloat16", 100_001, 2),
    ("pytorch", "foreach-avx2", "float16", 98_305, 3),
    ("pytorch", "single-tensor-avx2", "bfloat16", 65537, 3),
    ("keras", "torch", "bfloat16", 100_001, 2),
]


@pytest.mark.parametrize(("convention", "variant", "dtype", "n", "n_threads"), LARGE)
def test_a_case_asks_the_worker_for_threads(
    convention: str, variant: str, dtype: str, n: int, n_threads: int
) -> None:
    """``Spec.extra["threads"]``: both sides take it; the one-thread model differs."""
    spec = _spec(convention, variant, dtype, (n,), extra={"threads": n_threads})
    worker = _worker(convention, variant)
    live = worker.run(spec)
    assert compare(spec, live, run_nagref(spec)).bitwise
    one_thread = run_nagref(replace(spec, extra={}))  # the variant's one thread
    assert compare(spec, live, one_thread).mismatches > 0


# (convention, variant, the variant with the other kernels' model)
CAPABILITIES = [
    ("pytorch", "single-tensor-default", "single-tensor"),
    ("pytorch", "foreach-default", "foreach"),
    ("pytorch", "fused-default", "fused"),
    ("pytorch", "single-tensor-avx2", "single-tensor-default"),
    ("pytorch", "fused-avx2", "fused-default"),
    ("pytorch", "single-tensor", "single-tensor-default"),
    ("keras", "torch-default", "torch"),
    ("keras", "torch", "torch-default"),
]


@pytest.mark.parametrize(
    ("convention", "variant", "other", "dtype"),
    [
        pytest.param(*row, dtype, id=f"{row[0]}-{row[1]}-{dtype}")
        for row in CAPABILITIES
        for dtype in ("float16", "float32", "float64", "bfloat16")
        if not (row[1].startswith("fused") and dtype in ("float16", "bfloat16"))
    ],
)
def test_each_cpu_capability_runs_its_own_model(
    convention: str, variant: str, other: str, dtype: str
) -> None:
    """The worker runs with ATEN_CPU_CAPABILITY set; its bits are its capability's model,
    and not the other kernels' (the scalar kernels fuse nothing, SIMD ones fuse add_)."""
    spec = _spec(convention, variant, dtype, (1000,), nesterov=True, weight_decay=0.01)
    if convention == "pytorch":
        spec = replace(spec, dampening=0.0)
    worker = _worker(convention, variant)
    result = check(worker, spec)
    assert result.bitwise, result.first
    live = worker.run(spec)
    assert compare(spec, live, run_nagref(replace(spec, variant=other))).mismatches > 0


def test_one_worker_runs_every_capability_through_helpers() -> None:
    """The live suite's one pytorch worker hands a case of other kernels than its
    torch's to a helper started with ATEN_CPU_CAPABILITY set, and serves on."""
    assert worker_variant("pytorch", "foreach-default") is None
    worker = _worker("pytorch", "foreach")
    for variant in ("foreach-default", "foreach", "foreach-default"):
        spec = _spec("pytorch", variant, "float32", (1000,))
        assert check(worker, spec).bitwise, variant
