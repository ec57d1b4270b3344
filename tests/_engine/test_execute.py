"""nagref._engine.execute: leaves grouped by dtype and device, each group run once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from backends import XP

from nagref._compat import array_namespace
from nagref._engine import execute
from nagref._engine.execute import run
from nagref._engine.ir import Batch, Hyper, Program, Rounding, Split, instr
from nagref._engine.kernels import disabled

#: p <- (p - g)·lr, and a copy of g (no multiply-add that jax.jit could contract).
STEP = Program(
    (instr("t", "sub", "p", "g"), instr("p", "mul", "t", "lr"), instr("c", "copy", "g")),
    Rounding(contract=False),
    ("p", "g"),
    ("p", "c"),
    {"lr": Hyper(0.1)},
)
NP = array_namespace(np.zeros(1))


def _leaves(dtypes: Sequence[str], seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(5 + k).astype(d) for k, d in enumerate(dtypes)]
    grads = [rng.standard_normal(5 + k).astype(d) for k, d in enumerate(dtypes)]
    return params, grads


def _want(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    result: np.ndarray = (p - g) * np.asarray(0.1, p.dtype)
    return result


def test_groups_are_formed_by_dtype_in_first_seen_order() -> None:
    params, _ = _leaves(["float32", "float64", "float32", "float16", "float64"])
    groups = execute._groups(params)
    assert [(str(first.dtype), list(indices)) for first, indices in groups] == [
        ("float32", [0, 2]),
        ("float64", [1, 4]),
        ("float16", [3]),
    ]
    assert all(first is params[indices[0]] for first, indices in groups)


def test_one_group_covers_every_leaf() -> None:
    params, _ = _leaves(["float32"] * 4)
    ((first, indices),) = execute._groups(params)
    assert first is params[0]
    assert list(indices) == [0, 1, 2, 3]


def test_mixed_dtypes_are_run_per_group_and_returned_in_place(xp: XP) -> None:
    dtypes = ["float32", "float64", "float32", "float64"]
    params, grads = _leaves(dtypes)
    asked: list[str] = []

    def program_for(dtype: str) -> Program:
        asked.append(dtype)
        return STEP

    def step(*leaves: Any) -> Any:
        n = len(leaves) // 2
        return run(xp.ns, program_for, [list(leaves[:n]), list(leaves[n:])], [None, None])

    new, copies = xp.call(step, *map(xp.asarray, params), *map(xp.asarray, grads))
    assert asked == ["float32", "float64"]  # once per dtype, in first-seen order
    for k, (p, g) in enumerate(zip(params, grads, strict=True)):
        got = xp.to_numpy(new[k])
        assert got.dtype == p.dtype
        assert got.tobytes() == _want(p, g).tobytes(), k
        assert xp.to_numpy(copies[k]).tobytes() == g.tobytes()


def test_an_output_the_program_does_not_produce_is_none() -> None:
    params, grads = _leaves(["float32", "float64"])
    program = STEP._replace(outputs=("p", None))
    new, missing = run(NP, lambda dtype: program, [params, grads], [None, None])
    assert missing is None
    assert new is not None
    assert [x.tobytes() for x in new] == [
        _want(p, g).tobytes() for p, g in zip(params, grads, strict=True)
    ]


def test_the_callers_out_arrays_are_written_and_returned() -> None:
    params, grads = _leaves(["float32", "float64", "float32"])
    targets = [np.full_like(p, np.nan) for p in params]
    new, copies = run(NP, lambda dtype: STEP, [params, grads], [targets, None])
    assert new is not None
    assert copies is not None
    for target, result, p, g in zip(targets, new, params, grads, strict=True):
        assert result is target
        assert target.tobytes() == _want(p, g).tobytes()
    assert all(c is not g for c, g in zip(copies, grads, strict=True))


def test_the_callers_out_arrays_are_written_by_the_interpreter_too() -> None:
    params, grads = _leaves(["float32", "float64"])
    targets = [np.full_like(g, np.nan) for g in grads]
    with disabled():
        _, copies = run(NP, lambda dtype: STEP, [params, grads], [None, targets])
    assert copies is not None
    assert [c is t for c, t in zip(copies, targets, strict=True)] == [True, True]
    assert [t.tobytes() for t in targets] == [g.tobytes() for g in grads]


def test_every_program_is_prepared_before_anything_is_computed() -> None:
    params, grads = _leaves(["float32", "float16"])
    targets = [np.full_like(p, np.nan) for p in params]

    def program_for(dtype: str) -> Program:
        if dtype == "float16":
            raise TypeError("no float16 here")
        return STEP

    with pytest.raises(TypeError, match="no float16 here"):
        run(NP, program_for, [params, grads], [targets, None])
    assert all(np.isnan(t).all() for t in targets)  # the float32 group was not run


def test_each_group_gets_its_constants_split_and_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel sees one batch per group: its own dtype's constants and lanes."""
    batches: list[Batch] = []

    def kernel(batch: Batch) -> Sequence[tuple[Any, ...] | None]:
        batches.append(batch)
        return [None] * len(batch.columns[0])

    monkeypatch.setattr(execute, "kernel_for", lambda xp: kernel)
    tail = (instr("p", "copy", "p"), instr("c", "copy", "g"))
    program = STEP._replace(
        hypers={"lr": Hyper(0.1, ("opmath", "storage"))},
        split=Split(tail, Rounding(contract=False), {"float16": 4}),
    )
    params, grads = _leaves(["float16", "float32", "float16"])
    run(NP, lambda dtype: program, [params, grads], [None, None])
    half, single = batches
    assert half.lanes == 4
    assert len(half.segments) == 2
    assert half.segments[1].recipe == tail
    assert [list(map(id, c)) for c in half.columns] == [
        [id(params[0]), id(params[2])],
        [id(grads[0]), id(grads[2])],
    ]
    assert half.segments[0].constants["lr"].dtype == np.float16
    assert single.lanes == 0  # no lanes for float32: no tail segment
    assert len(single.segments) == 1
    assert single.segments[0].constants["lr"].dtype == np.float32
    assert half.outputs == single.outputs == ("p", "c")


