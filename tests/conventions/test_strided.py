"""PyTorch steps on tensors that are not contiguous (conventions._strided, pytorch.sgd's layouts).

The live checks against torch are ``conformance/frameworks/test_torch_layouts.py``;
here the plumbing: where each leaf's layout comes from, the buffer's as
torch's first step makes it, results in their layouts, ``out=``, pytrees,
and what is refused (and that a refused call writes nothing).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conformance import require
from nagref._engine.ir import instr
from nagref.conventions import pytorch
from nagref.conventions._aten import GRAIN
from nagref.conventions._layouts import read
from nagref.conventions._strided import AUDIT_THREADS, layouts, relaid, sgd_in_place

torch = require("torch")

FIRST = (instr("b", "copy", "g"), instr("p", "muladd", "b", "neg_lr", "p"))
NONE: dict[str, object] = {"param": None, "grad": None, "momentum_buffer": None}


def _issue(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The issue's case: p = 64 x 0x30c6, grad = 128 x 0x3e83 sliced [::2] (float16)."""
    p = np.full(n, 0x30C6, np.uint16).view(np.float16)
    g = np.full(2 * n, 0x3E83, np.uint16).view(np.float16)[::2]
    return p, g


def _bits(x: Any) -> list[int]:
    return np.asarray(x).view(np.uint16).tolist()


def test_contiguous_leaves_have_no_layouts_to_model() -> None:
    p = {"w": np.ones((3, 4), np.float16), "b": np.ones(4, np.float16)}
    found = layouts(p, p, None, NONE, first=FIRST, in_place=sgd_in_place(False), fused=False)
    assert found is None


def test_each_leaf_takes_its_own_strides_and_the_buffer_torchs_first_steps() -> None:
    p = np.ones((3, 5), np.float32)
    g_t = np.ones((5, 3), np.float32).T
    g_s = np.ones((3, 10), np.float32)[:, ::2]
    single = sgd_in_place(False)
    (leaf,) = layouts(p, g_t, None, NONE, first=FIRST, in_place=single, fused=False) or []
    assert leaf.strides == {"p": (5, 1), "g": (1, 3), "b": (1, 3)}  # clone keeps a dense layout
    (leaf,) = layouts(p, g_s, None, NONE, first=FIRST, in_place=single, fused=False) or []
    assert leaf.strides["b"] == (5, 1)  # and makes a strided one contiguous
    given = {**NONE, "param": "transposed", "momentum_buffer": (1, 3)}
    (leaf,) = layouts(p, p, p, given, first=FIRST, in_place=single, fused=True) or []
    assert leaf.strides == {"p": (1, 3), "g": (5, 1), "b": (1, 3)}
    (leaf,) = layouts(p, g_t, p, NONE, first=FIRST, in_place=single, fused=True) or []
    assert leaf.strides["b"] == (1, 3)  # the fused path's empty_like(grad)


def test_the_issues_strided_grad_takes_the_scalar_loop() -> None:
    """All 64 elements: 0xa2f0 (the scalar loop rounds the product), not 0xa2f4."""
    p, g = _issue()
    ours, _ = pytorch.sgd(p, g, None, lr=0.1, threads=1, cpu_capability="avx512")
    assert set(_bits(ours)) == {0xA2F0}
    plain, _ = pytorch.sgd(p, np.ascontiguousarray(g), None, lr=0.1, cpu_capability="avx512")
    assert set(_bits(plain)) == {0xA2F4}
    named, _ = pytorch.sgd(p, g.copy(), None, lr=0.1, grad_layout="strided")
    assert _bits(named) == _bits(ours)
    as_given, _ = pytorch.sgd(p, g, None, lr=0.1, grad_layout="contiguous")
    assert _bits(as_given) == _bits(plain)  # a given layout wins over the array's own
    default, _ = pytorch.sgd(p, g, None, lr=0.1, cpu_capability="default")
    assert _bits(default) == _bits(ours)  # the scalar kernels: every element so
    wide, _ = pytorch.sgd(p.astype(np.float32), g.astype(np.float32), None, lr=0.1)
    again, _ = pytorch.sgd(p.astype(np.float32), g.astype(np.float32).copy(), None, lr=0.1)
    assert wide.tolist() == again.tolist()  # float32's scalar loop fuses as its body does


def test_torch_tensors_strides_are_read_and_results_keep_dense_layouts() -> None:
    p = torch.arange(15, dtype=torch.float16).reshape(5, 3).t() / 7  # (3, 5), strides (1, 3)
    g = torch.ones(5, 3, dtype=torch.float16).t() / 3
    new_p, buf = pytorch.sgd(p, g, None, lr=0.1, momentum=0.9)
    assert tuple(new_p.stride()) == (1, 3)
    assert buf is not None
    assert tuple(buf.stride()) == (1, 3)
    again, _ = pytorch.sgd(new_p, g, buf, lr=0.1, momentum=0.9)
    named, _ = pytorch.sgd(
        new_p.contiguous(), g.contiguous(), buf.contiguous(), lr=0.1, momentum=0.9,
        param_layout="transposed", grad_layout="transposed",
    )  # fmt: skip
    assert torch.equal(again, named)
    x = np.arange(6.0).reshape(2, 3)
    assert read(relaid(x, (2, 3), (1, 2)), "x") == (1, 2)
    assert relaid(x, (2, 3), (6, 2)) is x  # not dense: as it is
    assert np.array_equal(relaid(x, (2, 3), (1, 2)), x)


