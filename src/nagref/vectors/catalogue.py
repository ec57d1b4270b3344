"""Which cases the test vectors hold, and how nagref computes each one."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import formulations, rules, schedules
from ..conventions import keras, optax, pytorch, tensorflow

__all__ = ["CONVENTIONS", "DTYPES", "Case", "cases"]

DTYPES = ("float16", "float32", "float64")
Hypers = dict[str, float | bool | str | None]
Array = npt.NDArray[Any]
Step = Callable[[Array, Array, Any, Hypers], tuple[Array, Any]]


@dataclass(frozen=True)
class Subject:
    """A function under test: its name, its state's names, and one step."""

    function: str
    state: tuple[str, ...]  # the names of the state arrays (empty: none)
    step: Step
    hypers: Callable[[int, bool], Hypers]  # (step index, nesterov) -> hyperparameters
    nesterov: tuple[bool, ...] = (False, True)
    first_state: str = "zeros"  # "zeros", "none" (PyTorch), or "param" (x_{-1} = x_0)
    dtypes: tuple[str, ...] = DTYPES


@dataclass(frozen=True)
class Case:
    """One test vector: inputs and nagref's trajectory."""

    convention: str
    variant: str
    dtype: str
    name: str
    function: str
    state_names: tuple[str, ...]
    initial_param: Array
    initial_state: tuple[Array | None, ...]
    grads: list[Array]
    hypers: list[Hypers]
    params: list[Array] = field(default_factory=list)
    states: list[tuple[Array | None, ...]] = field(default_factory=list)


# -- the subjects ----------------------------------------------------------------------

LR, MU = 0.1, 0.9


def _lr(t: int, varying: bool) -> float:
    # the learning rate of step t: constant, or changing every step
    return LR * (1.0 + 0.25 * math.sin(t + 1.0)) if varying else LR


def _rule(name: str) -> Subject:
    def step(p: Array, g: Array, s: Any, h: Hypers) -> tuple[Array, Any]:
        if name == "sgd":
            return rules.sgd(p, g, lr=h["lr"]), ()  # type: ignore[arg-type]
        fn = rules.nag if name == "nag" else rules.momentum
        w, v = fn(p, g, s[0], lr=h["lr"], momentum=h["momentum"])  # type: ignore[arg-type]
        return w, (v,)

    def hypers(t: int, varying: bool) -> Hypers:
        return {"lr": _lr(t, varying)} if name == "sgd" else {"lr": _lr(t, varying), "momentum": MU}

    state = () if name == "sgd" else ("velocity",)
    return Subject(f"nagref.{name}", state, step, hypers, nesterov=(False,))


def _formulation(name: str) -> Subject:
    fn = getattr(formulations, name)
    keys = {
        "polyak": ("alpha", "beta", ("x_prev",)),
        "nesterov_1983": ("alpha", "beta", ("x_prev",)),
        "sutskever_cm": ("epsilon", "mu", ("v",)),
        "sutskever_nag": ("epsilon", "mu", ("v",)),
        "bengio": ("epsilon", "mu", ("v",)),
        "dozat": ("eta", "mu", ("m",)),
    }[name]
    two_momenta = name in ("bengio", "dozat")

    def step(p: Array, g: Array, s: Any, h: Hypers) -> tuple[Array, Any]:
        p, state = fn(p, g, s[0], **h)
        return p, (state,)

    def hypers(t: int, varying: bool) -> Hypers:
        # a momentum that changes every step: Nesterov's schedule
        out: Hypers = {keys[0]: _lr(t, varying), keys[1]: schedules.nesterov(t + 1)}
        if two_momenta:
            out["mu_next"] = schedules.nesterov(t + 2)
        return out

    first = "param" if keys[2] == ("x_prev",) else "zeros"
    return Subject(
        f"nagref.formulations.{name}", keys[2], step, hypers, nesterov=(False,), first_state=first
    )


def _pytorch(variant: str) -> Subject:
    def step(p: Array, g: Array, s: Any, h: Hypers) -> tuple[Array, Any]:
        p, b = pytorch.sgd(p, g, s[0], **h)  # type: ignore[arg-type]
        return p, (b,)

    def hypers(t: int, varying: bool) -> Hypers:
        return {
            "lr": _lr(t, varying),
            "momentum": MU,
            "foreach": variant == "foreach",
            "fused": variant == "fused",
        }

    dtypes = DTYPES[1:] if variant == "fused" else DTYPES
    return Subject(
        "nagref.conventions.pytorch.sgd",
        ("momentum_buffer",),
        step,
        hypers,
        first_state="none",
        dtypes=dtypes,
    )


def _keras(backend: str) -> Subject:
    def step(p: Array, g: Array, s: Any, h: Hypers) -> tuple[Array, Any]:
        p, v = keras.sgd(p, g, s[0], **h)  # type: ignore[arg-type]
        return p, (v,)

    def hypers(t: int, varying: bool) -> Hypers:
        return {"learning_rate": _lr(t, varying), "momentum": MU, "backend": backend}

    return Subject("nagref.conventions.keras.sgd", ("momentum_var",), step, hypers)


