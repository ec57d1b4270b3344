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
* float16 and bfloat16 (the reduced formats) compute each operation in
  float32 and round the result to the storage dtype. The vectorised body of
  ``add_`` fuses (one float32 FMA, then the rounding to the 16-bit format);
  its scalar tail (the last n mod 32 elements) rounds the product and the
  sum separately. A Python scalar becomes Half or BFloat16 through float, so
  ``alpha`` is rounded twice (fl16(fl32(a))). ``mul_`` keeps its scalar in
  float32, while ``_foreach_mul_`` (the foreach path) rounds it to the
  16-bit format first. bfloat16 was measured to follow float16's rules in
  every one of these points (0 differing elements of 559,164, single-tensor
  and foreach, with and without momentum, first and later steps).
* ``fused=True`` (``_fused_sgd_``): the buffer is fl(b·μ) + (1−τ)·g fused in
  the SIMD body, but μ·b + fl((1−τ)·g) fused in the compiler's scalar
  epilogue, which covers the last n mod 8 (float32) or n mod 4 (float64)
  elements of each tensor. float16 and bfloat16 are refused: torch 2.13's
  fused CPU kernel does not write 16-bit parameters in its vector loop
  (pytorch/pytorch#191763; under ``ATEN_CPU_CAPABILITY=default`` too:
  1,584 of 1,674 float16 parameters were left unchanged).

Threads (``threads``), measured against torch 2.13.0 with 1 to 4 threads
(``torch.set_num_threads``; OpenMP runs 3 and 4 on a 2-core machine too):
``add_`` and ``_foreach_add_`` run ``at::parallel_for`` with a grain of
32,768 elements (:data:`GRAIN`). A tensor of n > 32,768 elements is cut into
c = min(threads, ⌈n / 32768⌉) chunks of ⌈n / c⌉ elements (the last shorter),
and each chunk has its own SIMD body and scalar tail of (chunk size) mod 32
elements (:func:`nagref._engine.ir.chunks`). So in float16 and bfloat16 the
bits depend on the thread count: n = 65537, every p = 0x30c6 and g = 0x3e83
(float16), ``SGD([p], lr=0.1)``: one thread gives 0xa2f4 at element 32768
and 0xa2f0 at 65536, two threads the reverse. The chunk model matched 352
of 352 cases (n from 33 to 200,003, 1 to 4 threads, ``add_``,
``_foreach_add_`` and both SGD paths) under each CPU capability. float32
and float64 are unaffected (their scalar tail fuses as the body does, and
``mul_`` rounds once everywhere), and so is ``fused=True``: its
``parallel_for`` cuts whole 64-byte units, multiples of its lanes, so only a
tensor's last n mod 8 (or 4) elements are its tail (0 differing of 11.9
million elements with 2 threads, n up to 100,003).

CPU capability (``cpu_capability``; ``ATEN_CPU_CAPABILITY``, the kernels
ATen dispatches to), measured against torch 2.13.0 on an AVX-512 machine,
setting the variable: ``"avx2"`` computes every one of the points above as
``"avx512"`` does (the 16-bit ``add_`` tail is n mod 32 there too, not
n mod 16). ``"default"`` (ATen's scalar kernels, what x86 CPUs without AVX2
and FMA run) fuses nothing: float32 and float64 ``add_`` round the product
and the sum separately (3,757 of 30,000 float32 elements differ from the
fused result), float16 and bfloat16 round as the scalar tail does on every
element, and ``fused=True`` rounds twice in its body and epilogue alike;
``mul_``, ``_foreach_mul_`` and the scalars' conversions are unchanged. Each
model gave 0 differing elements of 66,000 per dtype, operation and
capability (n = 100 and 120, 300 draws each), and of 29,448 per dtype for
``fused=True`` (3 steps of 24 configurations).

