"""``nagref explain``: every name explains, the listing is what runs, the docs hold its output."""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path

import numpy as np
import pytest

import nagref
from nagref import _dtypes
from nagref.cli import main
from nagref.conventions import REGISTRY
from nagref.explaining import explain, names

DOCS = Path(__file__).parent.parent / "docs"


def _dtypes_of(name: str) -> tuple[str, ...]:
    for convention in REGISTRY.values():
        if name == f"{convention.name}.{convention.function.__name__}":
            return convention.variants[0].dtypes
    return _dtypes.NAMES


@pytest.mark.parametrize("name", names())
def test_every_name_explains_in_every_dtype_it_models(name: str) -> None:
    for dtype in _dtypes_of(name):
        explanation = explain(name, dtype=dtype, nesterov="formulations" not in name)
        assert explanation.dtype == dtype
        assert 1 <= len(explanation.listings) <= 2
        for listing in explanation.listings:
            assert listing.segments
            assert all(s.operations for s in listing.segments)
            for segment in listing.segments:
                written = {o.out for o in segment.operations}
                assert set(listing.outputs) <= written | set(listing.inputs)
        json.dumps(explanation.to_json())  # JSON-ready


def test_the_issue_example_shows_casts_fusion_first_step_and_tail() -> None:
    text = explain("pytorch.sgd", nesterov=True, dtype="float16").text()
    assert "the first step (momentum_buffer is None)" in text
    assert "every later step" in text
    assert "neg_lr   = -0.01: float64 -> float32 -> float16" in text
    # single-tensor mul_ keeps its scalar in float32; foreach rounds it to float16
    assert "mu       = 0.9: float64 -> float32 = 0.9 (0x1.cccccc0000000p-1)" in text
    foreach = explain("pytorch.sgd", nesterov=True, dtype="float16", variant="foreach").text()
    assert "mu       = 0.9: float64 -> float32 -> float16 = 0.9 (0x1.ccc0000000000p-1)" in foreach
    assert "(the SIMD body, 32 lanes)" in text
    assert "the last n mod 32 elements (the scalar tail)" in text
    assert "[fused multiply-add in float32: one rounding]" in text
    assert "[two roundings: the product, then the sum]" in text
    assert "buf = torch.clone(grad): no dampening" in text
    # float32 has no split and no first-step difference in rounding
    plain = explain("pytorch.sgd", nesterov=True, dtype="float32").text()
    assert "scalar tail" not in plain
    assert "every element" in plain


def test_flushing_and_compute_dtypes_are_named() -> None:
    text = explain("keras.sgd", variant="tensorflow", dtype="float32").text()
    assert "subnormal operands and results flushed to signed zero" in text
    numpy_backend = explain("keras.sgd", variant="numpy", dtype="float64").text()
    assert "computed in float32, rounded to float32, the outputs then to float64" in numpy_backend


def test_the_listing_is_the_program_that_runs() -> None:
    # the listed constants are the values the operations read: replaying the
    # listed operations in NumPy gives the function's own result
    explanation = explain("tensorflow.apply_momentum", nesterov=True, lr=0.3, momentum=0.7)
    (listing,) = explanation.listings
    rng = np.random.default_rng(0)
    p, a, g = (rng.standard_normal(50).astype(np.float32) for _ in range(3))
    registers = {"p": p, "a": a, "g": g}
    registers |= {c.name: np.float32(float.fromhex(c.value)) for c in listing.constants}
    with np.errstate(all="ignore"):
        for o in listing.segments[0].operations:
            x = [registers[name] for name in o.args]
            if o.op == "muladd":
                result = x[0] * x[1] + x[2]  # two roundings: TensorFlow does not fuse
            else:
                result = {"mul": np.multiply, "add": np.add, "sub": np.subtract}[o.op](x[0], x[1])
            registers[o.out] = result.astype(np.float32)
    var, accum = nagref.conventions.tensorflow.apply_momentum(
        p, a, g, lr=0.3, momentum=0.7, use_nesterov=True
    )
    assert registers["p"].tobytes() == var.tobytes()
    assert registers["a"].tobytes() == accum.tobytes()


def test_bad_names_and_refused_combinations_are_one_line_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ValueError, match="unknown name 'foo'; explain takes sgd"):
        explain("foo")
    with pytest.raises(ValueError, match="no variant 'bar'"):
        explain("pytorch.sgd", variant="bar")
    with pytest.raises(ValueError, match=r"models float32, float64, not float16"):
        explain("pytorch.sgd", variant="fused", dtype="float16")
    with pytest.raises(ValueError, match="variant is for a convention"):
        explain("nag", variant="jit")
    for argv in (["explain", "foo"], ["explain", "pytorch.sgd", "--nesterov", "--dampening", "1"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "error:" in err


def test_the_docs_listings_are_what_the_command_prints() -> None:
    spec = importlib.util.spec_from_file_location("listings", DOCS / "listings.py")
    assert spec is not None
    assert spec.loader is not None
    listings = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(listings)
    text = (DOCS / "conventions.md").read_text(encoding="utf-8")
    blocks = list(listings.BLOCK.finditer(text))
    assert len(blocks) >= len(REGISTRY)  # each convention listed at least once
    listed = {shlex.split(b.group("args"))[0] for b in blocks}
    assert listed >= {f"{c.name}.{c.function.__name__}" for c in REGISTRY.values()}
    for block in blocks:
        assert block.group("body") == listings.output(block.group("args")), (
            f"docs/conventions.md: 'nagref explain {block.group('args')}' changed; "
            "run python docs/listings.py"
        )


def test_the_readme_excerpt_is_what_the_command_prints() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ nagref explain ", 1)[1].split("```", 1)[0]
    command, *shown = block.splitlines()
    assert shown[-1] == "..."
    spec = importlib.util.spec_from_file_location("listings", DOCS / "listings.py")
    assert spec is not None
    assert spec.loader is not None
    listings = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(listings)
    printed = listings.output(command).splitlines()
    assert shown[:-1] == printed[: len(shown) - 1]


def test_bfloat16_flushes_in_float32_and_a_wide_trace_is_named() -> None:
    keras = explain("keras.sgd", variant="jax", dtype="bfloat16").text()
    assert (
        "each result computed in float32, rounded to bfloat16; subnormal operands and "
        "results flushed to signed zero in float32, before the rounding to bfloat16"
    ) in keras
    assert "mu   = 0.9: float64 -> float32 -> bfloat16 = 0.898438" in keras  # ml_dtypes
    trace = explain("optax.sgd", variant="jit-float32-trace", dtype="bfloat16").text()
    assert "rounded to float32, the outputs then to bfloat16 (t kept in float32)" in trace
    assert "mu     = 0.9: float64 -> float32 = 0.9 (0x1.cccccc0000000p-1)" in trace
    # every variant explains in every dtype it models
    for convention in REGISTRY.values():
        name = f"{convention.name}.{convention.function.__name__}"
        for variant in convention.variants:
            for dtype in variant.dtypes:
                if variant.name == "fused" and dtype in ("float16", "bfloat16"):
                    continue
                assert explain(name, variant=variant.name, dtype=dtype).listings
