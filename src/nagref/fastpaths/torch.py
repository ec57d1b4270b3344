"""The torch kernel: CPU tensors through the NumPy kernel, as zero-copy NumPy views.

A tensor is viewed with ``Tensor.numpy()`` (the same memory; a bfloat16
tensor, which NumPy cannot hold, as its ``int16`` bits viewed as
``ml_dtypes.bfloat16``, which the C evaluator reads as bits anyway), and
each new output comes back with ``torch.from_numpy`` (the same memory
again). ``out=`` tensors (an ``nn.Parameter`` updated under
``torch.no_grad()``) are written in place through their views, and their
version counters are bumped as a torch in-place operation bumps them, so
that autograd still notices a tensor it saved being changed.

A leaf is declined (the generic path, in torch's own operations, runs it)
where any of its tensors is not a plain CPU ``Tensor`` or ``nn.Parameter``
(a subclass: a fake, functional or distributed tensor), is not contiguous,
has the conjugate or negative bit, has a dtype other than float16,
bfloat16, float32 and float64, or, while autograd records, requires grad
(the generic path records the step; a view would not).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._dtypes import numpy_dtype
from .._engine.ir import Batch
from . import _views

__all__ = ["run"]

_PLAIN = (torch.Tensor, torch.nn.Parameter)
#: the dtypes the C evaluator computes, and how their bits are viewed
_DTYPES = {torch.float16: None, torch.float32: None, torch.float64: None}
try:  # NumPy's bfloat16 is ml_dtypes'; without it, bfloat16 takes the generic path
    _BITS = {torch.bfloat16: (torch.int16, np.dtype(numpy_dtype("bfloat16")))}
except ImportError:
    _BITS = {}


def run(batch: Batch) -> list[tuple[Any, ...] | None]:
    """Evaluate a batch of CPU tensors with the C kernel; None for each leaf it declines."""
    bits = _BITS.get(batch.columns[0][0].dtype)
    recording = torch.is_grad_enabled()
    if bits is None:
        results = _views.run(batch, lambda x: _view(x, recording), _wrap)
    else:
        signed, dtype = bits
        results = _views.run(batch, lambda x: _view_bits(x, recording, signed, dtype), _wrap)
    written = [
        column[k]
        for column in batch.out
        if column is not None
        for k, leaf in enumerate(results)
        if leaf is not None
    ]
    if written:  # as torch's own in-place operations do
        torch.autograd.graph.increment_version(written)
    return results


def _view(x: Any, recording: bool) -> np.ndarray | None:
    if not _takes(x, recording) or x.dtype not in _DTYPES:
        return None
    array: np.ndarray = (x.detach() if x.requires_grad else x).numpy()
    return array


def _view_bits(x: Any, recording: bool, signed: Any, dtype: np.dtype[Any]) -> np.ndarray | None:
    if not _takes(x, recording) or x.dtype not in _BITS:
        return None
    array: np.ndarray = x.detach().view(signed).numpy().view(dtype)
    return array


def _takes(x: Any, recording: bool) -> bool:
    """A plain, contiguous CPU tensor without lazy bits that a view may stand for."""
    return (
        type(x) in _PLAIN
        and x.is_contiguous()
        and not (x.requires_grad and recording)
        and not (x.is_conj() or x.is_neg())
        and x.is_cpu
    )


def _wrap(arrays: list[np.ndarray]) -> list[Any]:
    """New NumPy outputs as tensors sharing their memory."""
    if arrays[0].dtype.char in "efd":  # one dtype per batch
        return [torch.from_numpy(a) for a in arrays]
    return [torch.from_numpy(a.view(np.int16)).view(torch.bfloat16) for a in arrays]
