"""``torch.compile(optimizer.step)``'s program (conventions._inductor), rule by rule.

The live check against torch's compiled step is
``conformance/frameworks/test_torch_compile.py``; here each point of the
model against an oracle computed by hand in NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

from nagref.conventions import pytorch
from nagref.conventions._inductor import INDUCTOR


def test_nothing_contracts_and_16_bit_formats_keep_float32() -> None:
    assert not INDUCTOR.contract
    assert (
        dict(INDUCTOR.compute)
        == dict(INDUCTOR.result)
        == {
            "float16": "float32",
            "bfloat16": "float32",
        }
    )


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_a_compiled_step_rounds_each_operation_and_stores_once(dtype: str) -> None:
    """p - lr·(μ·b + g): the products and sums rounded in the compute dtype, the
    results rounded to the storage dtype once; lr and μ literals of the compute dtype."""
    rng = np.random.default_rng(5)
    kind = np.dtype(dtype)
    wide = np.float32 if dtype == "float16" else kind.type
    p, g, b = (rng.standard_normal(1000).astype(kind) for _ in range(3))
    lr, mu = 0.0123457, 0.9
    new_p, new_b = pytorch.sgd(p, g, b, lr=lr, momentum=mu, compiled=True)
    buf = wide(b.astype(wide) * wide(mu)) + g.astype(wide)  # kept in the compute dtype
    want_p = p.astype(wide) + wide(buf * wide(-lr))
    assert new_b is not None
    assert new_b.tobytes() == buf.astype(kind).tobytes()
    assert new_p.tobytes() == want_p.astype(kind).tobytes()
    eager, _ = pytorch.sgd(p, g, b, lr=lr, momentum=mu)
    assert eager.tobytes() != new_p.tobytes()  # eager fuses add_ (and rounds to 16 bits)


def test_compiled_refuses_what_it_does_not_model() -> None:
    p = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="compiled=True with fused=True is not modelled"):
        pytorch.sgd(p, p, None, lr=0.1, fused=True, compiled=True)
    with pytest.raises(TypeError, match="compiled must be a bool, got str 'yes'"):
        pytorch.sgd(p, p, None, lr=0.1, compiled="yes")  # type: ignore[arg-type]


def test_the_compiled_variants_run_on_any_x86_cpu_with_a_constant_lr() -> None:
    compiled = {v.name: v for v in pytorch.CONVENTION.variants if v.options.get("compiled")}
    assert list(compiled) == ["compiled", "foreach-compiled"]
    assert compiled["foreach-compiled"].options["foreach"] is True
    for variant in compiled.values():
        assert "cpu_capability" not in variant.options  # no SIMD tail: no kernels to pick
        assert not variant.table
        assert not pytorch.CONVENTION.can(variant).changing_lr
        assert pytorch.CONVENTION.can(variant).weight_decay
