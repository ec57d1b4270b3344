"""nagref._apply: a program over matching pytrees, outputs given or new, and capture()."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest

from nagref._apply import Captured, apply, capture, sharing
from nagref._compare import bitwise_equal
from nagref._engine.ir import Hyper, Program, Rounding, instr

#: p <- (p - g)·lr, and a copy of g
STEP = Program(
    (instr("t", "sub", "p", "g"), instr("p", "mul", "t", "lr"), instr("c", "copy", "g")),
    Rounding(contract=False),
    ("p", "g"),
    ("p", "c"),
    {"lr": Hyper(0.1)},
)
#: the same update, with no second output
ONE = STEP._replace(outputs=("p", None))


class Pair(NamedTuple):
    first: Any
    second: Any


def _trees(seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    rng = np.random.default_rng(seed)

    def tree() -> dict[str, Any]:
        return {
            "w": [rng.standard_normal(5).astype(np.float16), rng.standard_normal((2, 3))],
            "b": (rng.standard_normal(7).astype(np.float32),),
            "s": Pair(
                np.array(rng.standard_normal(), np.float32),
                rng.standard_normal(4).astype(np.float32),
            ),
        }

    return tree(), tree()


def _leaves(tree: dict[str, Any]) -> list[Any]:
    return [*tree["w"], *tree["b"], *tree["s"]]


def _want(p: np.ndarray, g: np.ndarray) -> Any:
    return (p - g) * np.asarray(0.1, p.dtype)


def _same(a: Any, b: Any) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool(bitwise_equal(a, b).all())


def test_apply_keeps_the_structure_and_computes_each_leaf() -> None:
    params, grads = _trees()
    new, copied = apply(STEP, {"param": params, "grad": grads})
    for out in (new, copied):
        assert list(out) == ["w", "b", "s"]
        assert isinstance(out["w"], list)
        assert isinstance(out["b"], tuple)
        assert isinstance(out["s"], Pair)
    for p, g, n, c in zip(
        _leaves(params), _leaves(grads), _leaves(new), _leaves(copied), strict=True
    ):
        assert _same(n, _want(p, g))
        assert _same(c, g)
        assert c is not g
    assert type(new["s"].first) is np.ndarray  # a 0-d leaf stays an array
    assert new["s"].first.shape == ()


def test_out_writes_into_the_given_arrays() -> None:
    params, grads = _trees()
    targets = {
        "w": [np.empty(5, np.float16), np.empty((2, 3))],
        "b": (np.empty(7, np.float32),),
        "s": Pair(np.empty((), np.float32), np.empty(4, np.float32)),
    }
    new, copied = apply(STEP, {"param": params, "grad": grads}, out=(targets, None))
    for p, g, t, n, c in zip(
        _leaves(params),
        _leaves(grads),
        _leaves(targets),
        _leaves(new),
        _leaves(copied),
        strict=True,
    ):
        assert n is t
        assert _same(t, _want(p, g))
        assert _same(c, g)
    # in place: the parameters themselves receive the result
    before = [p.copy() for p in _leaves(params)]
    new, _ = apply(STEP, {"param": params, "grad": grads}, out=(params, None))
    for old, p, g, n in zip(before, _leaves(params), _leaves(grads), _leaves(new), strict=True):
        assert n is p
        assert _same(p, _want(old, g))


def test_out_must_have_one_entry_per_output() -> None:
    params, grads = _trees()
    with pytest.raises(ValueError, match="out must be a tuple of 2 pytrees"):
        apply(STEP, {"param": params, "grad": grads}, out=(params,))


def test_an_output_the_program_does_not_produce_is_none() -> None:
    params, grads = _trees()
    new, missing = apply(ONE, {"param": params, "grad": grads})
    assert missing is None
    assert _same(new["b"][0], _want(params["b"][0], grads["b"][0]))


def test_trees_without_leaves_give_empty_trees() -> None:
    assert apply(STEP, {"param": {}, "grad": {}}) == ({}, {})
    assert apply(STEP, {"param": [], "grad": []}) == ([], [])
    assert apply(STEP, {"param": {"a": [], "b": ()}, "grad": {"a": [], "b": ()}}) == (
        {"a": [], "b": ()},
        {"a": [], "b": ()},
    )
    assert apply(ONE, {"param": {}, "grad": {}}) == ({}, None)


def test_a_mismatched_tree_is_named_by_its_path() -> None:
    params, grads = _trees()
    grads["w"] = grads["w"][:1]
    with pytest.raises(ValueError, match=r"grad\['w'\]"):
        apply(STEP, {"param": params, "grad": grads})


def test_a_program_per_dtype_is_asked_per_dtype() -> None:
    asked: list[str] = []

    def program_for(dtype: str) -> Program:
        asked.append(dtype)
        if dtype == "float64":
            raise TypeError("no float64 here")
        return STEP

    params, grads = _trees()
    with pytest.raises(TypeError, match="no float64 here"):
        apply(program_for, {"param": params, "grad": grads}, n_outputs=2)
    del params["w"][1], grads["w"][1]  # the float64 leaf
    asked.clear()
    new, _ = apply(program_for, {"param": params, "grad": grads}, n_outputs=2)
    assert sorted(asked) == ["float16", "float32"]
    assert _same(new["w"][0], _want(params["w"][0], grads["w"][0]))


def test_capture_records_each_call_inside_the_context_only() -> None:
    params, grads = _trees()
    apply(STEP, {"param": params, "grad": grads})
    with capture() as outer:
        apply(STEP, {"param": params, "grad": grads})
        with capture() as inner:
            apply(ONE, {"x": params, "y": grads})
        apply(ONE, {"a": {}, "b": {}})  # even without leaves
    apply(STEP, {"param": params, "grad": grads})
    assert [c.names for c in outer] == [("param", "grad"), ("a", "b")]
    assert [c.names for c in inner] == [("x", "y")]
    assert all(isinstance(c, Captured) for c in outer + inner)
    assert outer[0].program_for("float16") is STEP
    assert inner[0].program_for("float64") is ONE
    assert outer[1].program_for("float32") is ONE


def test_sharing_gives_a_call_on_the_same_arrays_the_first_calls_results() -> None:
    p, g = np.arange(5, dtype=np.float32), np.ones(5, np.float32)
    respelled = Program(
        (instr("d", "sub", "x", "y"), instr("e", "mul", "d", "eta"), instr("f", "copy", "y")),
        Rounding(contract=False),
        ("x", "y"),
        ("e", "f"),
        {"eta": Hyper(0.1, ("float32", "storage")), "unread": Hyper(2.0)},
    )
    scope = sharing()
    with scope:
        first = apply(STEP, {"p": p, "g": g})
        again = apply(respelled, {"x": p, "y": g})  # the same computation, other names
        copied = apply(STEP, {"p": p.copy(), "g": g})  # other arrays: computed
        other = apply(STEP._replace(hypers={"lr": Hyper(0.2)}), {"p": p, "g": g})
    assert all(a is b for a, b in zip(again, first, strict=True))  # the very same arrays
    assert copied[0] is not first[0]
    assert all(bitwise_equal(a, b).all() for a, b in zip(copied, first, strict=True))
    assert other[0] is not first[0]
    with scope:  # entered again, the scope still holds its calls
        assert apply(STEP, {"p": p, "g": g})[0] is first[0]
    assert apply(STEP, {"p": p, "g": g})[0] is not first[0]  # outside it, nothing is shared
    with scope:  # results that nothing holds any more are not kept for later calls
        del first, again
        fresh = apply(STEP, {"p": p, "g": g})
        assert apply(STEP, {"p": p, "g": g})[0] is fresh[0]
