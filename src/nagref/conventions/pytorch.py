r"""PyTorch's ``torch.optim.SGD`` on CPU, bit for bit (torch 2.13).

The recurrence (``torch/optim/sgd.py``; the buffer b holds a sum of
gradients, and lr sits outside it):

.. math::
    g_t &\leftarrow -g_t \text{ if maximize};\quad g_t \leftarrow g_t + \lambda\theta_{t-1}\\
    b_1 &= g_1 \text{ (a copy: no dampening on the first step)},\qquad
    b_t = \mu b_{t-1} + (1-\tau) g_t\\
    d_t &= g_t + \mu b_t \text{ (nesterov) or } b_t;\qquad
    \theta_t = \theta_{t-1} - \gamma\, d_t

Rounding, as measured against torch 2.13.0 (CPU wheel, AVX-512):

* ``add_(x, alpha=a)`` is one fused multiply-add, with ``a`` rounded to the
  tensor's dtype first; ``mul_(s)`` rounds once. The single-tensor and
  foreach paths are identical in float32 and float64.
* float16 computes each operation in float32 and rounds the result to
  float16. The vectorised body of ``add_`` fuses; its scalar tail (the last
  n mod 32 elements) rounds the product and the sum separately. A Python
  scalar becomes Half through float, so ``alpha`` is rounded twice
  (fl16(fl32(a))). ``mul_`` keeps its scalar in float32, while
  ``_foreach_mul_`` (the foreach path) rounds it to float16 first.
* ``fused=True`` (``_fused_sgd_``): the buffer is fl(b·μ) + (1−τ)·g fused in
  the SIMD body, but μ·b + fl((1−τ)·g) fused in the compiler's scalar
  epilogue, which covers the last n mod 8 (float32) or n mod 4 (float64)
  elements of each tensor. float16 is refused: torch 2.13's fused CPU
  kernel does not write float16 parameters in its vector loop
  (pytorch/pytorch#191763).

What torch refuses, nagref refuses: ``add_``'s ``alpha`` (−lr, the weight
decay, 1 − dampening, and the momentum of Nesterov's ``grad.add(buf,
alpha=momentum)``) is converted to the tensor's dtype by
``c10::checked_convert``, which raises ("value cannot be converted to type
c10::Half without overflow") for a finite value beyond the dtype's largest
number: an lr above 65504 with float16 parameters, above 3.4e38 with
float32. ``mul_``'s scalar and the fused kernel are not checked: there
torch computes inf, and so does nagref.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

from .._dtypes import largest
from .._engine.ir import VIA_OPMATH, Hyper, Program, Recipe, Rounding, Split, instr
from .._typing import ArrayTree
from ._common import donated, number, run
from ._registry import Capabilities, Convention, Hypers, Variant

__all__ = ["CONVENTION", "HALF_LANES", "HALF_TAIL", "sgd"]

T = TypeVar("T", bound=ArrayTree)

_EACH = Rounding(contract=True, compute={"float16": "float32"})
#: float16 ``add_``: the scalar tail (c10::Half arithmetic) rounds product and
#: sum separately, after the SIMD body's multiples of 32 elements (AVX-512).
HALF_TAIL = Rounding(contract=False, compute={"float16": "float32"})
HALF_LANES = {"float16": 32}
_FUSED_LANES = {"float32": 8, "float64": 4}


def sgd(
    param: T,
    grad: T,
    momentum_buffer: T | None,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
    foreach: bool | None = None,
    fused: bool = False,
    out: tuple[T | None, T | None] | None = None,
) -> tuple[T, T | None]:
    """One step of ``torch.optim.SGD`` (CPU), without mutating its inputs.

    Args:
        param: the parameters θ (an array or a pytree of arrays).
        grad: their gradients.
        momentum_buffer: the buffers b, or None before the first step.
        lr, momentum, dampening, weight_decay, nesterov, maximize: as in
            ``torch.optim.SGD``, validated with its messages.
        foreach: model the foreach path (``True``) or the single-tensor
            one (``False``, or ``None``: torch's default on CPU). They differ
            in float16 only.
        fused: model the fused kernel (``fused=True``).
        out: ``(param_out, momentum_buffer_out)``: arrays to write the results into
            (they may be the inputs themselves, an in-place step; either may
            be None for a new array), or None for new arrays.

    Returns:
        ``(param, momentum_buffer)``; the buffer is None when momentum == 0.
    """
    lr, momentum = number("lr", lr), number("momentum", momentum)
    dampening, weight_decay = number("dampening", dampening), number("weight_decay", weight_decay)
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if momentum < 0.0:
        raise ValueError(f"Invalid momentum value: {momentum}")
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")

    first = momentum_buffer is None
    recipe = _recipe(momentum, weight_decay, nesterov, maximize, first)
    hypers = {
        "neg_lr": Hyper(-lr, VIA_OPMATH),
        # mul_ takes its scalar in opmath; _foreach_mul_ rounds it to the dtype first
        "mu": Hyper(momentum, VIA_OPMATH if foreach else ("compute",)),
        "mu_alpha": Hyper(momentum, VIA_OPMATH),  # add_'s alpha is rounded to the dtype
        "keep": Hyper(1.0 - dampening, VIA_OPMATH),
        "wd": Hyper(weight_decay, VIA_OPMATH),
    }
    trees: dict[str, Any] = {"param": param, "grad": grad}
    if not first:
        trees["momentum_buffer"] = momentum_buffer

    inputs = ("p", "g") if first else ("p", "g", "b")
    outputs = ("p", "b" if momentum != 0 else None)

    given = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay}

    def program(dtype: str) -> Program:
        if not fused:
            _check_alphas(recipe, hypers, dtype, given)
            split = Split(recipe, HALF_TAIL, HALF_LANES)
        elif dtype == "float16":
            raise NotImplementedError(
                "fused=True with float16 is not modelled: torch 2.13's fused CPU "
                "kernel skips float16 parameter updates in its vector loop "
                "(pytorch/pytorch#191763)"
            )
        else:
            tail = _recipe(momentum, weight_decay, nesterov, maximize, first, scalar_tail=True)
            split = Split(tail, _EACH, _FUSED_LANES)
        return Program(recipe, _EACH, inputs, outputs, hypers, split)

    new_param, new_buffer = run(trees, program, donated(out, "momentum_buffer", momentum != 0))
    return new_param, new_buffer


#: The registers that reach torch as ``add_``'s alpha, and the argument each comes from.
_ALPHAS = {"neg_lr": "lr", "wd": "weight_decay", "keep": "dampening", "mu_alpha": "momentum"}


def _check_alphas(
    recipe: Recipe, hypers: dict[str, Hyper], dtype: str, given: dict[str, float]
) -> None:
    """Raise where torch's ``checked_convert`` of an ``add_`` alpha to ``dtype`` would."""
    limit = largest(dtype)
    used = {arg for step in recipe for arg in step.args}
    for register, name in _ALPHAS.items():
        alpha = hypers[register].value
        assert isinstance(alpha, float)
        if register in used and math.isfinite(alpha) and abs(alpha) > limit:
            raise ValueError(
                f"{name}={given[name]!r} is out of range for {dtype} parameters: torch.optim.SGD "
                f"converts alpha={alpha!r} to {dtype} and raises 'value cannot be converted "
                f"without overflow' (|alpha| must be at most {limit!r})"
            )


def _recipe(
    momentum: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first: bool,
    *,
    scalar_tail: bool = False,
) -> Recipe:
    steps = []
    if maximize:
        steps.append(instr("g", "neg", "g", note="grad = -grad (maximize)"))
    if weight_decay != 0:
        steps.append(instr("g", "muladd", "p", "wd", "g", note="grad = grad.add(param, alpha=wd)"))
    direction = "g"
    if momentum != 0:
        if first:
            steps.append(instr("b", "copy", "g", note="buf = torch.clone(grad): no dampening"))
        elif scalar_tail:  # fused kernel, scalar epilogue: mu*b + fl((1-tau)*g)
            steps += [
                instr("kg", "mul", "g", "keep", note="(1 - dampening) * grad"),
                instr("b", "muladd", "b", "mu_alpha", "kg", note="momentum * buf + that"),
            ]
        else:
            steps += [
                instr("b", "mul", "b", "mu", note="buf.mul_(momentum)"),
                instr("b", "muladd", "g", "keep", "b", note="buf.add_(grad, alpha=1 - dampening)"),
            ]
        if nesterov:
            steps.append(
                instr(
                    "g", "muladd", "b", "mu_alpha", "g", note="grad = grad.add(buf, alpha=momentum)"
                )
            )
        else:
            direction = "b"
    steps.append(instr("p", "muladd", direction, "neg_lr", "p", note="param.add_(grad, alpha=-lr)"))
    return tuple(steps)


def _keywords(h: Hypers) -> dict[str, object]:
    keywords: dict[str, object] = {
        "lr": h.lr,
        "momentum": h.momentum or 0.0,
        "nesterov": h.nesterov,
    }
    if h.dampening:
        keywords["dampening"] = h.dampening
    if h.weight_decay:
        keywords["weight_decay"] = h.weight_decay
    if h.maximize:
        keywords["maximize"] = True
    return keywords


CONVENTION = Convention(
    name="pytorch",
    function=sgd,
    roles=("param", "grad", "state"),
    state="momentum_buffer",
    first_state="none",
    stores="b",
    keywords=_keywords,
    variants=(
        Variant("single-tensor", {"foreach": False, "fused": False}),
        Variant("foreach", {"foreach": True, "fused": False}),
        Variant("fused", {"foreach": False, "fused": True}, dtypes=("float32", "float64")),
    ),
    capabilities=Capabilities(dampening=True, weight_decay=True, maximize=True),
    requirement="torch==2.13.0",
)
