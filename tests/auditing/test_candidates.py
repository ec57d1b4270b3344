"""nagref.auditing.candidates: which implementations an audit replays, and how."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nagref import formulations, rules
from nagref._compare import bitwise_equal
from nagref._dtypes import numpy_dtype
from nagref.auditing.candidates import Candidate, candidates
from nagref.auditing.trajectory import Trajectory, load
from nagref.conventions import REGISTRY, lookup

LR = (0.1, 0.2, 0.05)
MU = (0.9, 0.8, 0.7)
NESTEROV_FORMS = [
    "nagref.nag (lecture form)",
    "formulations.sutskever_nag",
    "formulations.bengio",
    "formulations.dozat",
    "formulations.nesterov_1983",
]
MOMENTUM_FORMS = [
    "nagref.momentum (lecture form)",
    "formulations.sutskever_cm",
    "formulations.polyak",
]


def _trajectory(
    dtype: str = "float32",
    nesterov: bool | None = None,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
) -> Trajectory:
    rng = np.random.default_rng(0)
    initial = rng.standard_normal(9).astype(dtype)
    grads = rng.standard_normal((3, 9)).astype(dtype)
    return Trajectory(initial, grads, grads.copy(), LR, MU, nesterov, dampening, weight_decay)


def _expected(
    dtype: str, settings: tuple[bool, ...], allowed: set[str], plain: bool, needs: str = ""
) -> list[str]:
    """The candidates' names; ``needs``: a capability each variant must have (its own)."""
    names = ["nagref.sgd"] if plain else []
    for nesterov in settings:
        if plain:
            names += NESTEROV_FORMS if nesterov else MOMENTUM_FORMS
        tag = ", nesterov" if nesterov else ""
        names += [
            f"{c.name} {v.name}{tag}{label}"
            for c in REGISTRY.values()
            if c.name in allowed
            for v in c.variants
            if dtype in v.dtypes and (not needs or getattr(c.can(v), needs))
            for label, _ in (("", {}), *c.settings_for(v, (9,), dtype))
        ]
    return names


def _names(tr: Trajectory) -> list[str]:
    return [c.name for c in candidates(tr)]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("nesterov", [None, False, True])
def test_names_and_order_come_from_the_registry(dtype: str, nesterov: bool | None) -> None:
    settings = (False, True) if nesterov is None else (nesterov,)
    names = _names(_trajectory(dtype, nesterov))
    assert names == _expected(dtype, settings, set(REGISTRY), plain=True)
    assert len(set(names)) == len(names)


def test_the_dtype_selects_the_variants() -> None:
    half, single = _names(_trajectory("float16")), _names(_trajectory("float32"))
    assert {"optax jit-avx512fp16", "optax eager-avx512fp16, nesterov"} <= set(half)
    assert "pytorch fused" not in half
    assert "pytorch fused, nesterov" not in half
    assert {"pytorch fused", "pytorch fused, nesterov"} <= set(single)
    assert not any("avx512fp16" in name for name in single)


def test_dampening_leaves_the_conventions_that_can_express_it() -> None:
    allowed = {c.name for c in REGISTRY.values() if c.capabilities.dampening}
    assert allowed == {"mlx", "pytorch"}
    names = _names(_trajectory(dampening=0.5))
    assert names == _expected("float32", (False, True), allowed, plain=False)
    assert not any(n.startswith(("nagref.", "formulations.")) for n in names)
    both = _names(_trajectory(nesterov=False, dampening=0.5, weight_decay=0.01))
    torch_variants = [v.name for v in REGISTRY["pytorch"].variants if "float32" in v.dtypes]
    mlx_variants = [f"mlx {v.name}" for v in REGISTRY["mlx"].variants]
    assert both == [*mlx_variants, *(f"pytorch {name}" for name in torch_variants)]
    assert {"single-tensor", "foreach", "fused", "fused-default"} <= set(torch_variants)


def test_weight_decay_leaves_the_variants_that_can_express_it() -> None:
    names = _names(_trajectory("float64", weight_decay=0.01))
    assert {n.split()[0] for n in names} == {"pytorch", "keras", "mlx", "paddle", "tf_keras"}
    assert not any(n.startswith(("tf_keras legacy", "tf_keras raw_op")) for n in names)
    allowed = {c.name for c in REGISTRY.values() if c.capabilities.weight_decay}
    assert names == _expected("float64", (False, True), allowed, plain=False, needs="weight_decay")


def test_an_npz_file_gives_the_same_candidates(tmp_path: Path) -> None:
    tr = _trajectory("float16")
    path = tmp_path / "run.npz"
    np.savez(
        path,
        initial=tr.initial,
        grads=tr.grads,
        params=tr.params,
        lr=np.array(LR),
        momentum=np.array(MU),
        weight_decay=np.float64(0.0),
    )
    assert _names(load(path)) == _names(tr)


