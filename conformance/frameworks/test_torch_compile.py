"""``torch.compile(optimizer.step)``, live (issue 14, item 5): the ``compiled`` variants.

inductor's C++ fuses the whole update into one loop compiled without
contraction: nothing is fused (eager's ``add_`` is one FMA), float16 and
bfloat16 are computed and kept in float32, and the hyperparameters are
literals rounded once (``nagref.conventions._inductor``). Each case compiles
afresh (a few seconds here), so these variants are not rows of the live
table: this suite runs them through the live driver, a few random cases per
variant and dtype, and the audit names them on a recorded run.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import nagref
from conformance import require
from conformance.frameworks.conftest import LiveWorker
from nagref.conventions import pytorch
from nagref.conventions._aten import release
from nagref.live import Spec, compare, run_nagref
from nagref.live.cases import arrays, random_spec
from nagref.live.recordings import Recorded, write

require("torch")

COMPILED = [v for v in pytorch.CONVENTION.variants if v.options.get("compiled")]
CASES = 2  # per variant and dtype: each compiles afresh


def test_the_compiled_variants_are_the_registrys_and_not_table_rows() -> None:
    assert [v.name for v in COMPILED] == ["compiled", "foreach-compiled", "fused-compiled"]
    for variant in COMPILED:
        assert not variant.table
    for variant in COMPILED[:2]:
        assert not pytorch.CONVENTION.can(variant).changing_lr  # torch specialises on lr
    # dynamo does not trace into the fused kernel: it runs as eagerly, any lr
    assert pytorch.CONVENTION.can(COMPILED[2]).changing_lr
    assert COMPILED[2].dtypes == ("float32", "float64")  # as eager fused in torch 2.13


@pytest.mark.parametrize(("variant", "dtype"), [(v.name, d) for v in COMPILED for d in v.dtypes])
def test_a_compiled_step_is_inductors_program(
    variant: str, dtype: str, live_worker: LiveWorker
) -> None:
    """Random cases, bitwise; where the eager model differs, torch compiled it (not fused)."""
    rng = np.random.default_rng(zlib.crc32(f"{variant}/{dtype}".encode()))
    worker = live_worker("pytorch", variant)
    eager = variant.removesuffix("-compiled").replace("compiled", "single-tensor")
    differs = 0
    for k in range(CASES):
        spec = random_spec(rng, "pytorch", variant, dtype, max_steps=20)
        if k == 0:  # a SIMD body and tail, momentum, several steps
            spec = replace(spec, shape=(100,), momentum=0.9, lr=(0.05,) * 6, scale=1.0)
        live = worker.run(spec)
        result = compare(spec, live, run_nagref(spec))
        assert result.bitwise, (spec, result.first)
        differs += compare(spec, live, run_nagref(replace(spec, variant=eager))).mismatches
    if variant == "fused-compiled":  # the eager fused kernel, not traced (torch.compiler.disable)
        assert differs == 0
    else:
        assert differs > 0  # the eager model would not do


def test_the_audit_names_the_compiled_variant(live_worker: LiveWorker, tmp_path: Path) -> None:
    spec = Spec(
        "pytorch", "compiled", "float32", (37,), seed=2026, lr=(0.05,) * 5, momentum=0.9,
        nesterov=True,
    )  # fmt: skip
    worker = live_worker("pytorch", "compiled")
    initial, grads = arrays(spec)
    recorded = Recorded(worker.version, spec, initial, grads, worker.run(spec))
    report = nagref.audit(write(tmp_path, recorded))
    named = [name.split(",")[0] for name in report.bitwise]
    assert "pytorch compiled" in named, report.bitwise
    assert "pytorch single-tensor" not in named  # the eager step is told apart


def test_a_0_d_float64_parameter_as_each_torch_release_compiles_it() -> None:
    """torch 2.13's compiled single-tensor step does not update a 0-d float64 parameter
    (refused for version="2.13"); torch 2.14's does, as modelled."""
    torch = require("torch")
    torch._dynamo.reset()
    p = torch.tensor(0.5, dtype=torch.float64)
    step = torch.compile(torch.optim.SGD([p], lr=0.01, momentum=0.9).step)
    for _ in range(2):
        p.grad = torch.tensor(0.3, dtype=torch.float64)
        step()
    x, b, zero_d = np.float64(0.5) * np.ones(()), None, np.full((), 0.3)
    if release(torch.__version__) == "2.13":
        assert float(p) == 0.5  # eager: 0.4913
        with pytest.raises(NotImplementedError, match=r"param: compiled=True on a 0-d float64"):
            pytorch.sgd(x, zero_d, None, lr=0.01, compiled=True)
    else:
        for _ in range(2):
            x, b = pytorch.sgd(x, zero_d, b, lr=0.01, momentum=0.9, compiled=True, version="2.14")
        assert float(p) == float(x) != 0.5
    one, _ = pytorch.sgd(np.full(1, 0.5), np.full(1, 0.3), None, lr=0.01, compiled=True)
    assert one.tolist() == [0.5 - 0.01 * 0.3]
