"""Which cases the test vectors hold, and how nagref computes each one."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from .. import _dtypes, formulations, rules, schedules
from ..conventions import REGISTRY, Convention, Variant
from ..conventions import Hypers as StepHypers
from .hexfloat import narrow, numpy_dtype

__all__ = ["CONVENTIONS", "DTYPES", "Case", "cases"]

DTYPES = _dtypes.REAL
Hypers = dict[str, float | bool | str | None]
Array = npt.NDArray[Any]
Step = Callable[[Array, Array, Any, Hypers], tuple[Array, Any]]


@dataclass(frozen=True)
class Subject:
    """A function under test: its name, its state's names, and one step."""

    function: str
    state: tuple[str, ...]  # the names of the state arrays (empty: none)
    step: Step
    hypers: Callable[[int, bool, bool], Hypers]  # (step, lr changes, nesterov) -> hyperparameters
    nesterov: tuple[bool, ...] = (False, True)
    first_state: str = "zeros"  # "zeros", "none" (PyTorch), or "param" (x_{-1} = x_0)
    dtypes: tuple[str, ...] = DTYPES
    #: the state's dtype, given the parameters' (Optax's float32 trace of 16-bit parameters)
    state_dtype: Callable[[str], str] = lambda dtype: dtype
    #: further cases: (kind, keywords added to every step, the parameters' shape)
    extras: tuple[tuple[str, Hypers, tuple[int, ...]], ...] = ()


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
    state_dtype: str | None = None  # the state arrays' dtype, where it is not ``dtype``


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

    def hypers(t: int, varying: bool, nesterov: bool) -> Hypers:
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

    def hypers(t: int, varying: bool, nesterov: bool) -> Hypers:
        # a momentum that changes every step: Nesterov's schedule
        out: Hypers = {keys[0]: _lr(t, varying), keys[1]: schedules.nesterov(t + 1)}
        if two_momenta:
            out["mu_next"] = schedules.nesterov(t + 2)
        return out

    first = "param" if keys[2] == ("x_prev",) else "zeros"
    return Subject(
        f"nagref.formulations.{name}", keys[2], step, hypers, nesterov=(False,), first_state=first
    )


def _convention(convention: Convention, variant: Variant) -> Subject:
    def step(p: Array, g: Array, s: Any, h: Hypers) -> tuple[Array, Any]:
        p, state = convention.call(p, g, s[0], **h)
        return p, (state,)

    def hypers(t: int, varying: bool, nesterov: bool) -> Hypers:
        neutral = StepHypers(lr=_lr(t, varying), momentum=MU, nesterov=nesterov)
        return convention.arguments(neutral, variant)  # type: ignore[return-value]

    return Subject(
        convention.qualname,
        (convention.state,),
        step,
        hypers,
        first_state=convention.first_state,
        dtypes=variant.dtypes,
        state_dtype=lambda dtype: convention.state_dtype(variant.options, dtype),
        extras=tuple(
            (e.name, cast(Hypers, dict(e.keywords)), e.shape)
            for e in convention.extras
            if e.applies(variant)
        ),
    )


#: convention -> variant -> subject: the rules, the formulations, then every
#: registered framework convention
CONVENTIONS: dict[str, dict[str, Subject]] = {
    "rules": {name: _rule(name) for name in ("sgd", "momentum", "nag")},
    "formulations": {
        name: _formulation(name)
        for name in ("polyak", "nesterov_1983", "sutskever_cm", "sutskever_nag", "bengio", "dozat")
    },
    **{name: {v.name: _convention(c, v) for v in c.variants} for name, c in REGISTRY.items()},
}


# -- the cases --------------------------------------------------------------------------

SIZE = 37  # leaves tails after 4-, 8- and 32-lane SIMD bodies


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
                    for kind, keywords, shape in subject.extras:
                        name = f"{kind}-nesterov" if nesterov else kind
                        key = (convention, variant, dtype, name)
                        yield _run(
                            key, subject, nesterov=nesterov, kind="lr-change", steps=4,
                            shape=shape, keywords=keywords,
                        )  # fmt: skip


def _run(
    key: tuple[str, str, str, str],
    subject: Subject,
    *,
    nesterov: bool,
    kind: str,
    steps: int,
    shape: tuple[int, ...] = (SIZE,),
    keywords: Hypers | None = None,
) -> Case:
    convention, variant, dtype, name = key
    rng = np.random.default_rng(zlib.crc32(f"{convention}/{variant}/{dtype}/{name}".encode()))
    # rounded once (bfloat16 too, which ml_dtypes would round twice, through float32)
    param = narrow(rng.standard_normal(shape), dtype)
    grads = [narrow(rng.standard_normal(shape), dtype) for _ in range(steps)]
    if kind == "special":
        row = _dtypes.lookup(dtype)
        tiny = math.ldexp(1.0, row.min_exponent + 1 - row.precision)  # the smallest subnormal
        pool = [0.0, -0.0, tiny, -tiny, math.inf, -math.inf, math.nan]
        for t, g in enumerate(grads):
            for i, value in enumerate(pool):
                g[(5 * t + 3 * i) % SIZE] = value
    hypers = [
        {**subject.hypers(t, kind == "lr-change", nesterov), **(keywords or {})}
        for t in range(steps)
    ]
    state_dtype = subject.state_dtype(dtype)
    initial_state = _initial_state(subject, param, state_dtype)
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
        state_dtype=None if state_dtype == dtype else state_dtype,
    )
    p, s = param, initial_state
    with np.errstate(all="ignore"):
        for g, h in zip(grads, hypers, strict=True):
            p, s = subject.step(p, g, s, h)
            case.params.append(p)
            case.states.append(tuple(s))
    return case


def _initial_state(subject: Subject, param: Array, dtype: str) -> tuple[Array | None, ...]:
    if not subject.state:
        return ()
    if subject.first_state == "none":
        return (None,)
    if subject.first_state == "param":
        return (param.copy(),)
    return (np.zeros(param.shape, numpy_dtype(dtype)),)