def _direct(
    name: str,
    options: dict[str, Any],
    p: Any,
    g: Any,
    s: Any,
    t: int,
    nesterov: bool,
    tr: Trajectory,
) -> tuple[Any, Any]:
    """The convention's own function, called with its own keyword names."""
    lr, mu = LR[t], MU[t]
    table: dict[str, dict[str, Any]] = {
        "pytorch": {
            "lr": lr, "momentum": mu, "nesterov": nesterov, "dampening": tr.dampening,
            "weight_decay": tr.weight_decay,
        },
        "keras": {
            "learning_rate": lr, "momentum": mu, "nesterov": nesterov,
            "weight_decay": tr.weight_decay or None,
        },
        "optax": {"learning_rate": lr, "momentum": mu, "nesterov": nesterov},
        "tensorflow": {"lr": lr, "momentum": mu, "use_nesterov": nesterov},
        "jax_example_libraries": {"step_size": lr, "mass": mu, "nesterov": nesterov},
        "mlx": {
            "learning_rate": lr, "momentum": mu, "nesterov": nesterov, "dampening": tr.dampening,
            "weight_decay": tr.weight_decay,
        },
        "paddle": {
            "learning_rate": lr, "momentum": mu, "use_nesterov": nesterov,
            "weight_decay": tr.weight_decay or None,
        },
        "sklearn": {"learning_rate": lr, "momentum": mu, "nesterov": nesterov},
        "tf_keras": {
            "learning_rate": lr, "momentum": mu, "nesterov": nesterov,
            "weight_decay": tr.weight_decay or None,
        },
    }  # fmt: skip
    # in its own argument order (tensorflow: var, accum, grad)
    return lookup(name).call(p, g, s, **table[name], **options)


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return bool(bitwise_equal(np.asarray(a), np.asarray(b)).all())


@pytest.mark.parametrize(("dampening", "weight_decay"), [(0.0, 0.0), (0.0, 0.01), (0.3, 0.01)])
def test_each_convention_candidate_replays_its_conventions_call(
    dampening: float, weight_decay: float
) -> None:
    tr = _trajectory("float16", dampening=dampening, weight_decay=weight_decay)
    by_name = {c.name: c for c in candidates(tr)}
    p = tr.initial
    checked, skipped = 0, 0
    for convention in REGISTRY.values():
        for variant in convention.variants:
            for nesterov, (label, extra) in itertools.product(
                (False, True), (("", {}), *convention.settings_for(variant, (9,), tr.dtype))
            ):
                tag = ", nesterov" if nesterov else ""
                name = f"{convention.name} {variant.name}{tag}{label}"
                if name not in by_name:
                    continue
                if nesterov and dampening:
                    skipped += 1
                    continue  # PyTorch refuses Nesterov with dampening; so does nagref
                cand = by_name[name]
                s0 = cand.initial_state(p)
                if convention.first_state == "none":
                    assert s0 is None
                else:  # zeros of the state's dtype (Optax's float32 trace)
                    state_dtype = convention.state_dtype(variant.options, tr.dtype)
                    assert _same(s0, np.zeros(p.shape, numpy_dtype(state_dtype)))
                x, s = p, s0
                for t in range(tr.steps):  # each step's own learning rate and momentum
                    with np.errstate(all="ignore"):
                        got = cand.step(x, tr.grads[t], s, t)
                        want = _direct(
                            convention.name,
                            {**variant.options, **extra},
                            x,
                            tr.grads[t],
                            s,
                            t,
                            nesterov,
                            tr,
                        )
                    assert _same(got[0], want[0]), name
                    assert _same(got[1], want[1]), name
                    x, s = got
                checked += 1
    conventions = [n for n in by_name if n.split()[0] in REGISTRY]
    assert checked + skipped == len(conventions)
    assert checked > 0


def test_the_plain_forms_replay_the_rules_and_formulations() -> None:
    tr = _trajectory("float64", nesterov=None)
    by_name: dict[str, Candidate] = {c.name: c for c in candidates(tr)}
    p, g = tr.initial, tr.grads[1]
    state = np.full_like(p, 0.25)
    new_p, same_state = by_name["nagref.sgd"].step(p, g, state, 1)
    assert _same(new_p, rules.sgd(p, g, lr=LR[1]))
    assert same_state is state  # plain SGD carries no state
    for t, mu_next in ((0, MU[1]), (2, MU[2])):  # past the last step, the last momentum
        got = by_name["formulations.bengio"].step(p, g, state, t)
        want = formulations.bengio(p, g, state, epsilon=LR[t], mu=MU[t], mu_next=mu_next)
        assert _same(got[0], want[0])
        assert _same(got[1], want[1])
    got = by_name["nagref.nag (lecture form)"].step(p, g, state, 2)
    assert _same(got[0], rules.nag(p, g, state, lr=LR[2], momentum=MU[2])[0])
    x_prev = by_name["formulations.polyak"].initial_state(p)
    assert x_prev is not p  # x_{-1} = x_0, as a copy
    assert _same(x_prev, p)
    got = by_name["formulations.polyak"].step(p, g, x_prev, 0)
    assert _same(got[0], formulations.polyak(p, g, x_prev, alpha=LR[0], beta=MU[0])[0])
