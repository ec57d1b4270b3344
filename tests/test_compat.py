"""nagref._compat: the one seam to array_api_compat, and its NumPy shortcuts."""

from __future__ import annotations

import numpy as np
from backends import Backend, load

from nagref import _compat


def test_numpy_arrays_are_known_to_be_on_the_cpu_without_asking() -> None:
    assert _compat.cpu_only(np.ndarray)
    assert not _compat.cpu_only(type(np.float32(1.0)))
    assert _compat.device(np.ones(3)) == "cpu"


def test_other_libraries_answer_through_array_api_compat() -> None:
    torch = load(Backend.TORCH).module  # required: fails where torch is missing
    x = torch.ones(3)
    assert not _compat.cpu_only(type(x))
    assert _compat.device(x) == torch.device("cpu")
    assert _compat.array_namespace(x).__name__ == "array_api_compat.torch"


def test_ieee_arithmetic_overrides_the_callers_error_state_and_restores_it() -> None:
    big = np.float32(3e38)
    with np.errstate(all="raise"):
        with _compat.ieee_arithmetic():
            assert np.isinf(big * np.float32(4))
        assert np.geterr()["over"] == "raise"


def test_write_refusal_says_what_torch_refuses_at_write_time() -> None:
    torch = load(Backend.TORCH).module
    assert _compat.write_refusal(np.zeros(2)) is None
    assert _compat.write_refusal(torch.zeros(2)) is None
    weight = torch.zeros(2, requires_grad=True)
    assert "is a leaf that requires grad" in str(_compat.write_refusal(weight))
    assert "is a view of a leaf" in str(_compat.write_refusal(weight[:1]))
    assert _compat.write_refusal(weight * 2) is None  # not a leaf: torch records the write
    with torch.no_grad():
        assert _compat.write_refusal(weight) is None
    with torch.inference_mode():
        frozen = torch.zeros(2)
        assert _compat.write_refusal(frozen) is None
    assert "inference tensor" in str(_compat.write_refusal(frozen))
