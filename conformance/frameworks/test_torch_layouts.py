"""torch.optim.SGD on tensors that are not contiguous, live (issue 14, item 2).

torch's elementwise ops walk a tensor in an order chosen from the operands'
strides, in rows; a row where an operand is not stride-1 runs the scalar
loop, which in float16 and bfloat16 rounds ``add_``'s product and sum
separately. The fused kernel walks memory: it pairs the k-th elements in
memory of the param, grad and buffer, and its epilogue is the last elements
in memory (see ``nagref.conventions._layouts``). The issue's two cases:

* p = 64 x 0x30c6 (float16), grad = 128 x 0x3e83 sliced ``[::2]``,
  ``SGD([p], lr=0.1)``: every element is 0xa2f0 (the contiguous model gives
  0xa2f4);
* a transposed 3 x 5 float64 param and grad, ``fused=True`` with momentum:
  the epilogue covers the last elements in memory, not in logical order.

Each is run against torch here, then random layouts (permuted, transposed,
sliced with steps 2 and 3, mixed between param and grad) over every path,
dtype, thread count and CPU capability, through the live driver.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from conformance import require
from conformance.frameworks.conftest import LiveWorker
from nagref.conventions import pytorch
from nagref.conventions._aten import release
from nagref.live import Spec, compare, run_nagref
from nagref.live.drivers import from_torch

torch = require("torch")

HERE = pytorch.default_cpu_capability()
VERSION = release(torch.__version__)  # "2.13" or "2.14": the release the models follow
DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


def _bits(t: Any) -> np.ndarray:
    x = t.detach().contiguous()
    width = {2: torch.int16, 4: torch.int32, 8: torch.int64}[x.element_size()]
    return x.view(width).numpy()


@pytest.fixture
def one_thread() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
def test_the_issues_strided_grad() -> None:
    p = torch.tensor(np.full(64, 0x30C6, np.uint16).view(np.float16))
    g = torch.tensor(np.full(128, 0x3E83, np.uint16).view(np.float16))[::2]
    ours, _ = pytorch.sgd(p.numpy().copy(), g.numpy(), None, lr=0.1, threads=1, cpu_capability=HERE)
    contiguous, _ = pytorch.sgd(
        p.numpy().copy(), g.contiguous().numpy(), None, lr=0.1, threads=1, cpu_capability=HERE
    )
    p.grad = g
    torch.optim.SGD([p], lr=0.1).step()
    live = p.numpy().view(np.uint16)
    assert (ours.view(np.uint16) == live).all()
    if HERE != "default":  # the SIMD kernels: the contiguous model fuses, torch does not
        assert set(live.tolist()) == {0xA2F0}
        assert set(contiguous.view(np.uint16).tolist()) == {0xA2F4}


@pytest.mark.usefixtures("one_thread")
def test_the_issues_transposed_fused_case() -> None:
    """3 x 5 float64, param and grad transposed, fused with momentum and dampening."""
    rng = np.random.default_rng(14)
    logical_differs = 0
    for _ in range(40):
        p = torch.tensor(rng.standard_normal((5, 3))).t()
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, fused=True)
        ours: Any = p.detach().clone().t().contiguous().t()
        plain: Any = p.detach().contiguous()
        buf = plain_buf = None
        for _ in range(3):
            g = torch.tensor(rng.standard_normal((5, 3))).t()
            keywords: dict[str, Any] = {"lr": 0.1, "momentum": 0.9, "dampening": 0.1}
            ours, buf = pytorch.sgd(ours, g, buf, fused=True, threads=1, **keywords)
            plain, plain_buf = pytorch.sgd(plain, g.contiguous(), plain_buf, fused=True, **keywords)
            p.grad = g
            opt.step()
            assert (_bits(ours) == _bits(p)).all()
            assert tuple(ours.stride()) == tuple(p.stride()) == (1, 3)
            logical_differs += int((_bits(plain) != _bits(p)).sum())
    if HERE != "default":
        assert logical_differs > 0


def _laid(values: Any, spec: tuple[str, list[int], int, int]) -> Any:
    """``values`` as a tensor of a layout: contiguous, permuted, transposed or sliced."""
    kind, perm, dim, step = spec
    ndim = values.ndim
    if kind == "contiguous" or ndim == 0:
        return values.clone()
    if kind in ("permuted", "transposed"):
        order = perm if kind == "permuted" else list(range(ndim))[::-1]
        return values.permute(*order).contiguous().permute(*np.argsort(order).tolist())
    bigger = list(values.shape)
    bigger[dim] *= step
    held = torch.zeros(bigger, dtype=values.dtype)
    index = (slice(None),) * dim + (slice(None, None, step),)
    held[index] = values
    return held[index]


def test_random_layouts_paths_and_threads_against_torch() -> None:
    """In-process: 240 runs of 1 to 3 steps; every element and buffer bitwise."""
    rng = np.random.default_rng(20261201)
    before = torch.get_num_threads()
    elements = contiguous_differs = 0
    try:
        for trial in range(240):
            dtype = list(DTYPES)[trial % 4]
            path = ("single", "foreach", "fused")[trial // 4 % 3]
            if path == "fused" and dtype in ("float16", "bfloat16") and VERSION == "2.13":
                path = "single"  # torch 2.13's fused kernel does not update 16-bit params
            shape = tuple(int(n) for n in rng.integers(1, 20, int(rng.integers(1, 4))))
            if trial % 10 == 0:  # large enough to cut into chunks on 2 threads
                shape = (int(rng.integers(200, 300)), int(rng.integers(150, 250)))
            n_threads = 1 + trial % 2
            torch.set_num_threads(n_threads)
            kinds = ["contiguous", "permuted", "transposed", "sliced"][
                : 3 if path == "fused" else 4
            ]
            layouts = [
                (str(rng.choice(kinds)), rng.permutation(len(shape)).tolist(),
                 int(rng.integers(len(shape))), int(rng.integers(2, 4)))
                for _ in range(2)
            ]  # fmt: skip
            momentum = float(rng.choice([0.0, 0.9, 0.5]))
            nesterov = bool(momentum and rng.random() < 0.5)
            keywords: dict[str, Any] = {
                "lr": 0.05, "momentum": momentum, "nesterov": nesterov,
                "weight_decay": float(rng.choice([0.0, 0.01])),
                "dampening": 0.0 if nesterov or rng.random() < 0.6 else 0.1,
                "maximize": bool(rng.random() < 0.3),
                "foreach": path == "foreach", "fused": path == "fused",
            }  # fmt: skip
            p = _laid(torch.tensor(rng.standard_normal(shape)).to(DTYPES[dtype]), layouts[0])
            opt = torch.optim.SGD([p], **keywords)
            ours: Any = p.detach().clone()
            plain: Any = p.detach().clone()
            buf = plain_buf = None
            for _ in range(int(rng.integers(1, 4))):
                g = _laid(torch.tensor(rng.standard_normal(shape)).to(DTYPES[dtype]), layouts[1])
                ours, buf = pytorch.sgd(
                    ours, g, buf, threads=n_threads, param_layout=tuple(p.stride()),
                    version=VERSION, **keywords,
                )  # fmt: skip
                plain, plain_buf = pytorch.sgd(
                    plain.contiguous(), g.contiguous(), plain_buf, threads=n_threads,
                    version=VERSION, **keywords,
                )  # fmt: skip
                p.grad = g
                opt.step()
                live_buf = opt.state[p].get("momentum_buffer")
                assert (_bits(ours) == _bits(p)).all(), (trial, shape, layouts, keywords)
                assert (buf is None) == (live_buf is None)
                if live_buf is not None:
                    assert (_bits(buf) == _bits(live_buf)).all(), (trial, shape, layouts)
                elements += p.numel()
                contiguous_differs += int((_bits(plain) != _bits(p)).sum())
    finally:
        torch.set_num_threads(before)
    assert elements > 1_000_000
    if HERE != "default":
        assert contiguous_differs > 0  # the layouts mattered


# (variant, dtype, layouts): through the live driver, each CPU capability's worker
DRIVEN = [
    ("single-tensor", "float16", {"grad_layout": "strided"}),
    ("single-tensor-avx2", "bfloat16", {"param_layout": "transposed", "grad_layout": "strided"}),
    ("single-tensor-default", "float16", {"param_layout": "transposed"}),
    ("foreach", "bfloat16", {"param_layout": "transposed", "grad_layout": "strided"}),
    ("foreach-avx2", "float16", {"grad_layout": "transposed"}),
    ("foreach-default", "bfloat16", {"grad_layout": "strided"}),
    ("fused", "float64", {"param_layout": "transposed", "grad_layout": "transposed"}),
    ("fused-avx2", "float32", {"param_layout": "transposed"}),
    ("fused-default", "float64", {"grad_layout": "transposed"}),
    ("single-tensor", "float32", {"param_layout": [1, 9], "grad_layout": "strided"}),
]


@pytest.mark.parametrize(("variant", "dtype", "layouts"), DRIVEN)
def test_the_live_driver_lays_out_a_cases_tensors(
    variant: str, dtype: str, layouts: dict[str, Any], live_worker: LiveWorker
) -> None:
    """``Spec.extra`` names the layouts: the driver's tensors have them, nagref models them."""
    if not pytorch.CONVENTION.variant(variant).live(dtype):
        pytest.skip(f"this CPU does not run torch's kernels of {variant}")
    spec = Spec(
        "pytorch", variant, dtype, (9, 43), seed=14, lr=(0.05, 0.02, 0.05, 0.04),
        momentum=0.9, dampening=0.1, weight_decay=0.01, extra=layouts,
    )  # fmt: skip
    worker = live_worker("pytorch", variant)
    live = worker.run(spec)
    assert compare(spec, live, run_nagref(spec)).bitwise
    # the layouts change the bits where a SIMD tail moves (float16, bfloat16) and in
    # the fused kernel (its pairing, its epilogue); float32's scalar loop fuses as its
    # body does, and the scalar kernels ("-default") have no body
    moves = variant.startswith("fused") or (
        not variant.endswith("-default") and dtype in ("float16", "bfloat16")
    )
    plain = compare(spec, live, run_nagref(replace(spec, extra={})))
    assert (plain.mismatches > 0) == moves


