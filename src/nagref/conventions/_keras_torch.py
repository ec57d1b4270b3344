"""Keras 3's SGD on its torch backend: the foreach recipe of ``keras.sgd(backend="torch")``.

See :mod:`nagref.conventions.keras`: v = fma(g, −η, fl(v·μ)); Nesterov
θ = fma(v, μ, fma(g, −η, θ)); weight decay θ·fl32(1 − fl32(λ·η)).
"""

from __future__ import annotations

from typing import Any

from .._engine.ir import instr
from ._common import float32

__all__ = ["decay_factor", "recipe"]


def decay_factor(lr: float, wd: float | None) -> float:
    # 1 - wd * lr in float32 tensor arithmetic (lr is a float32 variable)
    if wd is None:
        return 1.0
    return float32(1.0 - float32(float32(wd) * float32(lr)))


def recipe(momentum: float, nesterov: bool, wd: float | None) -> tuple[Any, ...]:
    """The torch backend's step: ``_foreach_`` calls, in Keras's order."""
    plain = instr("p", "muladd", "g", "neg_lr", "p", note="_foreach_add_(vars, grads, alpha=-lr)")
    decay = instr("p", "mul", "p", "decay", note="_foreach_mul_(variables, 1 - wd * lr)")
    head = (decay,) if wd is not None else ()
    if momentum == 0:
        return (*head, plain)
    velocity = (
        instr("v", "mul", "v", "mu", note="_foreach_mul_(bufs, momentum)"),
        instr("v", "muladd", "g", "neg_lr", "v", note="_foreach_add_(bufs, grads, alpha=-lr)"),
    )
    look_ahead = instr(
        "p", "muladd", "v", "mu", "p", note="_foreach_add_(vars, bufs, alpha=momentum)"
    )
    step = (
        (plain, look_ahead)
        if nesterov
        else (instr("p", "add", "p", "v", note="_foreach_add_(variables, bufs)"),)
    )
    return (*head, *velocity, *step)
