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

Versions (``version``, :data:`VERSIONS`): the torch release whose CPU
kernels are modelled, ``"2.13"`` (the default) or ``"2.14"``. Measured
against torch 2.14.1 (the ``+cu130`` wheel's CPU kernels, on the same
AVX-512 machine), every path above gives 2.13.0's bits: single-tensor,
foreach, and fused float32 and float64, in all four dtypes where they
apply, under ``avx512``, ``avx2`` and ``default``, with 1 and 2 threads
(229,444,920 elements, 0 differing; sizes 1 to 100 and 32,769 to 100,003,
8 configurations, 3 steps). The two differ in one point: 2.14's fused
kernel updates float16 and bfloat16 (pytorch/pytorch#192545), which
``version="2.14"`` models:

* every operation computes in float32 and every intermediate result is
  rounded to float32; the parameter and the buffer are rounded to the
  16-bit format only when stored, and Nesterov's direction and the
  parameter update read this step's float32 buffer, not the stored one;
* lr, momentum, 1 − dampening and the weight decay are each converted once,
  double → float32 (never through the 16-bit format, and never checked for
  overflow);
* ``avx512`` and ``avx2``: the SIMD body is float32's fused body (the buffer
  fl(b·μ) + (1−τ)·g fused, every other multiply-add one FMA), and the
  scalar epilogue is the last n mod 16 elements of each tensor (the 16
  lanes of ``Vectorized<Half>``; whatever the threads), where the buffer is
  μ·b + fl((1−τ)·g) fused; ``default``: nothing fuses, body and epilogue
  alike.

