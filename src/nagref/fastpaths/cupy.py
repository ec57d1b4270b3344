"""The CuPy kernel: a recipe compiled into one CUDA elementwise kernel.

:func:`run` accepts C-contiguous ``cupy.ndarray`` of float32 or float64 on
one device, under rounding models that compute in the storage dtype (with
or without flushing); otherwise it declines (a leaf, or the whole batch)
and the generic path runs. The
kernel source comes from :func:`nagref.fastpaths._cuda_source.kernel_body`
and is compiled once per recipe and dtype. Outputs are new arrays, or the
caller's, which may be the inputs themselves: each element is read before
it is written.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import cupy

from .._engine.ir import Batch, bounds
from ._cuda_source import PREAMBLE, kernel_body

__all__ = ["run"]

if cupy.cuda.runtime.getDeviceCount() < 1:  # pragma: no cover - needs a GPU
    raise ImportError("cupy imports but sees no GPU")


def run(batch: Batch) -> list[tuple[Any, ...] | None]:
    """Evaluate each leaf of the batch with one CUDA kernel launch; None where it declines."""
    storage = batch.columns[0][0].dtype.name
    segments = batch.segments
    constants = [{name: f"c{k}_{name}" for name in s.constants} for k, s in enumerate(segments)]
    body = kernel_body(segments, storage, batch.inputs, constants, batch.outputs)
    if body is None:
        return [None] * len(batch.columns[0])
    # parameters are declared by NumPy's dtype name: CuPy 14 reads a C type
    # name such as "float" as Python's float, float64
    params = [f"{storage} in_{name}" for name in batch.inputs]
    values: list[list[Any]] = []  # per segment, its constants
    for k, segment in enumerate(batch.segments):
        params += [f"{storage} {constants[k][name]}" for name in segment.constants]
        params += [f"int64 start{k}", f"int64 stop{k}"]
        values.append([cupy.asarray(v).astype(storage) for v in segment.constants.values()])
    out_params = ", ".join(f"{storage} out{j}" for j in range(len(batch.outputs)))
    kernel = _kernel(", ".join(params), out_params, body)
    results: list[tuple[Any, ...] | None] = []
    for index, arrays in enumerate(zip(*batch.columns, strict=True)):
        given = [None if column is None else column[index] for column in batch.out]
        first = arrays[0]
        if not all(_plain(a, first) for a in arrays) or not all(
            o is None or _plain(o, first) for o in given
        ):
            results.append(None)
            continue
        ranges = bounds(batch.lanes, first.size)
        ranges += [(0, 0)] * (len(segments) - len(ranges))  # an empty tail
        scalars: list[Any] = []
        for constant_values, (start, stop) in zip(values, ranges, strict=True):
            scalars += [*constant_values, start, stop]
        targets = [cupy.empty_like(first) if o is None else o for o in given]
        kernel(*arrays, *scalars, *targets)
        results.append(tuple(targets))
    return results


def _plain(array: Any, first: Any) -> bool:
    return (
        isinstance(array, cupy.ndarray)
        and array.dtype == first.dtype
        and array.shape == first.shape
        and array.flags.c_contiguous
        and array.device == first.device
    )


@cache
def _kernel(in_params: str, out_params: str, body: str) -> Any:
    return cupy.ElementwiseKernel(
        in_params, out_params, body, "nagref_recipe", preamble=PREAMBLE, no_return=True
    )
