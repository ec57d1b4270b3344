"""``torch.optim.SGD``'s checks of its arguments, with its messages.

What torch refuses, nagref refuses (:func:`nagref.conventions.pytorch.sgd`):
the constructor's checks (:func:`check_arguments`), and ``add_``'s
``alpha`` (−lr, the weight decay, 1 − dampening, and the momentum of
Nesterov's ``grad.add(buf, alpha=momentum)``), which ``c10::checked_convert``
converts to the tensor's dtype and refuses ("value cannot be converted to
type c10::Half without overflow") for a finite value beyond the dtype's
largest number: an lr above 65504 with float16 parameters, above 3.39e38
with bfloat16, above 3.4e38 with float32 (:func:`check_alphas`).
``mul_``'s scalar and the fused kernel are not checked: there torch computes
inf, and so does nagref.
"""

from __future__ import annotations

import math

from .._checks import describe
from .._dtypes import largest
from .._engine.ir import Hyper, Recipe
from ._common import number

__all__ = ["ALPHAS", "check_alphas", "check_arguments"]


def check_arguments(
    lr: object,
    momentum: object,
    dampening: object,
    weight_decay: object,
    *,
    nesterov: bool,
    foreach: bool | None,
    fused: bool,
    compiled: object,
) -> tuple[float, float, float, float]:
    """``(lr, momentum, dampening, weight_decay)`` as floats, checked as torch checks them.

    ``compiled`` (nagref's ``torch.compile`` model) must be a bool.
    """
    lr_, momentum_ = number("lr", lr), number("momentum", momentum)
    dampening_, weight_decay_ = number("dampening", dampening), number("weight_decay", weight_decay)
    if lr_ < 0.0:
        raise ValueError(f"Invalid learning rate: {lr_}")
    if momentum_ < 0.0:
        raise ValueError(f"Invalid momentum value: {momentum_}")
    if weight_decay_ < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay_}")
    if nesterov and (momentum_ <= 0 or dampening_ != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    if not isinstance(compiled, bool):
        raise TypeError(f"compiled must be a bool, got {describe(compiled)}")
    return lr_, momentum_, dampening_, weight_decay_


#: The registers that reach torch as ``add_``'s alpha, and the argument each comes from.
ALPHAS = {"neg_lr": "lr", "wd": "weight_decay", "keep": "dampening", "mu_alpha": "momentum"}


def check_alphas(
    recipe: Recipe, hypers: dict[str, Hyper], dtype: str, given: dict[str, float]
) -> None:
    """Raise where torch's ``checked_convert`` of an ``add_`` alpha to ``dtype`` would."""
    limit = largest(dtype)
    used = {arg for step in recipe for arg in step.args}
    for register, name in ALPHAS.items():
        alpha = hypers[register].value
        assert isinstance(alpha, float)
        if register in used and math.isfinite(alpha) and abs(alpha) > limit:
            raise ValueError(
                f"{name}={given[name]!r} is out of range for {dtype} parameters: torch.optim.SGD "
                f"converts alpha={alpha!r} to {dtype} and raises 'value cannot be converted "
                f"without overflow' (|alpha| must be at most {limit!r})"
            )
