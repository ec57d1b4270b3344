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


def test_compiled_fused_is_the_eager_fused_kernel() -> None:
    """dynamo does not trace into ``_fused_sgd`` (``torch.compiler.disable``)."""
    rng = np.random.default_rng(5)
    for dtype in ("float32", "float64"):
        p, g, b = (rng.standard_normal((3, 41)).astype(dtype) for _ in range(3))
        for buf in (None, b):
            keywords = {"lr": 0.01, "momentum": 0.9, "nesterov": True, "fused": True}
            eager = pytorch.sgd(p, g, buf, **keywords)  # type: ignore[arg-type]
            compiled = pytorch.sgd(p, g, buf, compiled=True, **keywords)  # type: ignore[arg-type]
            assert eager[0].tobytes() == compiled[0].tobytes()
            assert eager[1] is not None
            assert compiled[1] is not None
            assert eager[1].tobytes() == compiled[1].tobytes()
            inductor = pytorch.sgd(p, g, buf, lr=0.01, momentum=0.9, nesterov=True, compiled=True)
            assert inductor[0].tobytes() != compiled[0].tobytes()  # not inductor's program
    # a 0-d float64 parameter too: the fused kernel updates it
    zero_d = np.float64(0.5) * np.ones((), np.float64)
    new, _ = pytorch.sgd(zero_d, zero_d, None, lr=0.1, fused=True, compiled=True)
    assert new == 0.45


def test_compiled_refuses_what_it_does_not_model() -> None:
    p = np.ones(3, np.float32)
    with pytest.raises(TypeError, match="compiled must be a bool, got str 'yes'"):
        pytorch.sgd(p, p, None, lr=0.1, compiled="yes")  # type: ignore[arg-type]


def test_the_compiled_variants_run_on_any_x86_cpu_with_a_constant_lr() -> None:
    compiled = {v.name: v for v in pytorch.CONVENTION.variants if v.options.get("compiled")}
    assert list(compiled) == ["compiled", "foreach-compiled", "fused-compiled"]
    assert compiled["foreach-compiled"].options["foreach"] is True
    assert compiled.pop("fused-compiled").options["cpu_capability"] == "avx512"  # eager fused's
    for variant in compiled.values():
        assert "cpu_capability" not in variant.options  # no SIMD tail: no kernels to pick
        assert not variant.table
        assert not pytorch.CONVENTION.can(variant).changing_lr
        assert pytorch.CONVENTION.can(variant).weight_decay
