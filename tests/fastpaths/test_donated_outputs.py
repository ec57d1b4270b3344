"""out=: results written into caller-donated arrays, with the same bits."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest

import nagref
from nagref import fastpaths
from nagref.conventions import keras, optax, pytorch, tensorflow


def _state(dtype: str = "float32", n: int = 1000) -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(3)
    return tuple(rng.standard_normal(n).astype(dtype) for _ in range(3))  # type: ignore[return-value]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("fast", [True, False], ids=["kernel", "generic"])
def test_an_in_place_step_has_the_bits_of_a_fresh_one(dtype: str, fast: bool) -> None:
    p, g, v = _state(dtype)
    expected = nagref.nag(p, g, v, lr=0.01, momentum=0.9)
    p2, v2 = p.copy(), v.copy()
    with fastpaths.disabled() if not fast else contextlib.nullcontext():
        result = nagref.nag(p2, g, v2, lr=0.01, momentum=0.9, out=(p2, v2))
    assert result[0] is p2
    assert result[1] is v2
    assert p2.tobytes() == expected[0].tobytes()
    assert v2.tobytes() == expected[1].tobytes()


def test_separate_buffers_leave_the_inputs_alone() -> None:
    p, g, v = _state()
    before = [x.copy() for x in (p, g, v)]
    new_p, new_v = np.empty_like(p), np.empty_like(v)
    nagref.momentum(p, g, v, lr=0.1, momentum=0.5, out=(new_p, new_v))
    for x, y in zip((p, g, v), before, strict=True):
        assert x.tobytes() == y.tobytes()
    expected = nagref.momentum(p, g, v, lr=0.1, momentum=0.5)
    assert new_p.tobytes() == expected[0].tobytes()
    assert new_v.tobytes() == expected[1].tobytes()


def test_pytrees_sgd_and_lookahead() -> None:
    p, g, v = _state()
    tree, grads = {"a": p, "b": [g]}, {"a": g, "b": [p]}
    target = {"a": np.empty_like(p), "b": [np.empty_like(g)]}
    result = nagref.sgd(tree, grads, lr=0.5, out=target)
    assert result["a"] is target["a"]
    assert result["b"][0] is target["b"][0]
    assert result["a"].tobytes() == nagref.sgd(p, g, lr=0.5).tobytes()
    point = np.empty_like(p)
    assert nagref.lookahead(p, v, momentum=0.9, out=point) is point
    assert point.tobytes() == nagref.lookahead(p, v, momentum=0.9).tobytes()


def test_an_output_overlapping_its_input_off_by_one_is_refused_unwritten() -> None:
    # an output that shares memory with an input without being exactly it
    # would read elements already written: refused before anything is computed
    base = np.arange(1001, dtype=np.float32) / 7
    p, g = base[:1000].copy(), base[1:].copy()
    storage = np.concatenate([p, [0.0]]).astype(np.float32)
    before = storage.copy()
    shifted = storage[1:]  # overlaps p's copy in storage[:-1], one element apart
    with pytest.raises(ValueError, match="overlaps the input param in memory"):
        nagref.sgd(storage[:-1], g, lr=0.25, out=shifted)
    assert storage.tobytes() == before.tobytes()


@pytest.mark.parametrize(
    "step",
    [
        lambda p, g, v, o: pytorch.sgd(p, g, v, lr=0.1, momentum=0.9, nesterov=True, out=o),
        lambda p, g, v, o: keras.sgd(p, g, v, learning_rate=0.1, momentum=0.9, out=o),
        lambda p, g, v, o: optax.sgd(p, g, v, learning_rate=0.1, momentum=0.9, jit=True, out=o),
        lambda p, g, v, o: tensorflow.apply_momentum(p, v, g, lr=0.1, momentum=0.9, out=o),
    ],
    ids=["pytorch", "keras", "optax", "tensorflow"],
)
def test_conventions_step_in_place(step: Any) -> None:
    p, g, v = _state()
    expected = step(p, g, v, None)
    p2, v2 = p.copy(), v.copy()
    result = step(p2, g, v2, (p2, v2))
    assert result[0] is p2
    assert result[1] is v2
    assert p2.tobytes() == expected[0].tobytes()
    assert v2.tobytes() == expected[1].tobytes()
    p3 = p.copy()
    only_param = step(p3, g, v, (p3, None))  # the state comes back as a new array
    assert only_param[0] is p3
    assert only_param[1].tobytes() == expected[1].tobytes()


def test_torch_tensors_step_in_place_on_the_generic_path() -> None:
    torch = pytest.importorskip("torch")
    p, g, v = (torch.tensor(x) for x in _state())
    expected = nagref.nag(p, g, v, lr=0.01, momentum=0.9)
    p2, v2 = p.clone(), v.clone()
    nagref.nag(p2, g, v2, lr=0.01, momentum=0.9, out=(p2, v2))
    assert torch.equal(p2, expected[0])
    assert torch.equal(v2, expected[1])


def test_bad_outputs_are_named() -> None:
    p, g, v = _state()
    with pytest.raises(ValueError, match=r"out must be a tuple of 2 pytrees, got numpy.ndarray"):
        nagref.nag(p, g, v, lr=0.1, momentum=0.9, out=p)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"out\[1\] has shape \(3,\) but param has shape"):
        nagref.nag(p, g, v, lr=0.1, momentum=0.9, out=(p, np.zeros(3, np.float32)))
    with pytest.raises(TypeError, match=r"out has dtype float64 but param has dtype"):
        nagref.sgd(p, g, lr=0.1, out=p.astype(np.float64))
    with pytest.raises(ValueError, match=r"out\[1\] is the same array as out\[0\]: the"):
        nagref.nag(p, g, v, lr=0.1, momentum=0.9, out=(p, p))
    with pytest.raises(ValueError, match=r"out\['b'\] is the same array as out\['a'\]"):
        nagref.sgd({"a": p, "b": g}, {"a": g, "b": g}, lr=0.1, out={"a": v, "b": v})
    with pytest.raises(ValueError, match=r"out\[1\] must be None: this step returns no"):
        pytorch.sgd(p, g, None, lr=0.1, out=(p, v))
    with pytest.raises(ValueError, match=r"out must be a pair \(param_out, trace_out\)"):
        optax.sgd(p, g, None, learning_rate=0.1, out=[p, v])  # type: ignore[arg-type]
    before = p.tobytes()
    with pytest.raises(ValueError, match=r"lr must be a finite number >= 0, got -1.0"):
        nagref.nag(p, g, v, lr=-1.0, momentum=0.9, out=(p, v))
    assert p.tobytes() == before  # nothing is written when a check fails


def test_an_output_may_be_its_own_leafs_input_but_not_anothers() -> None:
    p, g, v = _state()
    a, b = p.copy(), v.copy()
    before = (a.tobytes(), b.tobytes())
    # b is leaf 'y''s parameter and would receive leaf 'x''s result first
    with pytest.raises(
        ValueError,
        match=r"out\['x'\] is the same array as the input "
        r"param\['y'\] of another leaf",
    ):
        nagref.sgd({"x": a, "y": b}, {"x": g, "y": g}, lr=0.5, out={"x": b, "y": a})
    # a gradient shared by two leaves is read by both: neither may write it
    with pytest.raises(
        ValueError,
        match=r"out\['x'\] is the same array as the input "
        r"grad\['y'\] of another leaf",
    ):
        nagref.sgd({"x": a, "y": b}, {"x": g, "y": g}, lr=0.5, out={"x": g, "y": b})
    assert (a.tobytes(), b.tobytes()) == before
    # its own leaf's inputs, even two of them (torch's buffer may be the parameter)
    tree = {"x": a, "y": b}
    expected = pytorch.sgd(tree, {"x": g, "y": g}, tree, lr=0.1, momentum=0.9)
    result = pytorch.sgd(tree, {"x": g, "y": g}, tree, lr=0.1, momentum=0.9, out=(tree, None))
    assert result[0]["x"] is a
    assert a.tobytes() == expected[0]["x"].tobytes()
    assert b.tobytes() == expected[0]["y"].tobytes()


@pytest.mark.parametrize("fast", [True, False], ids=["kernel", "generic"])
def test_a_read_only_output_is_refused_before_anything_is_written(fast: bool) -> None:
    p, g, _ = _state()
    tree = {"a": p.copy(), "b": p.copy(), "c": p.copy()}
    locked = tree["c"]
    locked.flags.writeable = False
    before = {name: x.tobytes() for name, x in tree.items()}
    with (
        fastpaths.disabled() if not fast else contextlib.nullcontext(),
        pytest.raises(ValueError, match=r"out\['c'\] is read-only: an output must"),
    ):
        nagref.sgd(tree, dict.fromkeys(tree, g), lr=0.5, out=tree)
    assert {name: x.tobytes() for name, x in tree.items()} == before


def test_jax_arrays_cannot_be_written_in_place() -> None:
    jnp = pytest.importorskip("jax.numpy")
    p = jnp.ones(3, dtype=jnp.float32)
    with pytest.raises(TypeError, match=r"out is a JAX array, which cannot be written"):
        nagref.sgd(p, p, lr=0.1, out=p)
