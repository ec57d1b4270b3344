"""nagref.convert: state maps checked by converting in the middle of a run and going on."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import nagref
from nagref import convert, formulations, schedules
from nagref.conventions import keras, optax, pytorch, tensorflow

LR, MU = 0.0625, 0.875  # float32 numbers, so Keras's float32 casts are exact
LAMBDA = np.array([1.0, 0.5, 0.25, 0.1, 0.03, 0.01, 0.003, 0.7])
TARGET = np.array([1.0, -2.0, 0.5, 3.0, -0.75, 0.125, 10.0, -1e-3])
X0 = np.array([0.3, 1.5, -2.0, 0.0, 4.0, -0.5, 1.0, 2.0])
BEFORE, AFTER = 10, 30


def grad(x: np.ndarray) -> np.ndarray:
    return LAMBDA * (x - TARGET)


@dataclass(frozen=True)
class Form:
    """A form's step on the quadratic above, with constant lr and momentum."""

    name: str
    step: Callable[[tuple[Any, Any]], tuple[Any, Any]]
    initial: Callable[[np.ndarray], tuple[Any, Any]]


def _zero(x: np.ndarray) -> tuple[Any, Any]:
    return x.copy(), np.zeros_like(x)


def _forms(nesterov: bool) -> dict[str, Form]:
    def lecture(s: tuple[Any, Any]) -> tuple[Any, Any]:
        w, v = s
        if nesterov:
            return nagref.nag(w, grad(nagref.lookahead(w, v, momentum=MU)), v, lr=LR, momentum=MU)
        return nagref.momentum(w, grad(w), v, lr=LR, momentum=MU)

    def sutskever(s: tuple[Any, Any]) -> tuple[Any, Any]:
        theta, v = s
        if nesterov:
            point = formulations.sutskever_lookahead(theta, v, mu=MU)
            return formulations.sutskever_nag(theta, grad(point), v, epsilon=LR, mu=MU)
        return formulations.sutskever_cm(theta, grad(theta), v, epsilon=LR, mu=MU)

    forms = {
        "lecture": Form("lecture", lecture, _zero),
        "sutskever": Form("sutskever", sutskever, _zero),
        "pytorch": Form(
            "pytorch",
            lambda s: pytorch.sgd(s[0], grad(s[0]), s[1], lr=LR, momentum=MU, nesterov=nesterov),
            lambda x: (x.copy(), None),
        ),
        "optax": Form(
            "optax",
            lambda s: optax.sgd(
                s[0], grad(s[0]), s[1], learning_rate=LR, momentum=MU, nesterov=nesterov
            ),
            _zero,
        ),
        "keras": Form(
            "keras",
            lambda s: keras.sgd(
                s[0], grad(s[0]), s[1], learning_rate=LR, momentum=MU, nesterov=nesterov
            ),
            _zero,
        ),
        "tensorflow": Form(
            "tensorflow",
            lambda s: tensorflow.apply_momentum(
                s[0], s[1], grad(s[0]), lr=LR, momentum=MU, use_nesterov=nesterov
            ),
            _zero,
        ),
    }
    if nesterov:
        forms["bengio"] = Form(
            "bengio",
            lambda s: formulations.bengio(s[0], grad(s[0]), s[1], epsilon=LR, mu=MU, mu_next=MU),
            _zero,
        )
        forms["dozat"] = Form(
            "dozat",
            lambda s: formulations.dozat(s[0], grad(s[0]), s[1], eta=LR, mu=MU, mu_next=MU),
            _zero,
        )
        forms["nesterov_1983"] = Form(
            "nesterov_1983",
            lambda s: formulations.nesterov_1983(s[0], grad(s[0]), s[1], alpha=LR, beta=MU),
            lambda x: (x.copy(), x.copy()),
        )
    else:
        forms["polyak"] = Form(
            "polyak",
            lambda s: formulations.polyak(s[0], grad(s[0]), s[1], alpha=LR, beta=MU),
            lambda x: (x.copy(), x.copy()),
        )
    return forms


def _to(s: tuple[Any, Any], source: str, target: str, nesterov: bool) -> tuple[Any, Any]:
    return convert.state(s, source=source, target=target, nesterov=nesterov, lr=LR, momentum=MU)  # type: ignore[arg-type]


def _run(form: Form, s: tuple[Any, Any], steps: int) -> list[tuple[Any, Any]]:
    out = []
    for _ in range(steps):
        s = form.step(s)
        out.append(s)
    return out


def _switch_mid_run(nesterov: bool, source: str, target: str) -> tuple[list[Any], list[Any]]:
    """Run ``source`` BEFORE steps; return AFTER more of ``target`` (converted) and ``source``."""
    forms = _forms(nesterov)
    a, b = forms[source], forms[target]
    start = _run(a, a.initial(X0), BEFORE)[-1]
    return _run(b, _to(start, source, target, nesterov), AFTER), _run(a, start, AFTER)