This model gave 0 differing elements of 38.3 million (12 cells: each
capability, both dtypes, 1 and 2 threads; sizes 1 to 100 and 33,000 to
100,003) and of 2,685,417 per cell written with this module's own
recipes; each of its points was tested on its own against the closest
alternative (torch agreed with the model on every element where the two
differ, and the epilogue's length n mod 16 against n mod 4, 8, 32 and 64).
torch 2.14.1's messages, ``checked_convert`` of ``add_``'s alpha, threads,
grain and defaults are 2.13.0's.

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

import functools
import importlib.metadata
import math
from collections.abc import Callable
from typing import Any, TypeVar

from .._checks import describe, dtype_name
from .._dtypes import largest
from .._engine.ir import OPMATH, VIA_OPMATH, Hyper, Program, Recipe, Rounding, Split, instr
from .._tree import flatten, flatten_like, unflatten
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
from ._common import IN_OPMATH, REAL_FLOATS, check_trees, donated, number, run
from ._registry import Capabilities, Convention, Hypers, Variant

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

_EACH = Rounding(contract=True, compute=IN_OPMATH)
#: float16 and bfloat16 ``add_``: the scalar tail (c10::Half and
#: c10::BFloat16 arithmetic) rounds product and sum separately, after the
#: SIMD body's multiples of 32 elements (AVX-512 and AVX2).
REDUCED_TAIL = Rounding(contract=False, compute=IN_OPMATH)
REDUCED_LANES = dict.fromkeys(IN_OPMATH, 32)
_FUSED_LANES = {"float32": 8, "float64": 4}

#: The torch releases whose CPU kernels :func:`sgd` models (its ``version``).
VERSIONS = ("2.13", "2.14")

#: torch 2.14's fused kernel in float16 and bfloat16: float32 arithmetic, each
#: result kept in float32 (the 16-bit rounding only when p and b are stored).
_KEEP_FLOAT32 = dict.fromkeys(IN_OPMATH, "float32")
_FUSED16 = Rounding(contract=True, compute=IN_OPMATH, result=_KEEP_FLOAT32)
_FUSED16_TWICE = Rounding(contract=False, compute=IN_OPMATH, result=_KEEP_FLOAT32)
#: its scalar epilogue: the last n mod 16 elements (avx512 and avx2)
_FUSED16_LANES = dict.fromkeys(IN_OPMATH, 16)


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
    out: tuple[T | None, T | None] | None = None,
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
        threads: torch's intra-op threads (``torch.get_num_threads()``), a
            whole number >= 1; they cut a float16 or bfloat16 tensor of more
            than :data:`GRAIN` elements into chunks, each with its own scalar
            tail (see the module's docstring). None: torch's default here,
            :func:`default_threads` (nagref imports nothing of torch's).
        cpu_capability: the kernels torch runs, as ``ATEN_CPU_CAPABILITY``
            names them: ``"avx512"``, ``"avx2"`` (the same bits) or
            ``"default"`` (no SIMD: nothing fuses). None: what torch picks
            here, :func:`default_cpu_capability`.
        version: the torch release whose CPU kernels are modelled, one of
            :data:`VERSIONS`: ``"2.13"`` (torch 2.13.0) or ``"2.14"`` (torch
            2.14.1). They give the same bits, except that 2.14's fused
            kernel updates float16 and bfloat16 (float32 arithmetic, each
            intermediate kept in float32, a scalar epilogue of n mod 16
            elements; see the module's docstring), which 2.13's does not.
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
    release_modelled = _check_version(version)
    if _has_none(grad) or _has_none(momentum_buffer):

        def step(p: Any, g: Any, b: Any, paths_foreach: bool | None) -> tuple[Any, Any]:
            return sgd(
                p, g, b, lr=lr, momentum=momentum, dampening=dampening,
                weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                foreach=paths_foreach, fused=fused, threads=threads,
                cpu_capability=cpu_capability, version=version,
            )  # fmt: skip

        return _partial(
            param, grad, momentum_buffer, out, step,
            has_buffer=momentum != 0, foreach=foreach, fused=fused,
        )  # fmt: skip

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
    # torch 2.14's fused 16-bit kernel: opmath_t(x), each double -> float32 once
    fused16_hypers = {name: Hyper(h.value, (OPMATH,)) for name, h in hypers.items()}
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
            return _fused16(
                recipe, tail, capability, inputs=inputs, outputs=outputs, hypers=fused16_hypers
            )
        if capability == "default":  # body and epilogue round twice alike, as the tail does
            return Program(recipe, REDUCED_TAIL, inputs, outputs, hypers)
        return Program(recipe, _EACH, inputs, outputs, hypers, Split(tail, _EACH, _FUSED_LANES))

    new_param, new_buffer = run(trees, program, donated(out, "momentum_buffer", momentum != 0))
    return new_param, new_buffer


def _has_none(tree: object) -> bool:
    """Whether ``tree`` (not None itself) has a None leaf."""
    return tree is not None and any(leaf is None for _, leaf in flatten(tree)[0])


def _partial(
    param: Any,
    grad: Any,
    buffer: Any,
    out: tuple[Any, Any] | None,
    step: Callable[[Any, Any, Any, bool | None], tuple[Any, Any]],
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
    state has a buffer), so they round as ``foreach=False`` does.
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
    check_trees(stand_in, _checking, donated(out, "momentum_buffer", has_buffer))
    live = [i for i, g in enumerate(grads) if g is not None]
    fresh = [i for i in live if bufs[i] is None] if has_buffer else []
    if fused and fresh and len(fresh) < len(live):
        raise NotImplementedError(
            "fused=True with some momentum buffers None and others not is not modelled "
            "(torch's fused step starts every buffer or none)"
        )
    starting = {dtype_name(params[i]) for i in fresh}  # dtype groups that start a buffer
    groups: list[tuple[list[int], bool | None]] = [
        (fresh, foreach),
        ([i for i in live if i not in fresh and dtype_name(params[i]) in starting], False),
        ([i for i in live if i not in fresh and dtype_name(params[i]) not in starting], foreach),
    ]
    new_params: list[Any] = list(params)
    new_bufs: list[Any] = list(bufs)
    for indices, path in groups:  # computed whole before anything is written to out
        if not indices:
            continue
        known = None if bufs[indices[0]] is None or not has_buffer else [bufs[i] for i in indices]
        p_new, b_new = step([params[i] for i in indices], [grads[i] for i in indices], known, path)
        for k, i in enumerate(indices):
            new_params[i] = p_new[k]
            new_bufs[i] = None if b_new is None else b_new[k]
    if out is not None:
        for k, results in enumerate((new_params, new_bufs)):
            if out[k] is None:
                continue
            targets: list[Any] = flatten_like(structure, out[k], f"out[{k}]")
            for j, (target, value) in enumerate(zip(targets, results, strict=True)):
                if value is not None and target is not value:
                    target[...] = value
                    results[j] = target
    return unflatten(structure, new_params), (
        unflatten(structure, new_bufs) if has_buffer else None
    )


def _checking(dtype: str) -> Program:
    """A stand-in program for :func:`_partial`'s check of the trees (it is not run)."""
    return Program((), REDUCED_TAIL, ("p", "g"), ("p", "b"), {})


def _fused16(
    recipe: Recipe,
    tail: Recipe,
    capability: str,
    *,
    inputs: tuple[str, ...],
    outputs: tuple[str | None, ...],
    hypers: dict[str, Hyper],
) -> Program:
    """torch 2.14's fused kernel in float16 and bfloat16 (see the module's docstring).

    The body is ``recipe`` (the buffer fl(b·μ) + (1−τ)·g fused, as float32's
    body), the epilogue ``tail`` (μ·b + fl((1−τ)·g) fused) on the last
    n mod 16 elements of each tensor; every result is kept in float32, so
    that Nesterov and the update read this step's float32 buffer, and the
    outputs are rounded to the 16-bit format once, as the kernel stores them.
    """
    if capability == "default":  # nothing fuses: the body and the epilogue coincide
        return Program(recipe, _FUSED16_TWICE, inputs, outputs, hypers)
    return Program(recipe, _FUSED16, inputs, outputs, hypers, Split(tail, _FUSED16, _FUSED16_LANES))


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


def _check_version(value: object) -> str:
    """The ``version`` argument, one of :data:`VERSIONS`."""
    if not isinstance(value, str) or value not in VERSIONS:
        raise ValueError(
            f"version must be one of {', '.join(VERSIONS)} (the torch release whose CPU "
            f"kernels are modelled), got {describe(value)}"
        )
    return value


def release(version: str) -> str:
    """A torch version's release, as :data:`VERSIONS` names it: ``"2.14.1+cu130"`` -> ``"2.14"``."""
    return ".".join(version.partition("+")[0].split(".")[:2])


@functools.cache
def installed_torch() -> str | None:
    """The installed torch's version (``"2.14.1"``), from its metadata: torch is not imported.

    None where torch is not installed.
    """
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def _runs_release(version: str, capability: str) -> Callable[[str], bool]:
    """A variant's ``live``: the installed torch is ``version``'s and runs ``capability`` here."""
    here = runs_here(capability)

    def live(dtype: str) -> bool:
        installed = installed_torch()
        return installed is not None and release(installed) == version and here(dtype)

    return live


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
#: set (see :mod:`nagref.live.drivers.pytorch`). They model torch 2.13 (no
#: ``version`` option: 2.14 gives the same bits on each). ``fused-2.14``,
#: ``fused-2.14-avx2`` and ``fused-2.14-default`` are torch 2.14's fused
#: kernel in float16 and bfloat16, run live only where torch 2.14 is installed.
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
                _runs_release("2.14", capability),
            )
            for capability in CPU_CAPABILITIES
        ),
    ),
    capabilities=Capabilities(dampening=True, weight_decay=True, maximize=True),
    requirement="torch==2.13.0",
)
