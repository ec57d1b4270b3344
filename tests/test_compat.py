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
