"""nagref.live.drivers.sklearn: scikit-learn's own SGDOptimizer, run on a case (no worker)."""

from __future__ import annotations

import numpy as np

from conformance import require
from nagref._compare import bitwise_equal
from nagref.live import Spec, run_nagref
from nagref.live.drivers import sklearn as driver
from nagref.live.worker import _missing, framework_modules

require("sklearn")


def _spec(**changes: object) -> Spec:
    base: dict[str, object] = {
        "convention": "sklearn", "variant": "update_params", "dtype": "float32",
        "shape": (17,), "seed": 5, "lr": (0.1, 0.05, 0.2), "momentum": 0.9,
        "nesterov": True, "special": 0.3,
    }  # fmt: skip
    return Spec(**{**base, **changes})  # type: ignore[arg-type]


def test_the_driver_runs_scikit_learns_optimizer_step_by_step() -> None:
    version, run = driver.start(None)
    assert version.startswith("scikit-learn 1.")
    assert f"numpy {np.__version__}" in version
    for spec in (_spec(), _spec(dtype="float64", nesterov=False), _spec(shape=(), momentum=None)):
        live = run(spec)
        assert len(live) == spec.steps
        with np.errstate(all="ignore"):
            ours = run_nagref(spec)
        for (lp, lv), (op, ov) in zip(live, ours, strict=True):
            assert lv is not None
            assert ov is not None
            assert lp.dtype.name == lv.dtype.name == spec.dtype  # velocities: float32 stays
            assert lp.shape == spec.shape
            assert bitwise_equal(lp, op).all()
            assert bitwise_equal(lv, ov).all()
    _, first_v = run(_spec(lr=(0.5,), special=0.0, shape=(3,)))[0]
    assert first_v is not None
    assert first_v.tobytes() != np.zeros(3, np.float32).tobytes()  # a step was taken


def test_scikit_learn_missing_is_reported_as_missing() -> None:
    requirement = "scikit-learn"
    assert framework_modules(requirement) == {"sklearn"}
    assert _missing(ModuleNotFoundError("no sklearn", name="sklearn"), requirement) is None
