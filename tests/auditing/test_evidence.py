"""nagref.auditing.evidence: what a tensor that tells no candidates apart gave the audit."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from nagref.auditing.evidence import SMALL, uninformative


def test_zero_gradients_and_a_small_tensor_are_named() -> None:
    zeros = [np.zeros(1)] * 3
    assert uninformative(1, zeros, 3) == ["all its gradients are zero", "only 1 element"]
    assert uninformative(SMALL, [np.zeros(SMALL)], 1) == ["all its gradients are zero"]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "bfloat16"])
@pytest.mark.parametrize(
    "special", [np.inf, -np.inf, np.nan, -0.0, "subnormal"], ids=["inf", "-inf", "nan", "-0", "sub"]
)
def test_a_special_value_is_something_to_part_on(dtype: str, special: object) -> None:
    np_dtype = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    tiny = float(ml_dtypes.finfo(np_dtype).smallest_normal)
    plain = np.linspace(1, 2, 40).astype(np_dtype)
    assert uninformative(40, [plain], 1) == [
        "no infinity, NaN, subnormal or negative zero among its gradients"
    ]
    odd = plain.copy()
    odd[7] = tiny / 2 if special == "subnormal" else special
    assert uninformative(40, [plain, odd], 2) == []  # found at the second step
    assert uninformative(40, [plain, odd], 1) != []  # a step not replayed is not read
