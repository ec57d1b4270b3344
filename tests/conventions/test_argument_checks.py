"""torch.optim.SGD's argument checks (conventions._argument_checks), message for message."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conformance import require
from nagref.conventions import pytorch
from nagref.conventions._argument_checks import check_arguments

torch = require("torch")

BAD = [
    {"lr": -0.1},
    {"lr": 0.1, "momentum": -0.5},
    {"lr": 0.1, "weight_decay": -1.0},
    {"lr": 0.1, "nesterov": True},
    {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": True},
    {"lr": 0.1, "foreach": True, "fused": True},
]


@pytest.mark.parametrize("keywords", BAD)
def test_each_refusal_is_torchs_own(keywords: dict[str, Any]) -> None:
    with pytest.raises((ValueError, RuntimeError)) as theirs:
        torch.optim.SGD([torch.zeros(3, requires_grad=True)], **keywords)
    p = np.zeros(3, np.float32)
    with pytest.raises(type(theirs.value), match=str(theirs.value).replace("`", ".")):
        pytorch.sgd(p, p, None, **keywords)


def test_the_arguments_come_back_as_floats_and_compiled_is_checked() -> None:
    got = check_arguments(1, 0, 0, 0, nesterov=False, foreach=None, fused=False, compiled=False)
    assert got == (1.0, 0.0, 0.0, 0.0)
    assert all(type(x) is float for x in got)
    with pytest.raises(TypeError, match="lr must be a real number, got str 'x'"):
        check_arguments("x", 0, 0, 0, nesterov=False, foreach=None, fused=False, compiled=False)
    with pytest.raises(TypeError, match="compiled must be a bool, got int 1"):
        check_arguments(1, 0, 0, 0, nesterov=False, foreach=None, fused=False, compiled=1)
    # compiled with fused: modelled (the eager fused kernel), so accepted
    assert check_arguments(1, 0, 0, 0, nesterov=False, foreach=None, fused=True, compiled=True)


def test_an_alpha_beyond_the_dtype_is_refused_as_torch_refuses_it() -> None:
    p = torch.zeros(3, dtype=torch.float16)
    p.grad = torch.ones(3, dtype=torch.float16)
    with pytest.raises(RuntimeError, match="value cannot be converted to type c10::Half"):
        torch.optim.SGD([p], lr=70000.0).step()
    with pytest.raises(ValueError, match=r"lr=70000.0 is out of range for float16 parameters"):
        pytorch.sgd(np.zeros(3, np.float16), np.ones(3, np.float16), None, lr=70000.0)
