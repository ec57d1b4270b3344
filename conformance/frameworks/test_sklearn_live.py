"""scikit-learn's MLP SGD solver, live: its optimizer, its schedules, and real training runs.

The live table (test_live.py) drives ``SGDOptimizer.update_params``; here:
the edge cases its random cases do not draw (momentum 0 under Nesterov,
signed zeros), :func:`~nagref.conventions.sklearn.learning_rate_at` against
the optimizer's own ``iteration_ends`` and ``trigger_stopping``, and a real
``MLPRegressor`` trained step by step, recorded without patching anything
(public ``partial_fit``, ``coefs_`` and ``intercepts_``; the gradient
recomputed from the data with public attributes), whose every step nagref
reproduces bit for bit. A subclass that records ``_backprop``'s results
(overriding that private method, patching nothing) covers ``fit`` with
mini-batches and shuffling.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nagref
from conformance import require
from nagref.conventions import sklearn as convention

require("sklearn")
from scipy.special import expit  # type: ignore[import-untyped]  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.neural_network._stochastic_optimizers import SGDOptimizer  # noqa: E402

Arrays = list[np.ndarray]


def _same(a: Arrays, b: Arrays) -> bool:
    return all(x.dtype == y.dtype and x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0, 0.9])
def test_signed_zeros_and_momentum_zero_against_the_optimizer(
    dtype: str, nesterov: bool, momentum: float
) -> None:
    """The velocity is kept at μ = 0, so -0 + (0·v - η·(+0)) is +0 (Keras's θ - ηg keeps -0)."""
    specials = [0.0, -0.0, 1e-45, -1e-45, 1e-310, np.inf, -np.inf, np.nan, 1.0, -2.5]
    grid = np.array(np.meshgrid(specials, specials, specials), dtype=dtype).reshape(3, -1)
    param, grad, grad2 = (row.copy() for row in grid)
    ours_p, ours_v = param.copy(), None
    optimizer = SGDOptimizer([param], learning_rate_init=0.1, momentum=momentum, nesterov=nesterov)
    with np.errstate(all="ignore"):
        for g in (grad, grad2):
            optimizer.update_params([param], [g])
            ours_p, ours_v = convention.update_params(
                ours_p, g, ours_v, learning_rate=0.1, momentum=momentum, nesterov=nesterov,
            )  # fmt: skip
            assert _same([ours_p, ours_v], [param, optimizer.velocities[0]])


def test_learning_rate_at_is_the_optimizers_own_float() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        init = float(10 ** rng.uniform(-5, 0))
        power_t = float(rng.choice([0.5, 0.25, 1.0, rng.uniform(0, 2)]))
        n = int(rng.integers(1, 500))
        optimizer = SGDOptimizer([np.zeros(1)], init, "invscaling", power_t=power_t)
        assert optimizer.learning_rate == convention.learning_rate_at(
            "invscaling", learning_rate_init=init, power_t=power_t
        )
        for epoch in range(1, 30):  # _fit_stochastic: iteration_ends(t_) after each epoch
            optimizer.iteration_ends(epoch * n)
            want = convention.learning_rate_at(
                "invscaling", learning_rate_init=init, power_t=power_t, time_step=epoch * n
            )
            assert type(want) is float
            assert want.hex() == optimizer.learning_rate.hex()
        adaptive = SGDOptimizer([np.zeros(1)], init, "adaptive")
        constant = SGDOptimizer([np.zeros(1)], init, "constant")
        decays = 0
        while True:
            constant.iteration_ends(decays * n)
            assert constant.learning_rate == convention.learning_rate_at(
                "constant", learning_rate_init=init
            )
            adaptive.iteration_ends(decays * n)  # changes nothing
            want = convention.learning_rate_at("adaptive", learning_rate_init=init, decays=decays)
            assert want.hex() == adaptive.learning_rate.hex()
            if adaptive.trigger_stopping("", verbose=False):  # at <= 1e-6 it stops instead
                assert want <= 1e-6
                break
            decays += 1
        assert constant.trigger_stopping("", verbose=False)  # only adaptive decays


# A user's recording of a real MLPRegressor without patching: each partial_fit on all
# n_samples (batch_size >= n_samples, shuffle=False) is exactly one SGD step, and the
# parameters are coefs_ + intercepts_; the first parameters and each step's gradient
# are recomputed from public attributes, in scikit-learn's own operation order.


def initial_params(est: MLPRegressor, n_features: int, n_outputs: int, dtype: Any) -> Arrays:
    """The parameters before the first step: Glorot et al.'s uniform draws that
    ``MLPRegressor`` makes from ``random_state`` (an int), coefs then intercepts per layer."""
    random_state = np.random.RandomState(est.random_state)
    units = [n_features, *est.hidden_layer_sizes, n_outputs]
    coefs, intercepts = [], []
    for fan_in, fan_out in itertools.pairwise(units):
        bound = np.sqrt((2.0 if est.activation == "logistic" else 6.0) / (fan_in + fan_out))
        coefs.append(random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
        intercepts.append(random_state.uniform(-bound, bound, fan_out).astype(dtype))
    return coefs + intercepts


#: scikit-learn's hidden activations (``neural_network/_base.py``), in place
_HIDDEN = {
    "relu": lambda a: np.maximum(a, 0, out=a),
    "tanh": lambda a: np.tanh(a, out=a),
    "logistic": lambda a: expit(a, out=a),
    "identity": lambda a: a,
}


def gradients(est: MLPRegressor, params: Arrays, x: np.ndarray, y: np.ndarray) -> Arrays:
    """The squared-error gradient as the regressor's backpropagation computes it (dense X,
    no sample weights, ``est.activation`` in relu, tanh, logistic, identity)."""
    layers = len(params) // 2
    coefs, intercepts = params[:layers], params[layers:]
    activations = [x]
    for i in range(layers):
        z = activations[-1] @ coefs[i]
        z += intercepts[i]
        if i < layers - 1:
            _HIDDEN[est.activation](z)
        activations.append(z)
    delta = activations[-1] - y.reshape(-1, 1)
    n = x.shape[0]
    coef_grads: Arrays = [np.empty(0)] * layers
    intercept_grads: Arrays = [np.empty(0)] * layers
    for i in range(layers - 1, -1, -1):
        coef_grads[i] = activations[i].T @ delta
        coef_grads[i] += est.alpha * coefs[i]
        coef_grads[i] /= n
        intercept_grads[i] = np.sum(delta, axis=0) / n
        if i:
            delta = delta @ coefs[i].T
            z = activations[i]
            if est.activation == "relu":
                delta[z == 0] = 0
            elif est.activation == "tanh":
                delta *= 1 - z**2
            elif est.activation == "logistic":
                delta *= z
                delta *= 1 - z
    return coef_grads + intercept_grads


def _data(dtype: str, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, 4)).astype(dtype)
    y = (x @ rng.standard_normal(4) + 0.1 * rng.standard_normal(n)).astype(dtype)  # x's dtype
    return x, y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize(("schedule", "activation"), [("constant", "relu"),
                                                     ("invscaling", "tanh"),
                                                     ("constant", "logistic")])  # fmt: skip
def test_a_real_mlp_regressor_recorded_with_public_api_replays_bitwise(
    dtype: str, nesterov: bool, schedule: str, activation: str
) -> None:
    x, y = _data(dtype)
    n = x.shape[0]
    est = MLPRegressor(
        hidden_layer_sizes=(6, 3), activation=activation, solver="sgd", batch_size=n,
        shuffle=False, learning_rate=schedule, learning_rate_init=0.05, power_t=0.5,
        momentum=0.9, nesterovs_momentum=nesterov, alpha=1e-3, random_state=0,
    )  # fmt: skip
    before = initial_params(est, x.shape[1], 1, x.dtype)
    ours, velocities = before, None
    for step in range(12):
        grads = gradients(est, before, x, y)  # the recording: the gradient at `before`
        est.partial_fit(x, y)  # one SGD step
        after = [a.copy() for a in est.coefs_ + est.intercepts_]
        lr = convention.learning_rate_at(
            schedule, learning_rate_init=0.05, power_t=0.5, time_step=step * n
        )
        ours, velocities = convention.update_params(
            ours, grads, velocities, learning_rate=lr, momentum=0.9, nesterov=nesterov
        )
        assert _same(ours, after), f"step {step + 1}"
        assert not _same(before, after)
        before = after
    assert est.t_ == 12 * n  # partial_fit: one epoch per call
    assert est.n_iter_ == 1


def test_float64_gradients_of_float32_parameters_against_the_optimizer() -> None:
    """A float32 X with a float64 y: float64 gradients, so float64 velocities (grads_dtype)."""
    rng = np.random.default_rng(99)
    pool = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-310, np.inf, -np.inf, np.nan])
    for case in range(200):
        size = int(rng.integers(1, 100))
        mu = float(rng.choice([0.0, 0.9, rng.uniform(0, 1)]))
        nesterov = bool(case % 2)
        param = rng.standard_normal(size).astype(np.float32)
        optimizer = SGDOptimizer([param], momentum=mu, nesterov=nesterov)
        ours, velocities = param.copy(), None
        for _ in range(3):
            lr = float(10 ** rng.uniform(-4, -0.3))
            g = rng.standard_normal(size) * 10 ** rng.uniform(-3, 2)
            where = rng.random(size) < (0.3 if case % 3 == 0 else 0.0)
            g[where] = rng.choice(pool, int(where.sum()))
            optimizer.learning_rate = lr
            with np.errstate(all="ignore"):
                optimizer.update_params([param], [g])
                ours, velocities = convention.update_params(
                    ours, g, velocities, learning_rate=lr, momentum=mu, nesterov=nesterov,
                    grads_dtype="float64",
                )  # fmt: skip
            assert _same([ours, velocities], [param, optimizer.velocities[0]])