def test_a_late_first_buffer_beside_strided_grads_under_foreach_nesterov() -> None:
    """A dtype group where one parameter starts its buffer late: torch runs the others'
    ``buf.mul_`` one by one, but its Nesterov step stays ``_foreach_add_`` in place on
    the strided grads, so their updates run torch's scalar loop."""
    rng = np.random.default_rng(7)
    differ = contiguous_differ = 0
    for trial in range(12):
        dtype = (torch.float16, torch.bfloat16)[trial % 2]
        shape = (int(rng.integers(3, 40)), int(rng.integers(3, 40)))
        a, b = (torch.tensor(rng.standard_normal(shape)).to(dtype) for _ in range(2))
        opt = torch.optim.SGD([a, b], lr=0.05, momentum=0.9, nesterov=True, foreach=True)
        ours: Any = [from_torch(a.clone()), from_torch(b.clone())]
        plain: Any = list(ours)
        bufs = plain_bufs = None
        for step in range(3):  # b has no grad at the first step: its buffer starts at the second
            grads = [
                _laid(torch.tensor(rng.standard_normal(shape)).to(dtype), ("sliced", [0, 1], 1, 2))
                for _ in range(2)
            ]
            given = [from_torch(g.contiguous()) for g in grads]
            given[1] = given[1] if step else None
            keywords: dict[str, Any] = {"lr": 0.05, "momentum": 0.9, "nesterov": True}
            ours, bufs = pytorch.sgd(
                ours, given, bufs, foreach=True, threads=1, grad_layout="strided", **keywords
            )
            plain, plain_bufs = pytorch.sgd(plain, given, plain_bufs, foreach=True, **keywords)
            a.grad, b.grad = grads[0], grads[1] if step else None
            opt.step()
            for mine, contiguous_model, theirs in zip(ours, plain, (a, b), strict=True):
                differ += int((np.asarray(mine).view(np.int16) != _bits(theirs)).sum())
                contiguous_differ += int(
                    (np.asarray(contiguous_model).view(np.int16) != _bits(theirs)).sum()
                )
    assert differ == 0
    if HERE != "default":
        assert contiguous_differ > 0  # the strided grads' scalar loop mattered
