"""The CuPy kernel: a recipe compiled into one CUDA elementwise kernel.

:func:`run` accepts C-contiguous ``cupy.ndarray`` of float32 or float64 on
one device, under rounding models that compute in the storage dtype (with or
without flushing); otherwise it declines and the generic path runs. The
kernel source comes from :func:`nagref.fastpaths._cuda_source.kernel_body`
and is compiled once per recipe and dtype. Outputs are new arrays, or the
caller's, which may be the inputs themselves: each element is read before
it is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import cupy

from .._recipe import Job, Segment
from ._cuda_source import PREAMBLE, TYPES, kernel_body

__all__ = ["run"]

if cupy.cuda.runtime.getDeviceCount() < 1:  # pragma: no cover - needs a GPU
    raise ImportError("cupy imports but sees no GPU")


def run(jobs: Sequence[Job]) -> list[tuple[Any, ...] | None]:
    """Evaluate each job with one CUDA kernel launch; None for each job it declines."""
    return [_run(job.segments, job.registers, job.outputs, job.out) for job in jobs]


def _run(
    segments: Sequence[Segment],
    registers: Mapping[str, Any],
    outputs: Sequence[str],
    out: Sequence[Any | None] | None,
) -> tuple[Any, ...] | None:
    arrays = list(registers.values())
    first = arrays[0]
    storage = first.dtype.name
    if storage not in TYPES or not all(_plain(a, first) for a in arrays):
        return None
    if out is not None and not all(o is None or _plain(o, first) for o in out):
        return None
    inputs = list(registers)
    constants = [{name: f"c{k}_{name}" for name in s.constants} for k, s in enumerate(segments)]
    body = kernel_body(segments, storage, inputs, constants, outputs)
    if body is None:
        return None
    ctype = TYPES[storage][0]
    params = [f"{ctype} in_{name}" for name in inputs]
    scalars = []
    for k, segment in enumerate(segments):
        for name, value in segment.constants.items():
            params.append(f"{ctype} {constants[k][name]}")
            scalars.append(cupy.asarray(value).astype(storage))
        params += [f"int64 start{k}", f"int64 stop{k}"]
        scalars += [segment.start, segment.stop]
    out_params = ", ".join(f"{ctype} out{j}" for j in range(len(outputs)))
    kernel = _kernel(", ".join(params), out_params, body)
    given = list(out) if out is not None else [None] * len(outputs)
    targets = [cupy.empty_like(first) if o is None else o for o in given]
    kernel(*arrays, *scalars, *targets)
    return tuple(targets)


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
