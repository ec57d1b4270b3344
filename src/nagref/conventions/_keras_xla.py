"""Keras's SGD step compiled by XLA: the programs of ``keras.sgd(..., jit=True)``.

See :mod:`nagref.conventions.keras` for what XLA computes and what was
measured: contraction and the weight decay reassociated, one-element
tensors apart, bfloat16 and (without AVX512-FP16) float16 as the backends'
eager rounding has them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from .._apply import check
from .._engine.ir import Hyper, Instr, Program, Rounding, instr
from .._host import native_float16 as _native_float16
from .._tree import unflatten
from ._common import DTYPES, FLUSHED, from_zero, run
from ._recipes import decoupled_decay

__all__ = [
    "compiled_program",
    "folded_decay",
    "graph_decay",
    "graph_kind",
    "graph_program",
    "jit_recipe",
    "run_by_size",
    "run_grouped",
]

#: a kind of leaf (by its shape) whose program differs
K = TypeVar("K", bound=Hashable)

#: XLA's rounding of the compiled step in float32, float64 and native float16
_JIT = Rounding(contract=True, flush=FLUSHED)


def compiled_program(
    eager: Program, momentum: float, nesterov: bool, wd: float | None, native: bool | None
) -> Callable[[str, bool], Program]:
    """The compiled step's program for a dtype and (``one``) one-element leaves.

    ``eager``: the eager program, whose inputs, outputs and hyperparameters
    (momentum and weight decay converted as the backend converts them) the
    compiled step shares; ``native``: ``sgd``'s ``native_float16``.
    """
    native = _native_float16() if native is None else native
    lr = eager.hypers["lr"]
    hypers = {**eager.hypers, "neg_lr": Hyper(-lr.value, lr.via)}
    starts = from_zero("v") if "zero" in hypers else ()

    def program(dtype: str, one: bool) -> Program:
        # XLA keeps every round trip through bfloat16: the eager model
        if dtype == "bfloat16":
            return eager
        steps = (*starts, *jit_recipe(momentum, nesterov, wd, one=one))
        # float16 without native arithmetic: reassociated as the others, but
        # computed in float32 and rounded to float16 after every operation
        rounding = eager.rounding if dtype == "float16" and not native else _JIT
        return Program(steps, rounding, eager.inputs, eager.outputs, hypers)

    return program


def jit_recipe(
    momentum: float, nesterov: bool, wd: float | None, *, one: bool, kept: bool = False
) -> tuple[Instr, ...]:
    """The step as XLA compiles it on CPU (module docstring); ``one``: for one-element leaves;
    ``kept``: a velocity kept at momentum 0 too (tf-keras's), v = fma(v, 0, −fl(gη))."""
    steps = list(folded_decay(one=one)) if wd is not None else []
    if momentum != 0 or kept:
        steps += [
            instr("b", "mul", "g", "lr", note="gradient * learning_rate"),
            instr("nb", "neg", "b"),
            instr("v", "muladd", "v", "mu", "nb", note="m * momentum - g * lr, fused"),
        ]
        if nesterov:
            steps += [
                instr("u", "muladd", "v", "mu", "nb", note="new m * momentum - g * lr, fused"),
                instr("p", "add", "p", "u", note="variable.assign_add(...)"),
            ]
        else:
            steps.append(instr("p", "add", "p", "v", note="variable.assign_add(m)"))
    else:
        steps.append(
            instr("p", "muladd", "g", "neg_lr", "p", note="variable - gradient * lr, fused")
        )
    return tuple(steps)


def folded_decay(*, one: bool) -> tuple[Instr, ...]:
    """The weight decay θ − (θλ)η with λη folded, θ − θ·fl(ηλ) (XLA and TensorFlow's
    graph optimizer), or for one-element leaves under XLA θ − fl(θλ)·η; a ``muladd``
    that XLA contracts."""
    if one:
        return (
            instr("t", "mul", "p", "wd", note="variable * wd"),
            instr("p", "muladd", "t", "neg_lr", "p", note="variable - (variable * wd) * lr, fused"),
        )
    return (
        instr("c", "mul", "lr", "wd", note="lr * wd: (variable * wd) * lr reassociated"),
        instr("nc", "neg", "c"),
        instr("p", "muladd", "p", "nc", "p", note="variable - variable * (lr * wd)"),
    )


def graph_kind(shape: tuple[int, ...]) -> str:
    """A leaf's kind, where TensorFlow's graph optimizer and XLA tell them apart:
    ``"0-d"``, ``"one"`` (one element) or ``"many"``."""
    return "0-d" if not shape else "one" if math.prod(shape) == 1 else "many"


def graph_decay(kind: str, fold_one: bool) -> tuple[Instr, ...]:
    """Keras's decoupled weight decay inside a ``tf.function``: TensorFlow's graph optimizer
    folds λη, θ − θ·fl(ηλ), except on 0-d variables (``kind``, :func:`graph_kind`) and, unless
    ``fold_one``, on one-element ones; there θ − (θλ)η as eagerly. Measured: tf-keras 2.21
    folds one-element variables whose learning rate needs a cast (not of its variable's
    dtype); Keras 3.15.1 those of every dtype (a float or callable learning rate), both on
    TensorFlow 2.21."""
    folded = kind != "0-d" and (kind != "one" or fold_one)
    return folded_decay(one=False) if folded else decoupled_decay()


def graph_program(eager: Program) -> Callable[[str, str], Program]:
    """``eager``'s step inside a ``tf.function`` (Keras 3), per dtype and kind of leaf
    (:func:`graph_kind`): its decoupled weight decay as :func:`graph_decay` has it."""
    decay = decoupled_decay()
    recipe = tuple(eager.recipe)
    at = next(i for i in range(len(recipe)) if recipe[i : i + len(decay)] == decay)

    def program(dtype: str, kind: str) -> Program:
        folded = graph_decay(kind, fold_one=True)
        return eager._replace(recipe=(*recipe[:at], *folded, *recipe[at + len(decay) :]))

    return program


def run_by_size(
    trees: Mapping[str, object],
    program: Callable[[str, bool], Program],
    out: tuple[object, object] | None,
    by_size: bool,
) -> tuple[Any, ...]:
    """Run ``program(dtype, one)`` over the trees, one-element leaves (``one``) apart
    (``by_size``; else every leaf as ``one=False``): see :func:`run_grouped`."""
    if not by_size:
        return run(trees, lambda dtype: program(dtype, False), out)
    return run_grouped(trees, program, out, _one_element)


def run_grouped(
    trees: Mapping[str, object],
    program: Callable[[str, K], Program],
    out: tuple[object, object] | None,
    kind: Callable[[tuple[int, ...]], K],
) -> tuple[Any, ...]:
    """Run ``program(dtype, kind(shape))`` over the trees, each kind of leaf apart.

    Where the leaves are of several kinds (by their shapes), the trees are
    validated whole, then each group of leaves runs as lists (the caller's
    ``out`` leaves among them), and the outputs are rebuilt in the first
    tree's structure.
    """
    flat = check(lambda dtype: program(dtype, kind(())), trees, out=out, n_outputs=2, dtypes=DTYPES)
    kinds = [kind(tuple(leaf.shape)) for leaf in flat.columns[0]]
    groups: dict[K, list[int]] = {}
    for i, leaf_kind in enumerate(kinds):
        groups.setdefault(leaf_kind, []).append(i)
    if flat.xp is None or len(groups) == 1:
        only = kinds[0] if kinds else kind(())
        return run(trees, lambda dtype: program(dtype, only), out)
    results: list[list[Any] | None] = [None, None]
    names = list(trees)
    for group_kind, group in groups.items():
        group_trees = {
            n: [column[i] for i in group] for n, column in zip(names, flat.columns, strict=True)
        }
        group_out = (
            None
            if out is None
            else tuple(
                None if column is None else [column[i] for i in group] for column in flat.out
            )
        )
        outputs = run(group_trees, functools.partial(_of_kind, program, group_kind), group_out)
        for k, leaves in enumerate(outputs):
            if leaves is None:
                continue
            column = results[k] or [None] * len(kinds)
            for i, leaf in zip(group, leaves, strict=True):
                column[i] = leaf
            results[k] = column
    return tuple(
        None if column is None else unflatten(flat.structure, column) for column in results
    )


def _one_element(shape: tuple[int, ...]) -> bool:
    return math.prod(shape) == 1


def _of_kind(program: Callable[[str, K], Program], kind: K, dtype: str) -> Program:
    return program(dtype, kind)
