"""A failed call writes nothing; NumPy's error state changes neither results nor behaviour.

Issue 13, item 2: every check that can fail runs before the first write,
including what ``torch`` refuses only when it writes (a leaf that requires
grad, a view of one, an expanded tensor, an inference tensor), and the
arithmetic is IEEE under ``np.errstate(all="raise")`` on the generic path
and the kernel alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import nagref
from nagref import fastpaths
from nagref.conventions import REGISTRY

torch = pytest.importorskip("torch")


def _two_leaves() -> tuple[list[Any], list[Any]]:
    return [torch.ones(4), torch.ones(4)], [torch.ones(4), torch.ones(4)]


def _refused_before_writing(second: Any, match: str) -> None:
    """sgd into ``[first, second]`` raises naming ``out[1]``, and ``first`` stays zero."""
    param, grad = _two_leaves()
    first = torch.zeros(4)
    with pytest.raises(ValueError, match=match):
        nagref.sgd(param, grad, lr=0.5, out=[first, second])
    assert torch.equal(first, torch.zeros(4))  # the first leaf was not written


def test_a_leaf_that_requires_grad_is_refused_before_anything_is_written() -> None:
    weight = torch.ones(4, requires_grad=True)
    _refused_before_writing(weight, r"out\[1\] is a leaf that requires grad")
    _refused_before_writing(weight[:4], r"out\[1\] is a view of a leaf that requires grad")
    # torch itself refuses it at write time, so nagref's refusal mirrors torch's
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        weight.add_(1.0)
    # under no_grad torch writes it, and so does nagref
    param, grad = _two_leaves()
    with torch.no_grad():
        nagref.sgd(param, grad, lr=0.5, out=[torch.zeros(4), weight])
    assert torch.equal(weight.detach(), torch.full((4,), 0.5))


def test_an_expanded_tensor_is_refused_before_anything_is_written() -> None:
    expanded = torch.zeros(1).expand(4)
    _refused_before_writing(expanded, r"out\[1\] has elements that share memory")
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        expanded.add_(1.0)


def test_an_inference_tensor_is_refused_outside_inference_mode_only() -> None:
    with torch.inference_mode():
        frozen = torch.zeros(4)
    _refused_before_writing(frozen, r"out\[1\] is an inference tensor")
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor"):
        frozen.add_(1.0)
    with torch.inference_mode():
        param, grad = _two_leaves()
        nagref.sgd(param, grad, lr=0.5, out=[torch.zeros(4), frozen])
    assert torch.equal(frozen, torch.full((4,), 0.5))


def test_numpy_outputs_whose_elements_overlap_are_refused() -> None:
    base = np.zeros(16, np.float32)
    strided = np.lib.stride_tricks.as_strided
    bad = {
        "zero stride": strided(base, shape=(4,), strides=(0,)),
        "half an element": strided(base, shape=(4,), strides=(2,)),
        "rows that overlap": strided(base, shape=(3, 2), strides=(4, 4)),
    }
    param = np.ones(4, np.float32)
    for name, view in bad.items():
        first = np.zeros(view.shape, np.float32)
        with pytest.raises(ValueError, match=r"out\[1\] has elements that share memory"):
            nagref.sgd(
                [np.ones(view.shape, np.float32)] * 2,
                [np.ones(view.shape, np.float32)] * 2,
                lr=0.5,
                out=[first, view],
            )
        assert not first.any(), name
    # interleaved but disjoint (offsets 0, 12, 8, 20, 16, 28 bytes), and plain strides: written
    fine = [strided(base, shape=(3, 2), strides=(8, 12)), base[::2][:4]]
    for view in fine:
        ones = np.ones(view.shape, np.float32)
        nagref.sgd(ones, ones, lr=0.5, out=view)
        assert (view == 0.5).all()
    assert param.tobytes() == np.ones(4, np.float32).tobytes()


@contextlib.contextmanager
def _path(fast: bool) -> Iterator[None]:
    with contextlib.nullcontext() if fast else fastpaths.disabled():
        yield


def _overflowing() -> tuple[list[Any], list[Any], list[Any]]:
    big = np.float32(3e38)
    params = [np.full(5, big), np.full(3, -big), np.array([np.inf, 1.0, np.nan], np.float32)]
    grads = [np.full(5, big), np.full(3, big), np.array([1.0, np.inf, 0.0], np.float32)]
    velocity = [np.full(5, big), np.full(3, -big), np.zeros(3, np.float32)]
    return params, grads, velocity


CALLS: dict[str, Callable[[list[Any], list[Any], list[Any], Any], Any]] = {
    "sgd": lambda p, g, v, out: nagref.sgd(p, g, lr=4.0, out=out and out[0]),
    "momentum": lambda p, g, v, out: nagref.momentum(p, g, v, lr=4.0, momentum=0.9, out=out),
    "nag": lambda p, g, v, out: nagref.nag(p, g, v, lr=4.0, momentum=0.9, out=out),
    "pytorch": lambda p, g, v, out: REGISTRY["pytorch"].function(
        p, g, v, lr=4.0, momentum=0.9, out=out
    ),
}


@pytest.mark.parametrize("fast", [True, False], ids=["kernel", "generic"])
@pytest.mark.parametrize("name", CALLS)
def test_numpy_error_state_changes_neither_results_nor_behaviour(fast: bool, name: str) -> None:
    call = CALLS[name]
    with _path(fast), np.errstate(all="ignore"):
        expected = call(*_overflowing(), None)
    params, grads, velocity = _overflowing()
    outs = ([np.empty_like(p) for p in params], [np.empty_like(v) for v in velocity])
    with _path(fast), np.errstate(all="raise"):
        got = call(params, grads, velocity, None)
        call(params, grads, velocity, outs)  # every leaf written, none raised
    flat = expected if isinstance(expected, tuple) else (expected,)
    got_flat = got if isinstance(got, tuple) else (got,)
    for want, have, written in zip(flat, got_flat, outs, strict=False):
        if want is None:
            continue
        for a, b, c in zip(want, have, written, strict=True):
            assert a.tobytes() == b.tobytes() == c.tobytes()
    assert np.isinf(flat[0][0]).all()  # the case did overflow
    assert np.geterr()["over"] == "warn"  # the caller's state is restored


def test_array_api_strict_computes_ieee_under_errstate_raise() -> None:
    xp = pytest.importorskip("array_api_strict")
    w = xp.asarray([3e38, -3e38], dtype=xp.float32)
    with np.errstate(all="raise"):
        new = nagref.sgd(w, w, lr=4.0)
    assert np.asarray(new).tolist() == [-np.inf, np.inf]