def _ulps(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> float:
    """max |a − b| in units of the last place of the largest element of ``scale``.

    Element-wise ULPs mean nothing for an element that cancels to near zero,
    so the distance is measured against the parameters' own magnitude.
    """
    return float(np.max(np.abs(a - b)) / math.ulp(float(np.max(np.abs(scale)))))


PAIRS = [
    (nesterov, a, b)
    for nesterov in (False, True)
    for a, b in itertools.permutations(_forms(nesterov), 2)
]


@pytest.mark.parametrize(("nesterov", "source", "target"), PAIRS)
def test_converting_mid_run_and_going_on_follows_the_same_trajectory(
    nesterov: bool, source: str, target: str
) -> None:
    switched, reference = _switch_mid_run(nesterov, source, target)
    for k, (ours, theirs) in enumerate(zip(switched, reference, strict=True), 1):
        # compare in Sutskever's (θ, v): the target's state mapped back
        mine = _to(ours, target, "sutskever", nesterov)
        ref = _to(theirs, source, "sutskever", nesterov)
        # at most one ulp (of the parameters' magnitude) per step, maps included
        assert _ulps(mine[0], ref[0], ref[0]) <= k, (k, _ulps(mine[0], ref[0], ref[0]))
        assert _ulps(mine[1], ref[1], ref[0]) <= k, (k, _ulps(mine[1], ref[1], ref[0]))


EXACT_MAPS = [
    (False, "lecture", "sutskever"),
    (True, "lecture", "sutskever"),
    (True, "keras", "bengio"),
    (False, "pytorch", "optax"),
    (True, "pytorch", "optax"),
    (True, "optax", "dozat"),
    (True, "pytorch", "dozat"),
    (False, "tensorflow", "pytorch"),
    (True, "tensorflow", "optax"),
]


@pytest.mark.parametrize(("nesterov", "source", "target"), EXACT_MAPS)
def test_a_map_that_renames_or_negates_is_exact_both_ways(
    nesterov: bool, source: str, target: str
) -> None:
    forms = _forms(nesterov)
    s = _run(forms[source], forms[source].initial(X0), BEFORE)[-1]
    there = _to(s, source, target, nesterov)
    back = _to(there, target, source, nesterov)
    assert back[0].tobytes() == s[0].tobytes()
    assert back[1].tobytes() == s[1].tobytes()
    assert back[0] is not s[0]  # new arrays, even where nothing changes


@pytest.mark.parametrize(
    ("nesterov", "source", "target"),
    [(False, "lecture", "sutskever"), (True, "lecture", "sutskever"), (True, "optax", "dozat")],
)
def test_where_the_map_and_the_arithmetic_are_exact_the_trajectory_is_bitwise(
    nesterov: bool, source: str, target: str
) -> None:
    # lecture ≡ Sutskever with V = −v; Optax eager ≡ Dozat (t = g + μt is
    # μm + g, and p + (−lr)·d is θ − η·d, operation for operation)
    switched, reference = _switch_mid_run(nesterov, source, target)
    for ours, theirs in zip(switched, reference, strict=True):
        back = _to(ours, target, source, nesterov)
        assert back[0].tobytes() == theirs[0].tobytes()
        assert back[1].tobytes() == theirs[1].tobytes()


def test_a_changing_momentum_converts_with_the_next_steps_value() -> None:
    # Sutskever's NAG with Nesterov's schedule, switched to Bengio's form mid-run
    theta, v = X0.copy(), np.zeros_like(X0)
    for t in range(BEFORE):
        mu = schedules.nesterov(t)
        point = formulations.sutskever_lookahead(theta, v, mu=mu)
        theta, v = formulations.sutskever_nag(theta, grad(point), v, epsilon=LR, mu=mu)
    mu = schedules.nesterov(BEFORE)
    big, w = convert.state(
        (theta, v), source="sutskever", target="bengio", nesterov=True, momentum=mu
    )
    for t in range(BEFORE, BEFORE + AFTER):
        mu, mu_next = schedules.nesterov(t), schedules.nesterov(t + 1)
        point = formulations.sutskever_lookahead(theta, v, mu=mu)
        theta, v = formulations.sutskever_nag(theta, grad(point), v, epsilon=LR, mu=mu)
        big, w = formulations.bengio(big, grad(big), w, epsilon=LR, mu=mu, mu_next=mu_next)
        look = formulations.sutskever_lookahead(theta, v, mu=mu_next)
        assert _ulps(big, look, look) <= t - BEFORE + 1


def test_none_state_means_zeros_and_pytrees_keep_their_structure() -> None:
    tree = {"w": X0, "b": [X0[:3]]}
    out = convert.state(
        (tree, None), source="pytorch", target="lecture", nesterov=True, lr=LR, momentum=MU
    )
    assert set(out[0]) == {"w", "b"}
    assert out[1]["b"][0].tobytes() == np.zeros(3).tobytes()
    assert out[0]["w"].tobytes() == X0.tobytes()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"source": "adam"}, ValueError, "source must be one of .*, got 'adam'"),
        ({"target": "polyak"}, ValueError, "target 'polyak' is classical momentum"),
        ({"nesterov": False, "target": "bengio"}, ValueError, "Nesterov's method; got nesterov"),
        ({"lr": None}, ValueError, "converting 'lecture' to 'pytorch' needs lr, got None"),
        ({"momentum": None}, ValueError, "needs momentum, got None"),
        ({"lr": 0.0}, ValueError, "needs lr > 0, got 0.0"),
        ({"lr": -1.0}, ValueError, "lr must be a finite number >= 0, got -1.0"),
        ({"momentum": 1.5}, ValueError, r"momentum must be in \[0, 1\), got 1.5"),
        ({"nesterov": 1}, TypeError, "nesterov must be a bool"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], error: type, message: str) -> None:
    args: dict[str, Any] = {
        "source": "lecture",
        "target": "pytorch",
        "nesterov": True,
        "lr": LR,
        "momentum": MU,
    }
    args.update(kwargs)
    with pytest.raises(error, match=message):
        convert.state((X0, X0), **args)


def test_the_state_must_be_a_pair() -> None:
    with pytest.raises(TypeError, match="state must be a pair"):
        convert.state(X0, source="lecture", target="sutskever", nesterov=True)  # type: ignore[arg-type]