def _optax(variant: str) -> Subject:
    def step(p: Array, g: Array, s: Any, h: Hypers) -> tuple[Array, Any]:
        p, t = optax.sgd(p, g, s[0], **h)  # type: ignore[arg-type]
        return p, (t,)

    def hypers(t: int, varying: bool) -> Hypers:
        # pinned, so that the vectors do not depend on the CPU that writes them
        return {
            "learning_rate": _lr(t, varying),
            "momentum": MU,
            "jit": variant == "jit",
            "native_float16": False,
        }

    return Subject("nagref.conventions.optax.sgd", ("trace",), step, hypers)


def _tensorflow() -> Subject:
    def step(p: Array, g: Array, s: Any, h: Hypers) -> tuple[Array, Any]:
        var, accum = tensorflow.apply_momentum(p, s[0], g, **h)  # type: ignore[arg-type]
        return var, (accum,)

    def hypers(t: int, varying: bool) -> Hypers:
        return {"lr": _lr(t, varying), "momentum": MU}

    return Subject("nagref.conventions.tensorflow.apply_momentum", ("accum",), step, hypers)


#: convention -> variant -> subject
CONVENTIONS: dict[str, dict[str, Subject]] = {
    "rules": {name: _rule(name) for name in ("sgd", "momentum", "nag")},
    "formulations": {
        name: _formulation(name)
        for name in ("polyak", "nesterov_1983", "sutskever_cm", "sutskever_nag", "bengio", "dozat")
    },
    "pytorch": {v: _pytorch(v) for v in ("single-tensor", "foreach", "fused")},
    "keras": {b: _keras(b) for b in keras.BACKENDS},
    "optax": {"eager": _optax("eager"), "jit": _optax("jit")},
    "tensorflow": {"apply_momentum": _tensorflow()},
}


# -- the cases --------------------------------------------------------------------------

SIZE = 37  # leaves tails after 4-, 8- and 32-lane SIMD bodies
_NESTEROV_KEY = {
    "pytorch": "nesterov",
    "keras": "nesterov",
    "optax": "nesterov",
    "tensorflow": "use_nesterov",
}


def cases(
    conventions: tuple[str, ...] | None = None, dtypes: tuple[str, ...] | None = None
) -> Iterator[Case]:
    """Every case, in a fixed order, computed by nagref."""
    for convention, variants in CONVENTIONS.items():
        if conventions is not None and convention not in conventions:
            continue
        for variant, subject in variants.items():
            for dtype in subject.dtypes:
                if dtypes is not None and dtype not in dtypes:
                    continue
                for nesterov in subject.nesterov:
                    for kind, steps in (
                        ("basic", 6),
                        ("lr-change", 6),
                        ("special", 4),
                        ("first-step", 1),
                    ):
                        name = f"{kind}-nesterov" if nesterov else kind
                        key = (convention, variant, dtype, name)
                        yield _run(key, subject, nesterov=nesterov, kind=kind, steps=steps)


def _run(
    key: tuple[str, str, str, str], subject: Subject, *, nesterov: bool, kind: str, steps: int
) -> Case:
    convention, variant, dtype, name = key
    rng = np.random.default_rng(zlib.crc32(f"{convention}/{variant}/{dtype}/{name}".encode()))
    param = rng.standard_normal(SIZE).astype(dtype)
    grads = [rng.standard_normal(SIZE).astype(dtype) for _ in range(steps)]
    if kind == "special":
        info = np.finfo(dtype)
        pool = [
            0.0,
            -0.0,
            info.smallest_subnormal,
            -info.smallest_subnormal,
            math.inf,
            -math.inf,
            math.nan,
        ]
        for t, g in enumerate(grads):
            for i, value in enumerate(pool):
                g[(5 * t + 3 * i) % SIZE] = value
    hypers = []
    for t in range(steps):
        h = subject.hypers(t, kind == "lr-change")
        if convention in _NESTEROV_KEY:
            h[_NESTEROV_KEY[convention]] = nesterov
        hypers.append(h)
    initial_state = _initial_state(subject, param)
    case = Case(
        convention,
        variant,
        dtype,
        name,
        subject.function,
        subject.state,
        param,
        initial_state,
        grads,
        hypers,
    )
    p, s = param, initial_state
    with np.errstate(all="ignore"):
        for g, h in zip(grads, hypers, strict=True):
            p, s = subject.step(p, g, s, h)
            case.params.append(p)
            case.states.append(tuple(s))
    return case


def _initial_state(subject: Subject, param: Array) -> tuple[Array | None, ...]:
    if not subject.state:
        return ()
    if subject.first_state == "none":
        return (None,)
    if subject.first_state == "param":
        return (param.copy(),)
    return (np.zeros_like(param),)
