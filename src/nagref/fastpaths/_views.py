"""Other libraries' CPU arrays through the NumPy kernel, as zero-copy NumPy views.

A torch or JAX kernel (:mod:`nagref.fastpaths.torch`, :mod:`nagref.fastpaths.jax`)
is an adapter: it says how to view one of its arrays as a NumPy array
sharing its memory (or None where it cannot: another device, a strided
layout, a tracer, ...) and how to turn the kernel's new NumPy outputs
into its own arrays. :func:`run` does the rest, once for both: it views every
array of every leaf, hands the leaves whose arrays all have views to the
NumPy kernel (:func:`nagref.fastpaths.numpy.run`) as one batch, and returns
per leaf the caller's own ``out=`` arrays (written in place through their
views) and the new outputs in the adapter's library, or None for a leaf that
was not viewed or that the kernel declined: the generic path runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._engine.ir import Batch, Segment
from . import numpy as numpy_kernel

__all__ = ["run"]

View = Callable[[Any], "np.ndarray | None"]
Wrap = Callable[[list[np.ndarray]], Sequence[Any]]


def run(
    batch: Batch,
    view: View,
    wrap: Wrap,
    segments: Sequence[Segment] | None = None,
) -> list[tuple[Any, ...] | None]:
    """Run ``batch`` on views of its arrays; None for each leaf not run.

    Args:
        batch: the executor's batch, of one library's arrays on one device.
        view: an array as a NumPy view of its memory, or None.
        wrap: new NumPy outputs as the library's arrays (without copies
            where it can), in order.
        segments: the segments to run instead of the batch's (another
            rounding model: the library's own arithmetic), or None.
    """
    size = len(batch.columns[0])
    columns = [[view(x) for x in column] for column in batch.columns]
    given = [None if column is None else [view(x) for x in column] for column in batch.out]
    every = [*columns, *(c for c in given if c is not None)]
    taken = [k for k in range(size) if all(column[k] is not None for column in every)]
    results: list[tuple[Any, ...] | None] = [None] * size
    if not taken:
        return results
    if len(taken) < size:
        columns = [[column[k] for k in taken] for column in columns]
        given = [None if column is None else [column[k] for k in taken] for column in given]
    viewed = batch._replace(
        segments=batch.segments if segments is None else tuple(segments),
        columns=columns,
        out=given,
        scalar=None if batch.scalar is None else [batch.scalar[k] for k in taken],
    )
    done = numpy_kernel.run(viewed)
    # the new outputs, in the library's arrays, all at once
    new = [
        x
        for leaf in done
        if leaf is not None
        for x, out in zip(leaf, batch.out, strict=True)
        if out is None
    ]
    wrapped = iter(wrap(new) if new else ())
    for k, leaf in zip(taken, done, strict=True):
        if leaf is not None:
            results[k] = tuple(next(wrapped) if out is None else out[k] for out in batch.out)
    return results
