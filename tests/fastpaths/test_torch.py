"""The torch fast path (nagref.fastpaths.torch) against the generic path, bit for bit.

The cases of the NumPy kernel (kernel_cases.py: every rule and every
convention variant, every dtype, special values, sizes around the blocks)
run on torch CPU tensors, through the seam and inside
``fastpaths.disabled()`` (torch's own operations); a spy proves that the
kernel ran. Then what only torch has: in-place steps of parameters under
``torch.no_grad()``, autograd's version counters, and the tensors a view
cannot stand for, which fall back leaf by leaf.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from backends import Backend, load
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_cases import CASES, EXAMPLES, PAIRS, _arrays, _same, spy_on, zero_d_and_empty

import nagref
from nagref import fastpaths
from nagref.conventions import pytorch

XP = load(Backend.TORCH)
torch = XP.module
NAMESPACE = "array_api_compat.torch"


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    return spy_on(monkeypatch, XP.ns, NAMESPACE)


def _tensor(x: np.ndarray) -> Any:
    """A tensor with torch's own strides (an empty one from NumPy has stride 0, which
    sends the fused convention into endless recursion: a bug of its own, not of this path)."""
    t = XP.asarray(x)
    return torch.empty(t.shape, dtype=t.dtype).copy_(t)


def _numpy(results: Any) -> tuple[Any, ...]:
    return tuple(None if x is None else XP.to_numpy(x) for x in results)


@pytest.mark.parametrize(("case", "dtype"), PAIRS)
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_kernel_equals_the_generic_path_bitwise(
    case: str, dtype: str, data: st.DataObject, spy: list[bool]
) -> None:
    p, g, b = (_tensor(x) for x in _arrays(data.draw, dtype))
    lr = data.draw(st.floats(0.0, 1.0))
    mu = data.draw(st.floats(0.001, 0.999))
    step = CASES[case]
    spy.clear()
    fast = step(p, g, b, lr, mu)
    assert spy, "the kernel was not called"
    assert all(spy), "the kernel declined"
    assert all(x is None or type(x) is torch.Tensor for x in fast)
    with fastpaths.disabled():
        slow = step(p, g, b, lr, mu)
    _same(_numpy(fast), _numpy(slow))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_parameters_step_in_place_under_no_grad(dtype: str, spy: list[bool]) -> None:
    rng = np.random.default_rng(5)
    data = [XP.asarray(rng.standard_normal(1000), dtype) for _ in range(3)]
    p = torch.nn.Parameter(data[0].clone())
    g, b = data[1], data[2].clone()
    p.grad = g
    expected = pytorch.sgd(p.detach(), g, b, lr=0.1, momentum=0.9, nesterov=True)
    versions = (p._version, b._version)
    with torch.no_grad():
        result = pytorch.sgd(p, g, b, lr=0.1, momentum=0.9, nesterov=True, out=(p, b))
    assert all(spy)
    assert result[0] is p
    assert result[1] is b
    assert (p._version, b._version) > versions  # autograd sees the writes
    _same(_numpy((p, b)), _numpy(expected))
    scalar = torch.tensor(1.5, dtype=p.dtype)  # a 0-d tensor, in place
    nagref.sgd(scalar, scalar, lr=0.5, out=scalar)
    assert XP.to_numpy(scalar).tolist() == 0.75


def test_new_outputs_share_no_memory_and_zero_d_leaves_run(spy: list[bool]) -> None:
    tree, fast = zero_d_and_empty(torch, XP.to_numpy, spy)
    for new in fast:
        for x in new.values():
            assert type(x) is torch.Tensor
            assert not any(
                x.numel() and np.shares_memory(x.numpy(), y.numpy()) for y in tree.values()
            )


def test_tensors_a_view_cannot_stand_for_fall_back_leaf_by_leaf(spy: list[bool]) -> None:
    base = torch.arange(64.0).reshape(8, 8) / 3
    grads = {"a": base[0].clone(), "strided": base[:, 1], "b": base[2].clone()}
    params = {name: base[4].clone() for name in grads}
    fast = nagref.sgd(params, grads, lr=0.1)
    assert spy == [True, False, True]
    for name, x in params.items():
        assert torch.equal(fast[name], x - torch.tensor(0.1) * grads[name])


def test_autograd_records_through_the_generic_path(spy: list[bool]) -> None:
    p = torch.nn.Parameter(torch.linspace(-1, 1, 50))
    g = torch.linspace(0, 2, 50)
    (new,) = nagref.sgd([p], [g], lr=0.1)
    assert spy == [False]  # requires grad while autograd records: no view
    assert new.grad_fn is not None
    new.sum().backward()
    assert torch.equal(p.grad, torch.ones(50))
    spy.clear()
    with torch.no_grad():
        (again,) = nagref.sgd([p], [g], lr=0.1)
    assert spy == [True]
    assert torch.equal(again, new.detach())


def test_lazy_bits_and_other_dtypes_take_the_generic_path(spy: list[bool]) -> None:
    z = torch.tensor([1 + 2j, -3j], dtype=torch.complex64)
    assert torch.equal(nagref.sgd(z.conj(), z, lr=0.5), z.conj() - 0.5 * z)
    assert spy == [False]
