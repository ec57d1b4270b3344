"""Cases for the live suite: plain data, and the arrays they stand for."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["VARIANTS", "Spec", "arrays", "random_spec"]

#: convention -> variant -> dtypes the framework runs on CPU.
VARIANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "pytorch": {
        "single-tensor": ("float16", "float32", "float64"),
        "foreach": ("float16", "float32", "float64"),
        "fused": ("float32", "float64"),
    },
    "keras": dict.fromkeys(
        ("tensorflow", "jax", "numpy", "torch"), ("float16", "float32", "float64")
    ),
    "optax": {"eager": ("float16", "float32", "float64"), "jit": ("float16", "float32", "float64")},
    "tensorflow": {"apply_momentum": ("float16", "float32", "float64")},
}


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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.lr)

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
    dtype = np.dtype(spec.dtype)
    rng = np.random.default_rng(spec.seed)
    param = rng.standard_normal(spec.shape).astype(dtype)
    grads = (rng.standard_normal((spec.steps, *spec.shape)) * spec.scale).astype(dtype)
    if spec.special > 0 and grads.size:
        info = np.finfo(dtype)
        pool = np.array(
            [
                0.0,
                -0.0,
                info.smallest_subnormal,
                -info.smallest_subnormal,
                info.smallest_normal / 3,
                -info.smallest_normal / 7,
                np.inf,
                -np.inf,
                np.nan,
            ],
            dtype=dtype,
        )
        where = rng.random(grads.shape) < spec.special
        grads[where] = rng.choice(pool, size=int(where.sum()))
    return param, grads


def random_spec(
    rng: np.random.Generator, convention: str, variant: str, dtype: str, *, max_steps: int = 200
) -> Spec:
    """A case drawn from ``rng``, covering the same ground as the hypothesis strategy."""
    sizes = (0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 37, 63, 65, 100)
    shape: tuple[int, ...] = (int(rng.choice(sizes)),)
    if rng.random() < 0.1:
        shape = ()
    elif rng.random() < 0.1:
        shape = (3, int(rng.integers(1, 12)))
    steps = int(rng.integers(1, max_steps + 1)) if rng.random() < 0.3 else int(rng.integers(1, 9))
    base = float(10 ** rng.uniform(-4, -0.3))
    varying = convention != "keras" and rng.random() < 0.5
    lr = tuple(float(base * rng.uniform(0.5, 1.5)) if varying else base for _ in range(steps))
    momentum: float | None = float(rng.choice([0.0, 0.5, 0.9, 0.99, rng.uniform(0, 1)]))
    nesterov = bool(rng.random() < 0.5) and momentum is not None and momentum > 0
    dampening = 0.0
    weight_decay: float | None = None
    maximize = False
    if convention == "pytorch":
        dampening = 0.0 if nesterov or rng.random() < 0.6 else float(rng.uniform(0, 1))
        weight_decay = float(rng.choice([0.0, 1e-4, rng.uniform(0, 0.1)]))
        maximize = bool(rng.random() < 0.3)
    elif convention == "keras":
        weight_decay = None if rng.random() < 0.6 else float(rng.uniform(0, 0.1))
    elif convention == "optax" and rng.random() < 0.2:
        momentum = None
        nesterov = False
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
