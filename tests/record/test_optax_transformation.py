"""nagref.record.optax: a recorded Optax run, eager and jitted, audits to Optax's convention,
and recording leaves a jitted step's bits alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import require
from nagref.auditing import audit_model, open_model
from nagref.record import optax as record_optax

jax = require("jax")
optax = require("optax")
jnp = jax.numpy


def _loss(p: Any, x: Any, y: Any) -> Any:
    return jnp.mean((jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] - y) ** 2)


def _params() -> tuple[Any, Any, Any]:
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    params = {"w1": jax.random.normal(k1, (3, 8)), "b1": jnp.zeros(8),
              "w2": jax.random.normal(k2, (8, 1))}  # fmt: skip
    x = jax.random.normal(k3, (32, 3))
    return params, x, jnp.sin(x[:, :1])


def _train(tx: Any, *, jit: bool, steps: int = 12) -> Any:
    params, x, y = _params()
    state = tx.init(params)

    def step(p: Any, state: Any) -> Any:
        updates, state = tx.update(jax.grad(_loss)(p, x, y), state, p)
        return optax.apply_updates(p, updates), state

    run = jax.jit(step) if jit else step
    for _ in range(steps):
        params, state = run(params, state)
    return params


SCHEDULE = optax.exponential_decay(0.1, 4, 0.5)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_a_scheduled_run_audits_to_optax_and_keeps_its_bits(tmp_path: Path, jit: bool) -> None:
    path = tmp_path / "run.trajectory"
    plain = _train(optax.sgd(SCHEDULE, momentum=0.9, nesterov=True), jit=jit)
    tx = record_optax(optax.sgd(SCHEDULE, momentum=0.9, nesterov=True), path,
                      learning_rate=SCHEDULE, momentum=0.9, nesterov=True, quiet=True)  # fmt: skip
    recorded = _train(tx, jit=jit)
    tx.close(recorded)
    for name in plain:  # the recording changed nothing the step computes
        assert np.asarray(plain[name]).tobytes() == np.asarray(recorded[name]).tobytes()
    m = open_model(path)
    assert ([t.name for t in m.tensors], m.steps, m.complete) == (["b1", "w1", "w2"], 12, True)
    report = audit_model(path)
    mode = "jit" if jit else "eager"
    assert f"optax {mode}, nesterov" in report.bitwise, report.bitwise
    other = "eager" if jit else "jit"
    assert f"optax {other}, nesterov" not in report.bitwise


def test_steps_tensors_and_misuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.trajectory"
    tx = record_optax(optax.sgd(0.05, momentum=0.5), path, learning_rate=0.05, momentum=0.5,
                      steps=3, tensors={"w2"})  # fmt: skip
    _train(tx, jit=True, steps=5)
    assert capsys.readouterr().out.startswith("nagref: recorded 3 steps of 1 tensors")
    m = open_model(path)
    assert ([t.name for t in m.tensors], m.steps, m.complete) == (["w2"], 3, True)
    assert "optax jit" in audit_model(path).bitwise
    bare = record_optax(optax.sgd(0.05), tmp_path / "b.trajectory", learning_rate=0.05)
    params, _, _ = _params()
    with pytest.raises(ValueError, match="call init"):
        bare.update(params, None, params)
    state = bare.init(params)
    with pytest.raises(ValueError, match="the recording needs params"):
        bare.update(params, state)
    with pytest.raises(ValueError, match="init\\(\\) was called twice"):
        bare.init(params)
    bare.close(params)  # no step was recorded: the file says so when read
    with pytest.raises(ValueError, match="no complete step was recorded"):
        open_model(tmp_path / "b.trajectory")
