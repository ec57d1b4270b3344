r"""Exact state maps between the formulations and the framework conventions.

Every form of momentum and Nesterov's method stores two arrays. Written with
Sutskever et al.'s (2013) θ (the parameters before the look-ahead) and v
(the displacement, lr inside), μ and lr the momentum and learning rate of
the *next* step, each form stores two of these quantities:

===========================  ======================  ===========================  ============
form                         stores (``nesterov``)   stores (classical momentum)  function
===========================  ======================  ===========================  ============
``"sutskever"``              θ, v                    θ, v                         formulations
``"lecture"``                W = θ, V = −v           θ, −v                        nagref.nag
``"bengio"``                 Θ = θ + μv, v           (NAG only)                   formulations
``"nesterov_1983"``          y = Θ, x_prev = θ       (NAG only)                   formulations
``"polyak"``                 (CM only)               x = θ, x_prev = θ − v        formulations
``"dozat"``                  Θ, m = −v/lr            (NAG only)                   formulations
``"pytorch"``                Θ, b = −v/lr            θ, b                         registry
``"optax"``                  Θ, t = −v/lr            θ, t                         registry
``"keras"``                  Θ, v                    θ, v                         registry
``"tensorflow"``             Θ, a = −v/lr            θ, a                         registry
``"tf_keras"``               Θ, m = v                θ, m                         registry
``"jax_example_libraries"``  Θ, velocity = −v/lr     θ, velocity                  registry
``"sklearn"``                Θ, velocities = v       θ, velocities                registry
``"mlx"``                    Θ, v = −v/lr (MLX's v)  θ, v                         registry
``"paddle"``                 Θ, velocity = −v/lr     θ, velocity                  registry
===========================  ======================  ===========================  ============

The conventions' rows come from the convention registry
(:data:`nagref.conventions.REGISTRY`): each record says whether its state
holds b (lr-free) or v; its parameters are Θ under Nesterov and θ otherwise.

:func:`state` converts a state from one form to another through those
quantities, computing only what the target lacks, each quantity in the
fewest operations:

    Θ = θ + μv;  θ = Θ − μv;  v = −V;  V = −v;  b = (−v)/lr;  v = (−lr)·b;
    x_prev = θ − v;  v = θ − x_prev;  v = (Θ − θ)/μ  (v = 0 when μ = 0)

So a map that only renames or negates (lecture ↔ sutskever, keras ↔ bengio,
pytorch ↔ optax ↔ tensorflow ↔ dozat, nesterov_1983 → θ) is exact, and the others round
once or twice per element in the state's dtype.

Limits, all of the substance of the forms rather than of the maps:

* A map that involves b (PyTorch, Optax, Dozat) uses v = −lr·b, which ties
  the two only while lr is constant: Keras folds each step's lr into v, while
  PyTorch multiplies its whole buffer by the current lr, so after an lr
  change the two trajectories differ, whatever the map.
* PyTorch's buffer is None before the first step, and its first step clones
  the gradient without dampening. A None buffer (or a None Keras velocity or
  Optax trace) converts as zeros, which agrees with that first step only
  when dampening is 0.
* From a zero state Sutskever's method takes a plain gradient step to θ_1,
  whose look-ahead Θ_1 = θ_0 − (1 + μ) lr g_0 is the "long" first step of the
  Θ forms: the states map to one another at every step, including the first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._apply import apply
from ._checks import check_lr, check_momentum, describe
from ._engine.ir import Hyper, bind
from ._engine.trace import Tracer
from ._typing import TreeT
from .conventions import REGISTRY

__all__ = ["FORMS", "state"]

#: The published forms and the lecture form: what each stores, (nesterov, classical momentum).
_PAPERS: dict[str, tuple[tuple[str, str] | None, tuple[str, str] | None]] = {
    "sutskever": (("theta", "v"), ("theta", "v")),
    "lecture": (("theta", "V"), ("theta", "V")),
    "bengio": (("Theta", "v"), None),
    "nesterov_1983": (("Theta", "theta"), None),
    "polyak": (None, ("theta", "x_prev")),
    "dozat": (("Theta", "b"), None),
}
#: A form's name: a paper's (:data:`_PAPERS`) or a registered convention's.
Form = str
#: The forms :func:`state` converts between: the papers', then every registered
#: convention's (its registry record says what its state holds).
FORMS: tuple[Form, ...] = (*_PAPERS, *REGISTRY)
_NAG_ONLY = {name for name, (_, classical) in _PAPERS.items() if classical is None}
_CM_ONLY = {name for name, (nesterov, _) in _PAPERS.items() if nesterov is None}


def state(
    state: tuple[TreeT, TreeT | None],
    *,
    source: Form,
    target: Form,
    nesterov: bool,
    lr: float | None = None,
    momentum: float | None = None,
) -> tuple[TreeT, TreeT]:
    """Convert a two-array optimizer state from one form to another.

    Args:
        state: the source form's two arrays (or pytrees), in the order of the
            table above. A None second entry (PyTorch before its first step,
            Keras or Optax's None) means zeros.
        source, target: forms from :data:`FORMS`.
        nesterov: whether the state belongs to Nesterov's method (True) or
            to classical momentum (False).
        lr: the learning rate of the next step; needed when one side holds
            an lr-free buffer (PyTorch, Optax, Dozat) and the other does not.
        momentum: the momentum of the next step; needed when one side holds
            the look-ahead point Θ and the other θ.

    Returns:
        The target form's two arrays, as new arrays in the structure of the
        source's first.
    """
    for name, form in (("source", source), ("target", target)):
        if form not in FORMS:
            raise ValueError(f"{name} must be one of {', '.join(FORMS)}, got {form!r}")
        if nesterov and form in _CM_ONLY:
            raise ValueError(f"{name} {form!r} is classical momentum; got nesterov=True")
        if not nesterov and form in _NAG_ONLY:
            raise ValueError(f"{name} {form!r} is a form of Nesterov's method; got nesterov=False")
    if not isinstance(nesterov, bool):
        raise TypeError(f"nesterov must be a bool, got {describe(nesterov)}")
    if not isinstance(state, tuple) or len(state) != 2:
        raise TypeError(f"state must be a pair (a tuple of two), got {describe(state)}")
    have = _stores(source, nesterov)
    plan = _plan(have, _stores(target, nesterov))
    hypers = _hypers(plan, source, target, lr, momentum)
    first, second = state
    trees: dict[str, Any] = {"state[0]": first}
    if second is not None:
        trees["state[1]"] = second

    # the map as a program: each derivation traced once, in the plan's order
    tracer = Tracer()
    inputs = ("a", "b") if second is not None else ("a",)
    known: Known = {have[0]: tracer.symbol("a")}
    known[have[1]] = tracer.symbol("b") if second is not None else tracer.number(0.0)
    h: dict[str, Any] = {name: tracer.symbol(name) for name in hypers}
    h["zero"] = tracer.number(0.0) if hypers.get("momentum") == 0.0 else None
    for out, (_, fn) in plan:
        known[out] = fn(known, h)
    want = _stores(target, nesterov)
    program = tracer.program(inputs, (known[want[0]], known[want[1]]))
    program = bind(program, {name: Hyper(value) for name, value in hypers.items()})
    converted = apply(program, trees)
    return converted[0], converted[1]


def _stores(form: str, nesterov: bool) -> tuple[str, str]:
    if form in _PAPERS:
        stored = _PAPERS[form][0 if nesterov else 1]
        assert stored is not None  # checked by state()
        return stored
    return ("Theta" if nesterov else "theta", REGISTRY[form].stores)


Known = dict[str, Any]
Rule = tuple[tuple[str, ...], Callable[[Known, dict[str, Any]], Any]]

#: How each quantity follows from others, the cheapest first.
_RULES: dict[str, list[Rule]] = {
    "v": [
        (("V",), lambda k, h: -k["V"]),
        (("b", "lr"), lambda k, h: (-h["lr"]) * k["b"]),
        (("theta", "x_prev"), lambda k, h: k["theta"] - k["x_prev"]),
        (("Theta", "theta", "momentum"), lambda k, h: _divide(k["Theta"] - k["theta"], h)),
    ],
    "V": [(("v",), lambda k, h: -k["v"])],
    "b": [(("v", "lr"), lambda k, h: (-k["v"]) / h["lr"])],
    "theta": [(("Theta", "v", "momentum"), lambda k, h: k["Theta"] - h["momentum"] * k["v"])],
    "Theta": [(("theta", "v", "momentum"), lambda k, h: k["theta"] + h["momentum"] * k["v"])],
    "x_prev": [(("theta", "v"), lambda k, h: k["theta"] - k["v"])],
}
_HYPERS = {"lr", "momentum"}


def _plan(have: tuple[str, str], want: tuple[str, str]) -> list[tuple[str, Rule]]:
    """The derivations, in order, that produce ``want`` from ``have``."""
    steps: list[tuple[str, Rule]] = []
    known = set(have) | _HYPERS

    def need(name: str, visiting: frozenset[str]) -> bool:
        if name in known:
            return True
        for rule in _RULES.get(name, []):
            inputs = rule[0]
            if any(i in visiting for i in inputs):
                continue
            saved_steps, saved_known = list(steps), set(known)
            if all(need(i, visiting | {name}) for i in inputs):
                steps.append((name, rule))
                known.add(name)
                return True
            steps[:], known_reset = saved_steps, saved_known  # a failed attempt leaves nothing
            known.clear()
            known.update(known_reset)
        return False

    for name in want:
        if not need(name, frozenset()):  # pragma: no cover - every pair is reachable
            raise AssertionError(f"cannot derive {name} from {have}")
    return steps


def _hypers(
    plan: list[tuple[str, Rule]], source: str, target: str, lr: object, momentum: object
) -> dict[str, float]:
    used = {i for _, (inputs, _) in plan for i in inputs} & _HYPERS
    hypers: dict[str, float] = {}
    for name, value, check in (("lr", lr, check_lr), ("momentum", momentum, check_momentum)):
        if name not in used:
            continue
        if value is None:
            raise ValueError(f"converting {source!r} to {target!r} needs {name}, got None")
        checked = check(name, value)
        if not isinstance(checked, float):
            raise TypeError(f"{name} must be a Python real number, got {describe(value)}")
        if name == "lr" and checked == 0.0:
            raise ValueError(f"converting {source!r} to {target!r} needs lr > 0, got 0.0")
        hypers[name] = checked
    return hypers


def _divide(difference: Any, h: dict[str, Any]) -> Any:
    if h["zero"] is not None:  # v does not enter the next step when μ = 0
        return h["zero"]
    return difference / h["momentum"]