def test_a_kernel_may_decline_single_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the kernel returns is used; what it declines (None) runs on the interpreter."""

    def kernel(batch: Batch) -> Sequence[tuple[Any, ...] | None]:
        params = batch.columns[0]
        return [
            None if k % 2 else (np.full_like(p, 7.0), np.full_like(p, 8.0))
            for k, p in enumerate(params)
        ]

    monkeypatch.setattr(execute, "kernel_for", lambda xp: kernel)
    params, grads = _leaves(["float32", "float64", "float32", "float64"])
    new, copies = run(NP, lambda dtype: STEP, [params, grads], [None, None])
    assert new is not None
    assert copies is not None
    # group float32 = leaves 0, 2 (kernel took its first, declined its second)
    assert new[0].tolist() == [7.0] * 5
    assert new[2].tobytes() == _want(params[2], grads[2]).tobytes()
    assert new[1].tolist() == [7.0] * 6
    assert new[3].tobytes() == _want(params[3], grads[3]).tobytes()
    assert copies[3].tobytes() == grads[3].tobytes()


def test_lists_of_leaves_run_as_each_backend_calls(xp: XP) -> None:
    """Under xp.call: jitted on JAX, and on Dask with computing forbidden (graphs only)."""
    params, grads = _leaves(["float64", "float32", "float64"])
    new, _ = xp.call(
        lambda p, g: run(xp.ns, lambda dtype: STEP, [p, g], [None, None]),
        [xp.asarray(p) for p in params],
        [xp.asarray(g) for g in grads],
    )
    assert [xp.to_numpy(x).tobytes() for x in new] == [
        _want(p, g).tobytes() for p, g in zip(params, grads, strict=True)
    ]