def test_a_float32_mlp_regressor_with_a_float64_y_replays_with_float64_gradients() -> None:
    x, y = _data("float32")
    y = y.astype(np.float64)
    n = x.shape[0]
    est = MLPRegressor(
        hidden_layer_sizes=(6,), solver="sgd", batch_size=n, shuffle=False,
        learning_rate_init=0.05, momentum=0.9, nesterovs_momentum=True, random_state=0,
    )  # fmt: skip
    before = initial_params(est, x.shape[1], 1, x.dtype)
    ours, velocities = before, None
    narrow: Arrays = before
    narrow_velocities: Arrays | None = None
    for step in range(8):
        grads = gradients(est, before, x, y)
        assert all(g.dtype == np.float64 for g in grads)
        est.partial_fit(x, y)
        after = [a.copy() for a in est.coefs_ + est.intercepts_]
        assert all(a.dtype == np.float32 for a in after)
        keywords: dict[str, Any] = {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}
        ours, velocities = convention.update_params(
            ours, grads, velocities, grads_dtype="float64", **keywords
        )
        assert _same(ours, after), f"step {step + 1}"
        narrow, narrow_velocities = convention.update_params(
            narrow, [g.astype(np.float32) for g in grads], narrow_velocities, **keywords
        )
        before = after
    assert not _same(narrow, ours)  # the float32 model drifts off


