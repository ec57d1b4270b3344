"""Parameters without a gradient or a buffer yet in a PyTorch step (conventions._skipped).

The live check against torch is
``conformance/frameworks/test_torch_execution.py``'s
``test_a_none_grad_is_skipped_and_a_late_first_buffer_makes_foreach_single_tensor``.
"""

from __future__ import annotations

import numpy as np
import pytest

from nagref.conventions import pytorch
from nagref.conventions._skipped import has_none


def test_has_none_looks_at_the_leaves() -> None:
    assert not has_none(None)
    assert not has_none({"w": np.ones(2)})
    assert has_none({"w": np.ones(2), "b": [None]})


def test_a_none_grad_leaves_its_parameter_and_buffer_as_they_are() -> None:
    params = {"w": np.ones(3, np.float32), "b": np.full(2, 2.0, np.float32)}
    grads = {"w": np.ones(3, np.float32), "b": None}
    new, buffers = pytorch.sgd(params, grads, None, lr=0.5, momentum=0.9)
    assert new["w"].tolist() == [0.5] * 3
    assert new["b"].tolist() == [2.0, 2.0]
    assert buffers is not None
    assert buffers["b"] is None
    assert buffers["w"].tolist() == [1.0] * 3
    # next step: "b" starts its buffer (a copy of its grad), "w" goes on
    grads = {"w": np.ones(3, np.float32), "b": np.ones(2, np.float32)}
    new, buffers = pytorch.sgd(new, grads, buffers, lr=0.5, momentum=0.9)
    assert buffers is not None
    assert buffers["b"].tolist() == [1.0, 1.0]
    assert buffers["w"].tolist() == [np.float32(1.9)] * 3
    plain, none = pytorch.sgd(params, {"w": grads["w"], "b": None}, None, lr=0.5)
    assert none is None  # no momentum: no buffers
    assert plain["b"] is params["b"]  # skipped: the parameter as it was, unmutated
    assert plain["w"].tolist() == [0.5] * 3


def test_none_leaves_are_checked_as_a_whole_and_write_out_only_when_everything_ran() -> None:
    params = [np.ones(3, np.float32), np.ones(2, np.float16)]
    grads = [np.ones(3, np.float32), None]
    with pytest.raises(ValueError, match=r"grad\[0\]"):
        pytorch.sgd(params, [np.ones(4, np.float32), None], None, lr=0.1)
    target = [np.zeros(3, np.float32), np.zeros(2, np.float16)]
    with pytest.raises(ValueError, match="lr=1e\\+30 is out of range for float16"):
        pytorch.sgd(params, [None, np.ones(2, np.float16)], None, lr=1e30, out=(target, None))
    assert not any(t.any() for t in target)  # nothing written
    new, _ = pytorch.sgd(params, grads, None, lr=0.5, out=(target, None))
    assert new[0] is target[0]
    assert new[1] is target[1]
    assert target[0].tolist() == [0.5] * 3
    assert target[1].tolist() == [1.0, 1.0]  # the skipped parameter, copied


def test_fused_with_some_buffers_none_is_refused() -> None:
    params = [np.ones(3, np.float32), np.ones(2, np.float32)]
    with pytest.raises(NotImplementedError, match="some momentum buffers None"):
        pytorch.sgd(
            params, params, [np.ones(3, np.float32), None], lr=0.1, momentum=0.9, fused=True
        )
