"""nagref.record.sklearn on real scikit-learn MLP fits: each audits to scikit-learn's update."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import require
from nagref.auditing import audit_model, open_model
from nagref.conventions.sklearn import learning_rate_at
from nagref.record import sklearn as record_sklearn

neural_network = require("sklearn.neural_network")
optimizers = require("sklearn.neural_network._stochastic_optimizers")

#: What the audit says of a float64 Nesterov fit, measured: Keras's look-ahead form is
#: scikit-learn's arithmetic too, where the learning rate stays a float64 number.
NESTEROV_64 = ["keras jax-callable-lr, nesterov", "sklearn update_params, nesterov",
               "tf_keras raw_op, nesterov"]  # fmt: skip
#: A float64 fit with plain momentum, measured: the lecture form and Sutskever's too.
MOMENTUM_64 = ["nagref.momentum (lecture form)", "formulations.sutskever_cm",
               "keras jax-callable-lr", "sklearn update_params", "tf_keras raw_op"]  # fmt: skip


def _data(dtype: str = "float64", n: int = 40) -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4))
    y = x @ rng.standard_normal(4) + 0.1 * rng.standard_normal(n)
    return x.astype(dtype), y.astype(dtype)


def _regressor(**extra: Any) -> Any:
    options = {"hidden_layer_sizes": (6, 5), "solver": "sgd", "batch_size": 16, "max_iter": 5,
               "learning_rate": "invscaling", "learning_rate_init": 0.05, "momentum": 0.9,
               "nesterovs_momentum": True, "random_state": 0}  # fmt: skip
    return neural_network.MLPRegressor(**(options | extra))


def _fit(est: Any, x: Any, y: Any, path: Path | None = None, **record: Any) -> list[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached
        if path is None:
            est.fit(x, y)
        else:
            with record_sklearn(est, path, quiet=True, **record):
                est.fit(x, y)
    return [a.copy() for a in est.coefs_ + est.intercepts_]


def _same(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(p.tobytes() == q.tobytes() for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_recorded_fit_keeps_its_bits_and_audits_to_scikit_learn(
    tmp_path: Path, dtype: str
) -> None:
    x, y = _data(dtype)
    plain = _fit(_regressor(), x, y)
    path = tmp_path / "mlp.trajectory"
    assert _same(_fit(_regressor(), x, y, path), plain)  # recording changed no bit
    m = open_model(path)
    assert (m.run["framework"], m.run["optimizer"]) == ("scikit-learn", "MLPRegressor")
    assert [t.name for t in m.tensors] == ["coefs_.0", "coefs_.1", "coefs_.2", "intercepts_.0",
                                           "intercepts_.1", "intercepts_.2"]  # fmt: skip
    assert {t.dtype for t in m.tensors} == {dtype}
    assert m.steps == 15  # 5 epochs of 3 mini-batches
    # the schedule's rate, as the optimizer computed it: invscaling by the samples seen
    lrs = [learning_rate_at("invscaling", learning_rate_init=0.05, time_step=(t // 3) * 40)
           for t in range(15)]  # fmt: skip
    assert list(m.groups[0].lr) == lrs
    assert m.groups[0].fixed["nesterov"] is True
    report = audit_model(path)
    assert report.exit_code == 0
    if dtype == "float64":
        assert list(report.bitwise) == NESTEROV_64
    else:  # float32: the Keras variants that round the rate to float32 as NumPy does too
        assert "sklearn update_params, nesterov" in report.bitwise
        assert all(n.startswith(("keras ", "tf_keras ", "sklearn ")) for n in report.bitwise)
    assert report.verdict.startswith(f"VERDICT: indistinguishable: {len(report.bitwise)} ")


def test_partial_fit_of_a_classifier_with_the_adaptive_schedule(tmp_path: Path) -> None:
    x, _ = _data(n=60)
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 0.5)
    runs = []
    for path in (None, tmp_path / "clf.trajectory"):
        est = neural_network.MLPClassifier(
            hidden_layer_sizes=(7,), solver="sgd", batch_size=20, learning_rate="adaptive",
            learning_rate_init=0.1, momentum=0.8, nesterovs_momentum=False,
            n_iter_no_change=2, tol=1e-1, random_state=0,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path is None:
                for _ in range(12):
                    est.partial_fit(x, y, classes=[0, 1, 2])
            else:
                with record_sklearn(est, path, quiet=True):
                    for _ in range(12):  # one optimizer, continued
                        est.partial_fit(x, y, classes=[0, 1, 2])
        runs.append(est.coefs_ + est.intercepts_)
    assert _same(runs[0], runs[1])
    m = open_model(tmp_path / "clf.trajectory")
    assert m.steps == 36
    assert sorted(set(m.groups[0].lr)) == [0.004, 0.02, 0.1]  # divided by 5, twice
    assert m.groups[0].fixed["nesterov"] is False
    assert list(audit_model(m.source).bitwise) == MOMENTUM_64


def test_steps_and_tensors_choose_what_is_recorded(tmp_path: Path, capsys: Any) -> None:
    x, y = _data()
    path = tmp_path / "r.trajectory"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with record_sklearn(est := _regressor(), path, steps=4, tensors={"coefs_.1"}):
            est.fit(x, y)
    said = capsys.readouterr().out
    assert said.startswith("nagref: recorded 4 steps of 1 tensors (240 gradient and parameter")
    m = open_model(path)
    assert (m.steps, [t.name for t in m.tensors]) == (4, ["coefs_.1"])
    assert "sklearn update_params, nesterov" in audit_model(path).bitwise


def _fit_another_and_fail(other: Any, x: Any, y: Any) -> None:
    assert "update_params" in vars(optimizers.SGDOptimizer)  # the wrapper, for the block
    _fit(other, x, y)  # another estimator's fit goes through it, unrecorded
    raise RuntimeError("the user's own error")


def test_the_patch_is_scoped_to_the_block_and_to_the_estimator(tmp_path: Path) -> None:
    x, y = _data()
    other = _regressor(random_state=1)
    with (
        pytest.raises(RuntimeError, match="user's own"),
        record_sklearn(_regressor(), tmp_path / "r.trajectory", quiet=True),
    ):
        _fit_another_and_fail(other, x, y)
    assert "update_params" not in vars(optimizers.SGDOptimizer)  # BaseOptimizer's again
    assert _same(_fit(_regressor(random_state=1), x, y), other.coefs_ + other.intercepts_)


def test_bad_input_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.trajectory"
    linear = require("sklearn.linear_model")
    with (
        pytest.raises(TypeError, match="must be an MLPClassifier or MLPRegressor, got SGDRegr"),
        record_sklearn(linear.SGDRegressor(), path),
    ):
        pass
    with (
        pytest.raises(ValueError, match="estimator: solver='adam' is not recorded"),
        record_sklearn(_regressor(solver="adam"), path),
    ):
        pass
    with (
        pytest.raises(ValueError, match="steps must be None or an int >= 1, got 0"),
        record_sklearn(_regressor(), path, steps=0),
    ):
        pass
    with record_sklearn(est := _regressor(), path, quiet=True):
        with (
            pytest.raises(ValueError, match="being recorded already"),
            record_sklearn(est, tmp_path / "twice.trajectory"),
        ):
            pass
        assert "update_params" in vars(optimizers.SGDOptimizer)  # the outer one's, kept
    assert not (tmp_path / "twice.trajectory").exists()
    x, y = _data("float32")
    with pytest.raises(ValueError, match="float64 gradients for these float32 parameters"):
        _fit(_regressor(), x, y.astype("float64"), path)
    assert not path.exists()  # refused at the first step: nothing is left behind
    with pytest.raises(ValueError, match="no tensor was selected"):
        _fit(_regressor(), x, y, path, tensors={"coefs_.9"})
    assert not path.exists()


def test_a_second_fit_or_an_optimizer_that_stepped_is_refused(tmp_path: Path) -> None:
    x, y = _data()
    est = _regressor()
    with record_sklearn(est, tmp_path / "a.trajectory", quiet=True):
        _fit(est, x, y)
        with pytest.raises(ValueError, match="a second fit"):
            _fit(est, x, y)
    assert open_model(tmp_path / "a.trajectory").steps == 15  # the first fit's, whole
    est.partial_fit(x, y)  # continues the second fit's optimizer: its velocities move
    with (
        pytest.raises(ValueError, match="stepped before the recording began"),
        record_sklearn(est, tmp_path / "b.trajectory", quiet=True),
    ):
        est.partial_fit(x, y)
    assert not (tmp_path / "b.trajectory").exists()
