"""The live driver of ``torch.optim.SGD`` (CPU).

A case's variant options say how torch runs it: ``foreach`` and ``fused``
pick the code path, ``threads`` the intra-op threads
(``torch.set_num_threads``; a case's ``extra`` may ask for others, as
``Spec(extra={"threads": 2})``: both sides take it), and ``cpu_capability``
the kernels. A variant that names a ``version`` (``fused-2.14``: torch
2.14's fused float16 and bfloat16) runs only on that torch release: under
another, its case raises, rather than run the kernels of a release it does
not model. Torch reads ``ATEN_CPU_CAPABILITY`` once, so this worker runs
the cases of its own kernels (a variant's, when it is started for one; else
whatever torch picks here), and hands a case of other kernels to a helper
worker of its own, started with the variable set, one per capability. A
case's ``extra`` may name layouts (``param_layout``, ``grad_layout``: a
name or strides, as :func:`nagref.conventions.pytorch.sgd` takes them): the
param and each step's grad are then torch tensors with those strides, views
of larger zeroed storage, and torch makes the buffer's as it does. A
variant with ``compiled`` runs ``torch.compile(optimizer.step)``, compiled
afresh for each case.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ...conventions import lookup
from ...conventions._layouts import named
from ...conventions.pytorch import release
from ..cases import Spec, arrays
from ..suite import Worker
from ..worker import FAULT
from . import Run, Trajectory, from_torch, per_step, to_torch

#: torch's environment variable for its CPU kernels
CAPABILITY = "ATEN_CPU_CAPABILITY"


def start(variant: str | None) -> tuple[str, Run]:
    convention = lookup("pytorch")
    wanted = None if variant is None else convention.variant(variant).options.get("cpu_capability")
    if wanted is not None:
        os.environ[CAPABILITY] = str(wanted)
    import torch

    running = str(torch.backends.cpu.get_cpu_capability()).lower()
    if wanted is not None and running != wanted:
        raise RuntimeError(
            f"{CAPABILITY}={wanted} was set, but torch runs its {running} kernels "
            "(torch was imported before, or it ignored the value)"
        )
    torch.set_num_threads(1)
    helpers: dict[str, Worker] = {}

    @atexit.register
    def close_helpers() -> None:
        for helper in helpers.values():
            helper.close()

    def run(spec: Spec) -> Trajectory:
        options: dict[str, Any] = {**convention.variant(spec.variant).options, **spec.extra}
        modelled = options.get("version")
        if modelled is not None and release(torch.__version__) != modelled:
            raise RuntimeError(
                f"variant {spec.variant!r} models torch {modelled}, but this worker runs "
                f"torch {torch.__version__}: install torch {modelled} to run it live"
            )
        capability = options.get("cpu_capability")
        if capability is not None and capability != running:
            if capability not in helpers:
                helpers[capability] = _helper(str(capability))
            return helpers[capability].run(spec)
        torch.set_num_threads(int(options.get("threads", 1)))
        param, grads = arrays(spec)

        def laid(x: Any, role: str) -> Any:  # x as a tensor with the case's layout for role
            tensor, given = to_torch(x), options.get(f"{role}_layout")
            if given is None:
                return tensor
            strides = named(given, x.shape, f"{role}_layout")
            extent = 1 + sum((n - 1) * s for n, s in zip(x.shape, strides, strict=True))
            held = torch.zeros(extent if x.size else 0, dtype=tensor.dtype)
            return held.as_strided(x.shape, strides).copy_(tensor)

        p = laid(param, "param")
        opt = torch.optim.SGD(
            [p],
            lr=spec.lr[0],
            momentum=spec.momentum or 0.0,
            dampening=spec.dampening,
            weight_decay=spec.weight_decay or 0.0,
            nesterov=spec.nesterov,
            maximize=spec.maximize,
            foreach=bool(options.get("foreach", False)),
            fused=bool(options.get("fused", False)),
        )
        step = (
            _compiled(torch, opt, fused=bool(options.get("fused")))
            if options.get("compiled")
            else opt.step
        )
        out: Trajectory = []
        for lr, g in zip(spec.lr, per_step(grads), strict=True):
            opt.param_groups[0]["lr"] = lr
            p.grad = laid(g, "grad")
            step()
            buf = opt.state[p].get("momentum_buffer")
            out.append((from_torch(p), None if buf is None else from_torch(buf)))
        return out

    return f"torch {torch.__version__}", run


def _compiled(torch: Any, opt: Any, *, fused: bool) -> Any:
    """``torch.compile(opt.step)``, compiled afresh for this case and never run eagerly.

    With ``fused``, dynamo sees the step but does not trace into the fused
    kernel (torch's ``torch.compiler.disable``): no graph holds it.

    dynamo's caches are reset (an earlier case's graphs would count towards
    its recompile limit, after which it silently runs the step eagerly), and
    the limit raised: every new learning rate is a new compilation.
    """
    dynamo = torch._dynamo
    dynamo.reset()
    dynamo.utils.counters.clear()  # this case's graphs only
    dynamo.config.recompile_limit = 10_000
    dynamo.config.accumulated_recompile_limit = 10_000
    compiled = torch.compile(opt.step)

    def step() -> None:
        compiled()
        if not dynamo.utils.counters["frames"]["total"]:
            raise RuntimeError("torch.compile saw no frame: the step ran eagerly")
        if not fused and not dynamo.utils.counters["stats"]["unique_graphs"]:
            raise RuntimeError("torch.compile ran no graph: the step ran eagerly")

    return step


def _helper(capability: str) -> Worker:
    """A worker whose torch runs ``capability``'s kernels (started for a variant pinning them)."""
    variant = next(
        v.name for v in lookup("pytorch").variants if v.options.get("cpu_capability") == capability
    )
    with _without(FAULT):  # the test hook's faults are this worker's, not its helper's
        return Worker("pytorch", variant)


@contextlib.contextmanager
def _without(name: str) -> Iterator[None]:
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[name] = saved