def test_the_audit_names_scikit_learn_on_a_recorded_mlp_regressor(tmp_path: Path) -> None:
    """The recipe of docs/audit.md: the layers concatenated into one vector (the update is
    elementwise), one partial_fit per step, the gradients recomputed, saved as an .npz."""
    x, y = _data("float32")
    n = x.shape[0]
    est = MLPRegressor(
        hidden_layer_sizes=(6,), solver="sgd", batch_size=n, shuffle=False,
        learning_rate="invscaling", learning_rate_init=0.05, momentum=0.9,
        nesterovs_momentum=True, random_state=0,
    )  # fmt: skip
    before = initial_params(est, x.shape[1], 1, x.dtype)
    initial = np.concatenate([a.ravel() for a in before])
    grads, params, lrs = [], [], []
    for step in range(10):
        grads.append(np.concatenate([g.ravel() for g in gradients(est, before, x, y)]))
        est.partial_fit(x, y)
        before = [a.copy() for a in est.coefs_ + est.intercepts_]
        params.append(np.concatenate([a.ravel() for a in before]))
        lrs.append(
            convention.learning_rate_at(
                est.learning_rate,
                learning_rate_init=est.learning_rate_init,
                power_t=est.power_t,
                time_step=step * n,
            )
        )
    path = tmp_path / "mlp.npz"
    np.savez(path, initial=initial, grads=np.stack(grads), params=np.stack(params),
             lr=np.array(lrs), momentum=est.momentum)  # fmt: skip
    report = nagref.audit(path)
    assert "sklearn update_params, nesterov" in report.bitwise
    assert "sklearn update_params" not in report.bitwise  # the plain form diverges


class _Recording:
    """Records each step's parameters and gradient by overriding the private ``_backprop``
    (a subclass: scikit-learn is not patched, but the method's name is not public API)."""

    def _backprop(self, *args: Any) -> Any:
        est: Any = self
        before = [p.copy() for p in est.coefs_ + est.intercepts_]
        loss, coef_grads, intercept_grads = super()._backprop(*args)  # type: ignore[misc]
        est.__dict__.setdefault("record_", []).append(
            (before, [g.copy() for g in coef_grads + intercept_grads])
        )
        return loss, coef_grads, intercept_grads


class _RecordingMLPRegressor(_Recording, MLPRegressor):  # type: ignore[misc]
    pass


class _RecordingMLPClassifier(_Recording, MLPClassifier):  # type: ignore[misc]
    pass


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("estimator", [_RecordingMLPRegressor, _RecordingMLPClassifier])
def test_a_subclass_records_fit_with_mini_batches_and_shuffling(
    dtype: str, estimator: type[Any]
) -> None:
    x, y = _data(dtype, n=20)
    if estimator is _RecordingMLPClassifier:
        y = np.digitize(y, np.quantile(y, [0.33, 0.66]))  # three classes: softmax
    est = estimator(
        hidden_layer_sizes=(5,), solver="sgd", batch_size=6, learning_rate="invscaling",
        learning_rate_init=0.02, momentum=0.8, nesterovs_momentum=True, max_iter=4,
        random_state=1,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached
        est.fit(x, y)
    record = est.record_
    per_epoch = 4  # ceil(20 / 6) batches
    assert len(record) == 4 * per_epoch
    ours, velocities = record[0][0], None
    for step, (before, grads) in enumerate(record):
        assert _same(ours, before), f"before step {step + 1}"
        assert all(a.dtype == np.dtype(dtype) for a in before + grads)
        lr = convention.learning_rate_at(
            "invscaling", learning_rate_init=0.02, time_step=(step // per_epoch) * 20
        )
        ours, velocities = convention.update_params(
            before, grads, velocities, learning_rate=lr, momentum=0.8, nesterov=True
        )
    assert _same(ours, est.coefs_ + est.intercepts_)