What torch refuses, nagref refuses: ``add_``'s ``alpha`` (−lr, the weight
decay, 1 − dampening, and the momentum of Nesterov's ``grad.add(buf,
alpha=momentum)``) is converted to the tensor's dtype by
``c10::checked_convert``, which raises ("value cannot be converted to type
c10::Half without overflow") for a finite value beyond the dtype's largest
number: an lr above 65504 with float16 parameters, above 3.39e38 with
bfloat16, above 3.4e38 with float32. ``mul_``'s scalar and the fused kernel
are not checked: there torch computes inf, and so does nagref.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

from .._dtypes import largest
from .._engine.ir import VIA_OPMATH, Hyper, Program, Recipe, Rounding, Split, instr
from .._typing import ArrayTree
from ._aten import (
    CPU_CAPABILITIES,
    GRAIN,
    check_capability,
    check_threads,
    cpu_capability_here,
    default_cpu_capability,
    default_threads,
    runs_here,
)
from ._common import IN_OPMATH, REAL_FLOATS, donated, number, run
from ._registry import Capabilities, Convention, Hypers, Variant

__all__ = [
    "CONVENTION",
    "CPU_CAPABILITIES",
    "GRAIN",
    "REDUCED_LANES",
    "REDUCED_TAIL",
    "cpu_capability_here",
    "default_cpu_capability",
    "default_threads",
    "elementwise",
    "runs_here",
    "sgd",
]

T = TypeVar("T", bound=ArrayTree)

_EACH = Rounding(contract=True, compute=IN_OPMATH)
#: float16 and bfloat16 ``add_``: the scalar tail (c10::Half and
#: c10::BFloat16 arithmetic) rounds product and sum separately, after the
#: SIMD body's multiples of 32 elements (AVX-512 and AVX2).
REDUCED_TAIL = Rounding(contract=False, compute=IN_OPMATH)
REDUCED_LANES = dict.fromkeys(IN_OPMATH, 32)
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
    threads: int | None = None,
    cpu_capability: str | None = None,
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
            in float16 and bfloat16 only.
        fused: model the fused kernel (``fused=True``).
        threads: torch's intra-op threads (``torch.get_num_threads()``), a
            whole number >= 1; they cut a float16 or bfloat16 tensor of more
            than :data:`GRAIN` elements into chunks, each with its own scalar
            tail (see the module's docstring). None: torch's default here,
            :func:`default_threads` (nagref imports nothing of torch's).
        cpu_capability: the kernels torch runs, as ``ATEN_CPU_CAPABILITY``
            names them: ``"avx512"``, ``"avx2"`` (the same bits) or
            ``"default"`` (no SIMD: nothing fuses). None: what torch picks
            here, :func:`default_cpu_capability`.
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
    n_threads = check_threads(threads)
    capability = check_capability(cpu_capability)

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
            rounding, split = elementwise(recipe, capability, n_threads)
            return Program(recipe, rounding, inputs, outputs, hypers, split)
        if dtype in IN_OPMATH:
            raise NotImplementedError(
                f"fused=True with {dtype} is not modelled: torch 2.13's fused CPU "
                f"kernel skips {dtype} parameter updates in its vector loop "
                "(pytorch/pytorch#191763)"
            )
        if capability == "default":  # body and epilogue round twice alike, as the tail does
            return Program(recipe, REDUCED_TAIL, inputs, outputs, hypers)
        # whole 64-byte units per thread: the tail is the tensor's, whatever the threads
        tail = _recipe(momentum, weight_decay, nesterov, maximize, first, scalar_tail=True)
        return Program(recipe, _EACH, inputs, outputs, hypers, Split(tail, _EACH, _FUSED_LANES))

    new_param, new_buffer = run(trees, program, donated(out, "momentum_buffer", momentum != 0))
    return new_param, new_buffer


def elementwise(recipe: Recipe, capability: str, threads: int) -> tuple[Rounding, Split | None]:
    """The rounding and split of ``recipe`` run as torch's elementwise CPU ops.

    ``add_``, ``mul_`` and their ``_foreach_`` forms (``TensorIterator``
    kernels) under ``capability``, on ``threads`` threads: one fused
    multiply-add in the SIMD body, with float16 and bfloat16's scalar tail
    per chunk (see the module's docstring); nothing fused and no split with
    ``"default"``.
    """
    if capability == "default":  # the scalar tail's rounding (nothing fuses) everywhere
        return REDUCED_TAIL, None
    return _EACH, Split(recipe, REDUCED_TAIL, REDUCED_LANES, GRAIN, threads)


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


_PATHS: dict[str, dict[str, object]] = {
    "single-tensor": {"foreach": False, "fused": False},
    "foreach": {"foreach": True, "fused": False},
    "fused": {"foreach": False, "fused": True},
}

#: The variants pin ``threads`` and ``cpu_capability``, so that a vector does
#: not depend on the machine that wrote it: one thread, and each code path
#: under each capability (``single-tensor`` is AVX-512's, ``single-tensor-avx2``
#: and ``single-tensor-default`` the others'). The live suite runs each
#: capability where this CPU can: the driver hands a case of other kernels
#: than its own torch's to a helper worker started with ``ATEN_CPU_CAPABILITY``
#: set (see :mod:`nagref.live.drivers.pytorch`).
CONVENTION = Convention(
    name="pytorch",
    function=sgd,
    roles=("param", "grad", "state"),
    state="momentum_buffer",
    first_state="none",
    stores="b",
    keywords=_keywords,
    variants=tuple(
        Variant(
            path if capability == "avx512" else f"{path}-{capability}",
            {**options, "threads": 1, "cpu_capability": capability},
            ("float32", "float64") if options["fused"] else REAL_FLOATS,
            runs_here(capability),
        )
        for capability in CPU_CAPABILITIES
        for path, options in _PATHS.items()
    ),
    capabilities=Capabilities(dampening=True, weight_decay=True, maximize=True),
    requirement="torch==2.13.0",
)