def test_out_and_pytrees_with_layouts() -> None:
    p, g = _issue()
    params = {"strided": p, "plain": [p.copy()]}
    grads = {"strided": g, "plain": [np.ascontiguousarray(g)]}
    new, _ = pytorch.sgd(params, grads, None, lr=0.1, threads=1)
    assert set(_bits(new["strided"])) == {0xA2F0}
    assert set(_bits(new["plain"][0])) == {0xA2F4}
    targets = {"strided": np.empty(64, np.float16), "plain": [np.empty(64, np.float16)]}
    written, _ = pytorch.sgd(params, grads, None, lr=0.1, threads=1, out=(targets, None))
    assert written["strided"] is targets["strided"]
    assert _bits(targets["strided"]) == _bits(new["strided"])
    transposed = np.ones((4, 3), np.float64).T
    fused, _ = pytorch.sgd(transposed, transposed, None, lr=0.5, fused=True, out=(transposed, None))
    assert fused is transposed
    assert np.all(transposed == 0.5)


def test_a_refused_layout_names_the_argument_and_writes_nothing() -> None:
    p, g = _issue()
    target = np.zeros(64, np.float16)
    wide = np.zeros(64, np.float32)
    with pytest.raises(ValueError, match=r"grad has strides \(2,\) \(shape \(64,\)\), not dense"):
        pytorch.sgd(p.astype(np.float32), g.astype(np.float32), None, lr=0.1, fused=True,
                    grad_layout="strided", out=(wide, None))  # fmt: skip
    assert not wide.any()
    with pytest.raises(ValueError, match="param_layout must be one of contiguous"):
        pytorch.sgd(p, g, None, lr=0.1, param_layout="diagonal", out=(target, None))
    with pytest.raises(ValueError, match=r"momentum_buffer_layout .* got tuple \(1, 1\)"):
        pytorch.sgd(p, g, p, lr=0.1, momentum=0.9, momentum_buffer_layout=(1, 1))
    assert not target.any()
    with pytest.raises(ValueError, match="out must be a pair"):
        pytorch.sgd(p, g, None, lr=0.1, fused=True, grad_layout="transposed", out=target)  # type: ignore[arg-type]
    assert not target.any()
    assert set(_bits(p)) == {0x30C6}


def test_the_foreach_nesterov_step_is_in_place_on_the_grad() -> None:
    nesterov = instr("g", "muladd", "b", "mu_alpha", "g")
    assert sgd_in_place(True)(nesterov)
    assert not sgd_in_place(False)(nesterov)
    assert sgd_in_place(False)(instr("p", "muladd", "g", "neg_lr", "p"))
    assert not sgd_in_place(True)(instr("g", "muladd", "p", "wd", "g"))


# -- what the audit tries: the settings that change a run's bits -------------------------


def _labels(variant: str, shape: tuple[int, ...], dtype: str) -> list[str]:
    convention = pytorch.CONVENTION
    return [
        label for label, _ in convention.settings_for(convention.variant(variant), shape, dtype)
    ]


def test_the_audit_tries_each_thread_count_that_moves_a_tail() -> None:
    # 65,537 float16 elements: 1, 2 or 3 chunks (⌈n / 32768⌉ = 3), each its own tail
    assert _labels("single-tensor", (65537,), "float16") == [
        ", 2 threads", ", 3+ threads", ", strided-grad", ", strided-grad, 2 threads",
        ", strided-grad, 3+ threads",
    ]  # fmt: skip
    # 65,536: two chunks of 32,768, whole vectors: the one thread's bits
    assert _labels("foreach-avx2", (65536,), "bfloat16") == [", strided-grad"]
    # no more than AUDIT_THREADS counts, each distinct
    many = [
        x for x in _labels("single-tensor", (GRAIN * 100 + 1,), "float16") if "strided" not in x
    ]
    assert len(many) == AUDIT_THREADS - 1
    assert many[-1] == f", {AUDIT_THREADS} threads"


def test_the_audit_tries_layouts_where_they_change_the_bits() -> None:
    assert _labels("single-tensor", (5, 37), "float16") == [
        ", transposed",
        ", transposed-grad",
        ", strided-grad",
    ]
    assert _labels("single-tensor", (1, 37), "float16") == [
        ", strided-grad"
    ]  # nothing to transpose
    # float32 and float64 add_ round alike scalar or SIMD; the default kernels are all scalar
    assert _labels("single-tensor", (5, 37), "float32") == []
    assert _labels("foreach-default", (5, 37, 65537), "float16") == []
    # the fused kernel pairs elements in memory, in every dtype (a strided grad is refused)
    assert _labels("fused", (5, 37), "float64") == [", transposed", ", transposed-grad"]
    assert _labels("fused-2.14-default", (5, 37), "float16") == [
        ", transposed",
        ", transposed-grad",
    ]
    assert _labels("fused", (65537,), "float32") == []  # its threads cut whole vectors
    assert _labels("compiled", (5, 37, 65537), "float16") == []  # inductor: no tails, no SIMD


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4)])
def test_a_tensor_with_no_elements_is_contiguous_whatever_its_strides(
    shape: tuple[int, ...], fused: bool
) -> None:
    # torch.tensor(np.ones(0)) has stride (0,): the fused path took it for strided and
    # walked it in memory order, as a tensor of the same strides, again and again
    p = torch.tensor(np.ones(shape, np.float32))
    assert p.stride() != tuple(torch.empty(shape).stride())
    for buffer in (None, torch.tensor(np.ones(shape, np.float32))):
        new_p, new_b = pytorch.sgd(p, p, buffer, lr=0.1, momentum=0.9, fused=fused)
        assert tuple(new_p.shape) == tuple(new_b.shape) == shape
