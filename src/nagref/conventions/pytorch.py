r"""PyTorch's ``torch.optim.SGD`` on CPU, bit for bit (torch 2.13 and 2.14).

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
  elements of each tensor. float16 and bfloat16 are refused with
  ``version="2.13"``: torch 2.13's fused CPU kernel does not write 16-bit
  parameters in its vector loop (pytorch/pytorch#191763; under
  ``ATEN_CPU_CAPABILITY=default`` too: 1,584 of 1,674 float16 parameters
  were left unchanged). torch 2.14 fixed it: see below.

Threads (``threads``), the CPU capability (``cpu_capability``) and the
torch release (``version``: 2.14's fused kernel updates float16 and
bfloat16) change these bits as :mod:`nagref.conventions._aten` describes,
with what was measured of each.

What torch refuses, nagref refuses: see :mod:`nagref.conventions._argument_checks`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

from .._engine.ir import OPMATH, VIA_OPMATH, Hyper, Program, Recipe, Split, instr
from .._typing import ArrayTree
from ._argument_checks import check_alphas, check_arguments
from ._aten import (
    CPU_CAPABILITIES,
    EACH,
    GRAIN,
    REDUCED_LANES,
    REDUCED_TAIL,
    VERSIONS,
    check_capability,
    check_threads,
    check_version,
    cpu_capability_here,
    default_cpu_capability,
    default_threads,
    elementwise,
    fused16,
    installed_torch,
    release,
    runs_here,
    runs_release,
)
from ._common import IN_OPMATH, REAL_FLOATS, check_trees, donated, run, written
from ._common import stand_in as _checked
from ._inductor import check_compiled_leaves
from ._inductor import compiled as inductor
from ._inductor import variants as compiled_variants
from ._registry import Capabilities, Convention, Extra, Hypers, Variant
from ._skipped import has_none, partial_step
from ._strided import audit_settings, in_memory, layouts, masks, relaid_trees, sgd_in_place

__all__ = [
    "CONVENTION",
    "CPU_CAPABILITIES",
    "GRAIN",
    "REDUCED_LANES",
    "REDUCED_TAIL",
    "VERSIONS",
    "cpu_capability_here",
    "default_cpu_capability",
    "default_threads",
    "elementwise",
    "installed_torch",
    "release",
    "runs_here",
    "sgd",
]

T = TypeVar("T", bound=ArrayTree)

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
    version: str = "2.13",
    compiled: bool = False,
    param_layout: str | Sequence[int] | None = None,
    grad_layout: str | Sequence[int] | None = None,
    momentum_buffer_layout: str | Sequence[int] | None = None,
    out: tuple[T | None, T | None] | None = None,
    _buffers_by_tensor: bool = False,
) -> tuple[T, T | None]:
    """One step of ``torch.optim.SGD`` (CPU), without mutating its inputs.

    Args:
        param: the parameters θ (an array or a pytree of arrays).
        grad: their gradients; a None leaf is a parameter without a
            gradient, which torch skips: it and its buffer come back as they
            were (the same objects, or copied into ``out``).
        momentum_buffer: the buffers b, or None before the first step; a
            None leaf is a parameter without a buffer yet, which starts it
            this step. With ``foreach=True`` the other buffers of its dtype
            are then updated as the single-tensor path does (torch's
            ``_multi_tensor_sgd`` runs ``buf.mul_(momentum)`` when not every
            state has a buffer: the momentum kept in float32, not rounded to
            float16 or bfloat16). The rule was measured against torch
            2.13.0: 0 differing elements of 64,000 per dtype (float16,
            bfloat16), where the foreach rounding gives 6,000 to 14,000.
        lr, momentum, dampening, weight_decay, nesterov, maximize: as in
            ``torch.optim.SGD``, validated with its messages.
        foreach: model the foreach path (``True``) or the single-tensor
            one (``False``, or ``None``: torch's default on CPU). They differ
            in float16 and bfloat16 only.
        fused: model the fused kernel (``fused=True``). float16 and bfloat16
            need ``version="2.14"``: torch 2.13's fused kernel does not
            update them (NotImplementedError).
        threads: torch's intra-op threads, a whole number >= 1 (None:
            :func:`default_threads`, torch's own count here); they cut a
            float16 or bfloat16 tensor of more than :data:`GRAIN` elements
            into chunks, each with its own scalar tail.
        cpu_capability: the kernels torch runs, as ``ATEN_CPU_CAPABILITY``
            names them: ``"avx512"``, ``"avx2"`` (the same bits) or
            ``"default"`` (nothing fuses); None: :func:`default_cpu_capability`.
        version: the torch release modelled, one of :data:`VERSIONS`
            (``"2.14"``: its fused kernel updates float16 and bfloat16).
        compiled: model ``torch.compile(optimizer.step)`` (inductor's C++:
            nothing fused, 16-bit formats kept in float32, hyperparameters
            literals; :mod:`nagref.conventions._inductor`). With ``fused``,
            torch runs its fused kernel as eagerly (``torch.compiler.disable``).
        param_layout, grad_layout, momentum_buffer_layout: how torch holds
            each tensor: a name (``"contiguous"``; ``"transposed"``: the
            dimensions reversed in memory, as ``x.mT``; ``"strided"``: every
            other element of the last dimension, ``base[..., ::2]``) or the
            strides in elements, for every leaf. None: each leaf's own
            strides (a torch tensor's or NumPy array's, else contiguous);
            the buffer's as torch's first step made it. They change float16
            and bfloat16 ``add_`` and the fused kernel's pairing and epilogue
            (:mod:`nagref.conventions._layouts`). New results keep dense
            layouts (a strided param's comes back contiguous: give
            ``param_layout`` again at the next step).
        _buffers_by_tensor: internal (:func:`._skipped.partial_step`): the
            foreach path with single-tensor ``buf.mul_`` (a late first buffer).
        out: ``(param_out, momentum_buffer_out)``: arrays to write the results into
            (they may be the inputs themselves, an in-place step; either may
            be None for a new array), or None for new arrays.

    Returns:
        ``(param, momentum_buffer)``; the buffer is None when momentum == 0.
    """
    lr, momentum, dampening, weight_decay = check_arguments(
        lr, momentum, dampening, weight_decay,
        nesterov=nesterov, foreach=foreach, fused=fused, compiled=compiled,
    )  # fmt: skip
    compiled = compiled and not fused  # dynamo does not trace into the fused kernel
    n_threads = check_threads(threads)
    capability = check_capability(cpu_capability)
    release_modelled = check_version(version)
    if compiled:
        check_compiled_leaves(param, foreach, release_modelled)
    if has_none(grad) or has_none(momentum_buffer):

        def step(p: Any, g: Any, b: Any, paths_foreach: bool | None, by_tensor: bool) -> Any:
            return sgd(
                p, g, b, lr=lr, momentum=momentum, dampening=dampening,
                weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                foreach=paths_foreach, _buffers_by_tensor=by_tensor, fused=fused, threads=threads,
                cpu_capability=cpu_capability, version=version, compiled=compiled,
                param_layout=param_layout,
                grad_layout=grad_layout, momentum_buffer_layout=momentum_buffer_layout,
            )  # fmt: skip

        return partial_step(
            param, grad, momentum_buffer, out, step,
            has_buffer=momentum != 0, foreach=foreach, fused=fused,
        )  # fmt: skip

    first = momentum_buffer is None
    recipe = _recipe(momentum, weight_decay, nesterov, maximize, first)
    in_place = sgd_in_place(bool(foreach))
    starting = _recipe(momentum, weight_decay, nesterov, maximize, True)
    held = {"param": param_layout, "grad": grad_layout, "momentum_buffer": momentum_buffer_layout}
    laid = layouts(
        param, grad, momentum_buffer, held, first=starting, in_place=in_place, fused=fused
    )
    if laid is not None and fused:  # walked in memory order, as 1-D tensors
        in_order = functools.partial(
            sgd, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize, fused=True, threads=threads,
            cpu_capability=cpu_capability, version=version,
        )  # fmt: skip
        check_trees(_trees(param, grad, momentum_buffer), _checked, out)
        return written(out, in_memory(param, grad, momentum_buffer, laid, in_order))
    hypers = {
        "neg_lr": Hyper(-lr, VIA_OPMATH),
        # mul_ takes its scalar in opmath; _foreach_mul_ rounds it to the dtype first
        "mu": Hyper(momentum, VIA_OPMATH if foreach and not _buffers_by_tensor else ("compute",)),
        "mu_alpha": Hyper(momentum, VIA_OPMATH),  # add_'s alpha is rounded to the dtype
        "keep": Hyper(1.0 - dampening, VIA_OPMATH),
        "wd": Hyper(weight_decay, VIA_OPMATH),
    }
    # torch 2.14's fused 16-bit kernel: opmath_t(x), each double -> float32 once
    fused16_hypers = {name: Hyper(h.value, (OPMATH,)) for name, h in hypers.items()}
    trees = _trees(param, grad, momentum_buffer)

    def scalar(dtype: str) -> Any:  # the masks of the dtype's leaves
        if laid is None or capability == "default" or dtype not in REDUCED_LANES or compiled:
            return None
        lanes = REDUCED_LANES[dtype]
        return masks(recipe, laid, dtype, first=first, in_place=in_place, lanes=lanes,
                     grain=GRAIN, threads=n_threads)  # fmt: skip

    inputs = ("p", "g") if first else ("p", "g", "b")
    outputs = ("p", "b" if momentum != 0 else None)

    given = {"lr": lr, "momentum": momentum, "dampening": dampening, "weight_decay": weight_decay}

    def program(dtype: str) -> Program:
        if compiled:
            return inductor(recipe, inputs=inputs, outputs=outputs, hypers=hypers)
        if not fused:
            check_alphas(recipe, hypers, dtype, given)
            rounding, split = elementwise(recipe, capability, n_threads)
            return Program(recipe, rounding, inputs, outputs, hypers, split, scalar=scalar(dtype))
        # whole 64-byte units per thread: the tail is the tensor's, whatever the threads
        tail = _recipe(momentum, weight_decay, nesterov, maximize, first, scalar_tail=True)
        if dtype in IN_OPMATH:
            if release_modelled == "2.13":
                raise NotImplementedError(
                    f"fused=True with {dtype} is not modelled for torch 2.13: its fused CPU "
                    f"kernel skips {dtype} parameter updates in its vector loop "
                    "(pytorch/pytorch#191763); torch 2.14 fixed it, and version='2.14' "
                    "models that"
                )
            return fused16(
                recipe, tail, capability, inputs=inputs, outputs=outputs, hypers=fused16_hypers
            )
        if capability == "default":  # body and epilogue round twice alike, as the tail does
            return Program(recipe, REDUCED_TAIL, inputs, outputs, hypers)
        return Program(recipe, EACH, inputs, outputs, hypers, Split(tail, EACH, _FUSED_LANES))

    new_param, new_buffer = run(trees, program, donated(out, "momentum_buffer", momentum != 0))
    if laid is None:
        return new_param, new_buffer
    return relaid_trees(new_param, new_buffer, laid, out)


def _trees(param: Any, grad: Any, momentum_buffer: Any) -> dict[str, Any]:
    trees = {"param": param, "grad": grad}
    if momentum_buffer is not None:
        trees["momentum_buffer"] = momentum_buffer
    return trees


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
#: set (see :mod:`nagref.live.drivers.pytorch`). They model torch 2.13 (no
#: ``version`` option: 2.14 gives the same bits on each). ``fused-2.14``,
#: ``fused-2.14-avx2`` and ``fused-2.14-default`` are torch 2.14's fused
#: kernel in float16 and bfloat16, run live only where torch 2.14 is installed.
#: ``compiled``, ``foreach-compiled`` and ``fused-compiled`` are ``torch.compile(optimizer.step)``
#: (a compilation per case: checked live by their own suite, not the table).
CONVENTION = Convention(
    name="pytorch",
    function=sgd,
    roles=("param", "grad", "state"),
    state="momentum_buffer",
    first_state="none",
    stores="b",
    keywords=_keywords,
    variants=(
        *(
            Variant(
                path if capability == "avx512" else f"{path}-{capability}",
                {**options, "threads": 1, "cpu_capability": capability},
                ("float32", "float64") if options["fused"] else REAL_FLOATS,
                runs_here(capability),
            )
            for capability in CPU_CAPABILITIES
            for path, options in _PATHS.items()
        ),
        *(
            Variant(
                "fused-2.14" if capability == "avx512" else f"fused-2.14-{capability}",
                {**_PATHS["fused"], "threads": 1, "cpu_capability": capability, "version": "2.14"},
                ("float16", "bfloat16"),
                runs_release("2.14", capability),
            )
            for capability in CPU_CAPABILITIES
        ),
        *compiled_variants(_PATHS),
    ),
    capabilities=Capabilities(dampening=True, weight_decay=True, maximize=True),
    requirement="torch==2.13.0",
    extras=(
        Extra("transposed", {"param_layout": "transposed", "grad_layout": "transposed"}, (5, 37)),
        Extra("transposed-grad", {"grad_layout": "transposed"}, (5, 37)),
        Extra("strided-grad", {"grad_layout": "strided"}, (64,), unless={"fused": True}),
    ),
    settings=audit_settings,
)
