"""The executor: a program over every set of leaves, through a kernel or the interpreter.

A rule, formulation or convention prepares one :class:`~.ir.Program` per
call (per storage dtype, where its rounding depends on it); :func:`run`
groups the leaves by dtype and device into :class:`~.ir.Batch` es, casts
each group's constants once (:mod:`.hypers`), and hands each batch to the
kernel registered for the namespace (:mod:`.kernels`, the one seam for fast
paths). What a kernel declines runs on the generic interpreter
(:mod:`.interpret`), which defines the result. A kernel computes one body
and one tail per leaf: a batch whose split cuts some leaf into chunks with
tails of their own (:func:`~.ir.chunked`: PyTorch's threads on a large
tensor) runs on the interpreter, whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._checks import dtype_name
from .._compat import cpu_only, device, ieee_arithmetic
from .._typing import Namespace
from .hypers import constants
from .interpret import run_leaf
from .ir import Batch, Hyper, Program, Recipe, Rounding, Segment, chunked
from .kernels import kernel_for

__all__ = ["run"]


def run(
    xp: Namespace,
    program_for: Callable[[str], Program],
    columns: Sequence[Sequence[Any]],
    out: Sequence[Sequence[Any] | None],
) -> list[list[Any] | None]:
    """Run a program over every set of leaves; return each output's leaves.

    Args:
        xp: the leaves' namespace.
        program_for: the program for a storage dtype (by name); it may raise
            for a dtype it refuses. Every group's program is prepared, and
            every constant cast, before anything is computed.
        columns: per input register, its leaves (validated: corresponding
            leaves share dtype, shape and device).
        out: per output of the program, the caller's arrays to write into,
            or None.

    Returns:
        Per output of the program, its leaves, or None for an output the
        program does not produce (a None in its ``outputs``).

    The arithmetic is IEEE whatever NumPy's error state
    (:func:`nagref._compat.ieee_arithmetic`): overflow gives inf, never an
    exception after some leaves were written.
    """
    with ieee_arithmetic():
        prepared = [
            (
                indices,
                _batch(
                    xp, program_for(dtype_name(first)), first, indices, columns=columns, out=out
                ),
            )
            for first, indices in _groups(columns[0])
        ]
        return _compute(xp, prepared, len(columns[0]), len(out))


def _compute(
    xp: Namespace,
    prepared: Sequence[tuple[Sequence[int], tuple[Batch, list[int]]]],
    size: int,
    n_outputs: int,
) -> list[list[Any] | None]:
    """Run each prepared batch (kernel first, then the interpreter); each output's leaves."""
    results: list[list[Any] | None] = [None] * n_outputs
    kernel = kernel_for(xp)
    for indices, (batch, produced) in prepared:
        # outputs of a dtype of their own: the interpreter stores them (no kernel
        # does); chunks with tails of their own: it alone computes them
        declined: list[tuple[Any, ...] | None] = [None] * len(batch.columns[0])
        interpreted = bool(batch.stored) or _chunked(batch) or _masked(batch)
        done = declined if kernel is None or interpreted else kernel(batch)
        for k, (index, leaf) in enumerate(zip(indices, done, strict=True)):
            outputs = run_leaf(xp, batch, k) if leaf is None else leaf
            for j, result in zip(produced, outputs, strict=True):
                column = results[j]
                if column is None:
                    column = results[j] = [None] * size
                column[index] = result
    return results


def _chunked(batch: Batch) -> bool:
    """Whether the batch's split cuts some leaf into chunks with tails of their own."""
    if not batch.lanes or batch.threads <= 1 or batch.grain <= 0:
        return False
    sizes = {math.prod(int(e) for e in leaf.shape) for leaf in batch.columns[0]}
    return any(chunked(batch.lanes, n, batch.grain, batch.threads) for n in sizes)


def _masked(batch: Batch) -> bool:
    """Whether some leaf of the batch has per-instruction masks (see :class:`~.ir.Program`)."""
    return batch.scalar is not None and any(batch.scalar)


def _groups(leaves: Sequence[Any]) -> list[tuple[Any, Sequence[int]]]:
    """The leaves' positions grouped by dtype and device, in first-seen order."""
    keys: list[tuple[Any, Any]] = []
    groups: list[tuple[Any, list[int]]] = []
    last = -1
    # a NumPy array is on the CPU: ask the others' devices only
    devices = not all(map(cpu_only, set(map(type, leaves))))
    for index, leaf in enumerate(leaves):
        dtype, where = leaf.dtype, device(leaf) if devices else "cpu"
        if last < 0 or not (keys[last][0] == dtype and keys[last][1] == where):
            last = next(
                (k for k, (d, w) in enumerate(keys) if d == dtype and w == where), len(keys)
            )
            if last == len(keys):
                keys.append((dtype, where))
                groups.append((leaf, []))
        groups[last][1].append(index)
    if len(groups) == 1:
        return [(groups[0][0], range(len(leaves)))]
    return list(groups)


def _batch(
    xp: Namespace,
    program: Program,
    first: Any,
    indices: Sequence[int],
    *,
    columns: Sequence[Sequence[Any]],
    out: Sequence[Sequence[Any] | None],
) -> tuple[Batch, list[int]]:
    """The batch of the leaves at ``indices`` (``first`` the first), and which
    of the program's outputs it produces."""
    storage = dtype_name(first)
    where = device(first)

    def segment(recipe: Recipe, rounding: Rounding, hypers: Mapping[str, Hyper]) -> Segment:
        return Segment(recipe, rounding, constants(xp, hypers, rounding, first, where))

    segments = [segment(program.recipe, program.rounding, program.hypers)]
    split = program.split
    lanes = 0 if split is None else split.lanes.get(storage, 0)
    grain, threads = 0, 1
    if split is not None and lanes:
        segments.append(segment(split.tail, split.tail_rounding, program.hypers))
        grain, threads = split.grain, split.threads
    produced = [j for j, name in enumerate(program.outputs) if name is not None]
    outputs = tuple(name for name in program.outputs if name is not None)
    given = [out[j] for j in produced]
    scalar = None
    if program.scalar is not None and lanes:
        scalar = [program.scalar[i] for i in indices]
    if not isinstance(indices, range):
        columns = [[column[i] for i in indices] for column in columns]
        given = [None if column is None else [column[i] for i in indices] for column in given]
    batch = Batch(
        tuple(segments),
        lanes,
        program.inputs,
        columns,
        outputs,
        given,
        program.stored,
        grain,
        threads,
        scalar,
    )
    return batch, produced
