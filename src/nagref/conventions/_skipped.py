"""Parameters without a gradient or without a buffer yet, in a PyTorch step.

torch skips a parameter whose ``grad`` is None, and starts the buffer of
one that has none. :func:`partial_step` runs a step whose pytrees hold such
None leaves as several steps over the leaves that have what they need, as
torch's ``_multi_tensor_sgd`` groups them (see
:func:`nagref.conventions.pytorch.sgd`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._checks import dtype_name
from .._tree import flatten, flatten_like, unflatten
from ._common import check_trees, donated, written
from ._common import stand_in as checked

__all__ = ["has_none", "partial_step"]


def has_none(tree: object) -> bool:
    """Whether ``tree`` (not None itself) has a None leaf."""
    return tree is not None and any(leaf is None for _, leaf in flatten(tree)[0])


def partial_step(
    param: Any,
    grad: Any,
    buffer: Any,
    out: tuple[Any, Any] | None,
    step: Callable[[Any, Any, Any, bool | None, bool], tuple[Any, Any]],
    *,
    has_buffer: bool,
    foreach: bool | None,
    fused: bool,
) -> tuple[Any, Any]:
    """A step in which some gradients or buffers are None (see :func:`sgd`).

    torch skips a parameter whose grad is None (it and its buffer stay as
    they are) and starts the buffer of one that has none (its first step).
    The foreach path then updates the other buffers of that dtype with the
    single-tensor ``buf.mul_(momentum)`` (``_multi_tensor_sgd``: not every
    state has a buffer), so they round as ``foreach=False`` does, while its
    Nesterov step and update stay foreach ops (in place on the grads: their
    layouts count). ``step(params, grads, bufs, foreach, buffers_by_tensor)``
    runs each group.
    """
    leaves, structure = flatten(param)
    params = [leaf for _, leaf in leaves]
    grads = flatten_like(structure, grad, "grad")
    bufs = (
        [None] * len(params)
        if buffer is None
        else flatten_like(structure, buffer, "momentum_buffer")
    )
    if not has_buffer and buffer is not None:
        raise ValueError("momentum_buffer must be None when momentum == 0: there is no buffer")
    # every tree checked as a whole (a None leaf stands for its parameter), before anything runs
    stand_in = {
        "param": param,
        "grad": unflatten(
            structure, [p if g is None else g for p, g in zip(params, grads, strict=True)]
        ),
    }
    if any(b is not None for b in bufs):
        stand_in["momentum_buffer"] = unflatten(
            structure, [p if b is None else b for p, b in zip(params, bufs, strict=True)]
        )
    check_trees(stand_in, checked, donated(out, "momentum_buffer", has_buffer))
    live = [i for i, g in enumerate(grads) if g is not None]
    fresh = [i for i in live if bufs[i] is None] if has_buffer else []
    if fused and fresh and len(fresh) < len(live):
        raise NotImplementedError(
            "fused=True with some momentum buffers None and others not is not modelled "
            "(torch's fused step starts every buffer or none)"
        )
    starting = {dtype_name(params[i]) for i in fresh}  # dtype groups that start a buffer
    groups: list[tuple[list[int], bool | None, bool]] = [
        (fresh, foreach, False),
        ([i for i in live if i not in fresh and dtype_name(params[i]) in starting], foreach, True),
        ([i for i in live if i not in fresh and dtype_name(params[i]) not in starting], foreach,
         False),
    ]  # fmt: skip
    new_params: list[Any] = list(params)
    new_bufs: list[Any] = list(bufs)
    for indices, path, by_tensor in groups:  # computed whole before anything is written to out
        if not indices:
            continue
        known = None if bufs[indices[0]] is None or not has_buffer else [bufs[i] for i in indices]
        chosen = [params[i] for i in indices], [grads[i] for i in indices], known
        p_new, b_new = step(*chosen, path, by_tensor and bool(foreach))
        for k, i in enumerate(indices):
            new_params[i] = p_new[k]
            new_bufs[i] = None if b_new is None else b_new[k]
    return written(
        out,
        (unflatten(structure, new_params), unflatten(structure, new_bufs) if has_buffer else None),
    )
