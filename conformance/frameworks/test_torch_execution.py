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
from conformance.frameworks.conftest import LiveWorker
from nagref.conventions import keras, pytorch
from nagref.live import Spec, Worker, check, compare, run_nagref, worker_variant
from nagref.live.drivers import from_torch

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


def _worker(live_worker: LiveWorker, convention: str, variant: str) -> Worker:
    live = {v.name: v for v in (pytorch.CONVENTION.variants + keras.CONVENTION.variants)}
    if not live[variant].live("float32"):
        pytest.skip(f"this CPU does not run torch's kernels of {convention} {variant}")
    return live_worker(convention, variant)


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
    convention: str, variant: str, dtype: str, n: int, n_threads: int, *, live_worker: LiveWorker
) -> None:
    """``Spec.extra["threads"]``: both sides take it; the one-thread model differs."""
    spec = _spec(convention, variant, dtype, (n,), extra={"threads": n_threads})
    worker = _worker(live_worker, convention, variant)
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
    convention: str, variant: str, other: str, dtype: str, live_worker: LiveWorker
) -> None:
    """The worker runs with ATEN_CPU_CAPABILITY set; its bits are its capability's model,
    and not the other kernels' (the scalar kernels fuse nothing, SIMD ones fuse add_)."""
    spec = _spec(convention, variant, dtype, (1000,), nesterov=True, weight_decay=0.01)
    if convention == "pytorch":
        spec = replace(spec, dampening=0.0)
    worker = _worker(live_worker, convention, variant)
    result = check(worker, spec)
    assert result.bitwise, result.first
    live = worker.run(spec)
    assert compare(spec, live, run_nagref(replace(spec, variant=other))).mismatches > 0


def test_one_worker_runs_every_capability_through_helpers(live_worker: LiveWorker) -> None:
    """The live suite's one pytorch worker hands a case of other kernels than its
    torch's to a helper started with ATEN_CPU_CAPABILITY set, and serves on."""
    assert worker_variant("pytorch", "foreach-default") is None
    worker = _worker(live_worker, "pytorch", "foreach")
    for variant in ("foreach-default", "foreach", "foreach-default"):
        spec = _spec("pytorch", variant, "float32", (1000,))
        assert check(worker, spec).bitwise, variant


# -- a parameter without a gradient, and one that starts its buffer late ------------------


def _bits(t: Any) -> np.ndarray:
    """A tensor's (or array's) bit patterns, as unsigned integers."""
    a = t.detach().view(torch.int16 if t.element_size() == 2 else torch.int32).numpy()
    return a.view(np.uint16 if a.itemsize == 2 else np.uint32)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("nesterov", [False, True])
def test_a_none_grad_is_skipped_and_a_late_first_buffer_makes_foreach_single_tensor(
    dtype: str, foreach: bool, nesterov: bool, threads: None
) -> None:
    # the issue's case: one parameter of the group has no buffer yet (its grad
    # was None at its first step), so torch's foreach step runs the
    # single-tensor buf.mul_(momentum) for the others, the momentum in float32
    torch.set_num_threads(1)
    rng = np.random.default_rng(14)
    kind = getattr(torch, dtype)
    params = [torch.tensor(rng.standard_normal(n), dtype=kind) for n in (37, 5, 64)]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=nesterov, foreach=foreach)
    ours: list[Any] = [from_torch(p) for p in params]
    buffers: Any = None
    for step in range(4):
        grads: list[Any] = [
            torch.tensor(rng.standard_normal(p.numel()), dtype=kind) for p in params
        ]
        grads[2] = None if step == 0 else grads[2]  # no buffer until step 2
        grads[1] = None if step == 2 else grads[1]  # skipped at step 3
        given = [None if g is None else from_torch(g) for g in grads]
        for p, g in zip(params, grads, strict=True):
            p.grad = g  # torch's foreach Nesterov step adds into the grads
        opt.step()
        before = buffers
        ours, buffers = pytorch.sgd(
            ours, given, buffers, lr=0.1, momentum=0.9, nesterov=nesterov, foreach=foreach,
            threads=1, cpu_capability=HERE,
        )  # fmt: skip
        for k, p in enumerate(params):
            assert (_bits(p) == ours[k].view(_bits(p).dtype)).all(), (step, k)
            live_buffer = opt.state[p].get("momentum_buffer")
            assert (live_buffer is None) == (buffers[k] is None), (step, k)
            if live_buffer is not None:
                assert (_bits(live_buffer) == buffers[k].view(_bits(p).dtype)).all(), (step, k)
        if step == 1 and foreach and dtype != "float32":
            # the whole group as foreach: the momentum rounded to 16 bits first
            as_foreach, _ = pytorch.sgd(
                ours[:2], given[:2], before[:2], lr=0.1, momentum=0.9, nesterov=nesterov,
                foreach=True, threads=1, cpu_capability=HERE,
            )  # fmt: skip
            differing = sum(
                int((_bits(p) != a.view(_bits(p).dtype)).sum())
                for p, a in zip(params[:2], as_foreach, strict=True)
            )
            assert differing > 0
