"""Cases for the live suite: plain data, and the arrays they stand for.

Which conventions, variants and dtypes the live frameworks run here comes
from the convention registry (:data:`nagref.conventions.REGISTRY`): each
variant says in which dtypes the framework on this machine runs it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .._compat import named_dtype
from .._dtypes import TABLE, round_to, smallest_normal
from ..conventions import REGISTRY, Hypers, lookup

__all__ = [
    "VARIANTS",
    "Spec",
    "arrays",
    "hypers",
    "random_spec",
    "worker_groups",
    "worker_variant",
]


def _live_variants() -> dict[str, dict[str, tuple[str, ...]]]:
    table: dict[str, dict[str, tuple[str, ...]]] = {}
    for convention in REGISTRY.values():
        for variant in convention.variants:
            dtypes = tuple(d for d in variant.dtypes if variant.live(d))
            if dtypes and variant.table:
                table.setdefault(convention.name, {})[variant.name] = dtypes
    return table


#: convention -> variant -> the dtypes the live framework runs here in the live table
#: (the registry's; a variant with ``table=False`` is checked by a suite of its own).
VARIANTS: dict[str, dict[str, tuple[str, ...]]] = _live_variants()


def worker_variant(convention: str, variant: str) -> str | None:
    """The variant argument of the worker that runs ``variant`` (None: one worker for all)."""
    return variant if lookup(convention).process_per_variant else None


def worker_groups() -> list[tuple[str, str | None, tuple[str, ...]]]:
    """``(convention, worker variant, variants)``: the worker processes the live rows need.

    A convention whose framework needs a process per variant (Keras picks its
    backend at import) gets one each; the others one for all their variants.
    """
    groups: list[tuple[str, str | None, tuple[str, ...]]] = []
    for name, variants in VARIANTS.items():
        if REGISTRY[name].process_per_variant:
            groups += [(name, worker_variant(name, v), (v,)) for v in variants]
        else:
            groups.append((name, None, tuple(variants)))
    return groups


@dataclass(frozen=True)
class Spec:
    """One case: a convention's variant, a dtype, a shape and a run of steps."""

    convention: str
    variant: str
    dtype: str
    shape: tuple[int, ...]
    seed: int
    lr: tuple[float, ...]  # one per step
    momentum: float | None = 0.9
    nesterov: bool = False
    dampening: float = 0.0
    weight_decay: float | None = None
    maximize: bool = False
    special: float = 0.0  # the share of gradient elements that are special values
    scale: float = 1.0  # the gradients' magnitude
    #: further keyword arguments for nagref's side, on top of the variant's options
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.lr)

    @property
    def state_dtype(self) -> str:
        """The dtype of the state (the convention's ``state_dtype`` for this variant)."""
        convention = lookup(self.convention)
        return convention.state_dtype(convention.variant(self.variant).options, self.dtype)

    def hypers(self, step: int) -> Hypers:
        """Step ``step``'s hyperparameters (0-based)."""
        return hypers(self, self.lr[step])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Spec:
        data = dict(data)
        data["shape"] = tuple(data["shape"])
        data["lr"] = tuple(data["lr"])
        return cls(**data)


def arrays(spec: Spec) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """The initial parameters and the gradients [steps, *shape] of ``spec``."""
    dtype = np.dtype(named_dtype(np, spec.dtype))
    row = TABLE[spec.dtype]
    rng = np.random.default_rng(spec.seed)
    param = rng.standard_normal(spec.shape).astype(dtype)
    grads = (rng.standard_normal((spec.steps, *spec.shape)) * spec.scale).astype(dtype)
    if spec.special > 0 and grads.size:
        tiny = smallest_normal(spec.dtype)
        subnormal = math.ldexp(tiny, 1 - row.precision)  # the smallest
        pool = np.array(
            [
                0.0,
                -0.0,
                subnormal,
                -subnormal,
                round_to(tiny / 3, spec.dtype),
                round_to(-tiny / 7, spec.dtype),
                np.inf,
                -np.inf,
                np.nan,
            ],
            dtype=dtype,
        )
        where = rng.random(grads.shape) < spec.special
        grads[where] = rng.choice(pool, size=int(where.sum()))
    return param, grads


def hypers(spec: Spec, lr: float) -> Hypers:
    """A step's hyperparameters: ``spec``'s, with learning rate ``lr``."""
    return Hypers(
        lr=lr,
        momentum=spec.momentum,
        nesterov=spec.nesterov,
        dampening=spec.dampening,
        weight_decay=spec.weight_decay,
        maximize=spec.maximize,
    )


def random_spec(
    rng: np.random.Generator, convention: str, variant: str, dtype: str, *, max_steps: int = 200
) -> Spec:
    """A case drawn from ``rng``, covering what the convention can express (its capabilities)."""
    known = lookup(convention)
    can = known.can(known.variant(variant))
    sizes = (0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 37, 63, 65, 100)
    shape: tuple[int, ...] = (int(rng.choice(sizes)),)
    if rng.random() < 0.1 and can.scalars:
        shape = ()
    elif rng.random() < 0.1:
        shape = (3, int(rng.integers(1, 12)))
    steps = int(rng.integers(1, max_steps + 1)) if rng.random() < 0.3 else int(rng.integers(1, 9))
    steps = min(steps, max_steps)
    base = float(10 ** rng.uniform(-4, -0.3))
    varying = can.changing_lr and rng.random() < 0.5
    lr = tuple(float(base * rng.uniform(0.5, 1.5)) if varying else base for _ in range(steps))
    momentum: float | None = float(rng.choice([0.0, 0.5, 0.9, 0.99, rng.uniform(0, 1)]))
    if can.momentum_none and rng.random() < 0.2:
        momentum = None
    nesterov = bool(rng.random() < 0.5) and momentum is not None and momentum > 0
    dampening = 0.0
    if can.dampening and not nesterov and rng.random() >= 0.6:
        dampening = float(rng.uniform(0, 1))
    weight_decay: float | None = None
    if can.weight_decay and rng.random() >= 0.5:
        weight_decay = float(rng.choice([1e-4, rng.uniform(0, 0.1)]))
    maximize = can.maximize and bool(rng.random() < 0.3)
    return Spec(
        convention=convention,
        variant=variant,
        dtype=dtype,
        shape=shape,
        seed=int(rng.integers(0, 2**31)),
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        dampening=dampening,
        weight_decay=weight_decay,
        maximize=maximize,
        special=float(rng.choice([0.0, 0.0, 0.05, 0.3])),
        scale=float(10 ** rng.uniform(-3, 2)),
    )
