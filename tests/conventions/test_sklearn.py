"""nagref.conventions.sklearn: its recurrence, schedules, checks and purity (live: conformance/)."""

from __future__ import annotations

import numpy as np
import pytest

from nagref.conventions import lookup
from nagref.conventions import sklearn as convention


def _f32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32)


@pytest.mark.parametrize("nesterov", [False, True])
def test_float32_rounds_every_operation_with_the_scalars_rounded_once(nesterov: bool) -> None:
    """v' = fl(fl(μ·v) - fl(η·g)); θ' = fl(θ + fl(fl(μ·v') - fl(η·g))) or fl(θ + v'), in float32
    with μ and η rounded once to float32 (NumPy 2's weak Python scalars); a product of two
    float32 numbers is exact in float64, so each float64 operation rounded to float32 is the
    float32 operation."""
    rng = np.random.default_rng(0)
    p, v, g = (rng.standard_normal(5000).astype(np.float32) for _ in range(3))
    lr, mu = 0.0123, 0.9
    new_p, new_v = convention.update_params(
        p, g, v, learning_rate=lr, momentum=mu, nesterov=nesterov
    )
    m, e = float(np.float32(mu)), float(np.float32(lr))
    d = np.float64
    want_v = _f32(_f32(m * v.astype(d)).astype(d) - _f32(e * g.astype(d)).astype(d))
    u = want_v
    if nesterov:
        u = _f32(_f32(m * want_v.astype(d)).astype(d) - _f32(e * g.astype(d)).astype(d))
    want_p = _f32(p.astype(d) + u.astype(d))
    assert new_v.tobytes() == want_v.tobytes()
    assert new_p.tobytes() == want_p.tobytes()
    # the momentum and learning rate unrounded (float64 products) give other bits
    unrounded = _f32(mu * v.astype(d) - lr * g.astype(d))
    assert unrounded.tobytes() != want_v.tobytes()


def test_the_first_step_starts_from_zeros_and_nesterov_applies_the_momentum_twice() -> None:
    p, g = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    new_p, new_v = convention.update_params(p, g, None, learning_rate=0.1, momentum=0.5)
    assert new_v.tolist() == [0.0 - 0.1 * 0.5, 0.0 - 0.1 * 4.0]
    assert new_p.tolist() == (p + (0.5 * new_v - 0.1 * g)).tolist()
    plain_p, plain_v = convention.update_params(
        p, g, None, learning_rate=0.1, momentum=0.5, nesterov=False
    )
    assert plain_v.tolist() == new_v.tolist()
    assert plain_p.tolist() == (p + new_v).tolist()


def test_momentum_zero_keeps_the_velocity_and_the_sign_of_zero() -> None:
    """θ + (0·v - η·(+0)) is +0 for θ = -0, where θ - η·g (Keras at μ = 0) keeps -0."""
    p, g = np.array([-0.0], np.float32), np.array([0.0], np.float32)
    new_p, new_v = convention.update_params(p, g, None, learning_rate=0.1, momentum=0.0)
    assert np.signbit(p[0])
    assert not np.signbit(new_p[0])
    assert new_v.tolist() == [0.0]
    keras_p, _ = lookup("keras").function(
        p, g, None, learning_rate=0.1, momentum=0.0, backend="numpy"
    )
    assert np.signbit(keras_p[0])


@pytest.mark.parametrize("nesterov", [False, True])
def test_float64_gradients_of_float32_parameters_promote_the_update(nesterov: bool) -> None:
    """grads_dtype="float64": v' = fl64(fl64(μ·v) - fl64(η·g)) with η and μ unrounded, and
    θ' = fl32(fl64(θ + u)): NumPy's float64 arithmetic, then ``param += update``."""
    rng = np.random.default_rng(3)
    p = rng.standard_normal(3000).astype(np.float32)
    v, g = rng.standard_normal(3000), rng.standard_normal(3000)
    lr, mu = 0.0123, 0.9
    new_p, new_v = map(
        np.asarray,
        convention.update_params(
            p, g, v, learning_rate=lr, momentum=mu, nesterov=nesterov, grads_dtype="float64"
        ),
    )
    want_v = mu * v - lr * g
    u = mu * want_v - lr * g if nesterov else want_v
    want_p = (p.astype(np.float64) + u).astype(np.float32)
    assert new_v.dtype == np.float64
    assert new_v.tobytes() == want_v.tobytes()
    assert new_p.tobytes() == want_p.tobytes()
    _, first_v = map(
        np.asarray,
        convention.update_params(
            p, g, None, learning_rate=lr, momentum=mu, nesterov=nesterov, grads_dtype="float64"
        ),
    )
    assert first_v.dtype == np.float64
    assert first_v.tobytes() == (0.0 - lr * g).tobytes()
    with pytest.raises(ValueError, match="grads_dtype must be None or 'float64', got"):
        convention.update_params(p, g, v, learning_rate=lr, grads_dtype="float16")
    with pytest.raises((TypeError, ValueError), match="velocities"):
        convention.update_params(
            p, g, v.astype(np.float32), learning_rate=lr, grads_dtype="float64"
        )


def test_pytrees_out_and_purity() -> None:
    rng = np.random.default_rng(2)
    params = [rng.standard_normal((3, 2)), rng.standard_normal(2)]
    grads = [rng.standard_normal((3, 2)), rng.standard_normal(2)]
    velocities = [rng.standard_normal((3, 2)), rng.standard_normal(2)]
    kept = [a.copy() for a in params + velocities]
    new_p, new_v = convention.update_params(params, grads, velocities, learning_rate=0.01)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(params + velocities, kept, strict=True))
    convention.update_params(
        params, grads, velocities, learning_rate=0.01, out=(params, velocities)
    )  # in place, as param += update
    assert all(a.tobytes() == b.tobytes() for a, b in zip(params, new_p, strict=True))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(velocities, new_v, strict=True))


def test_learning_rate_at_in_scikit_learns_operation_order() -> None:
    at = convention.learning_rate_at
    assert at("constant", learning_rate_init=1) == 1.0
    assert type(at("constant", learning_rate_init=1)) is float
    assert at("invscaling", learning_rate_init=0.1, power_t=0.5, time_step=0) == 0.1
    assert at("invscaling", learning_rate_init=0.1, time_step=300) == 0.1 / 301**0.5
    assert at("invscaling", learning_rate_init=0.3, power_t=2, time_step=9) == 0.3 / 100
    # adaptive: divided by 5.0 once per decay, not by 5**k (other bits)
    rate = 0.001
    for _ in range(7):
        rate /= 5.0
    assert at("adaptive", learning_rate_init=0.001, decays=7) == rate != 0.001 / 5.0**7


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        ({"lr_schedule": "huber"}, ValueError, "lr_schedule must be one of constant, "),
        ({"lr_schedule": "constant", "decays": 2}, ValueError, "only the adaptive schedule"),
        ({"lr_schedule": "invscaling", "time_step": -1}, ValueError, "time_step must be"),
        ({"lr_schedule": "adaptive", "decays": 1.0}, ValueError, "decays must be an int"),
        ({"lr_schedule": "constant", "learning_rate_init": np.float64(0.1)}, TypeError,
         "learning_rate_init must be a Python int or float"),
    ],
)  # fmt: skip
def test_learning_rate_at_refuses_bad_input(
    keywords: dict[str, object], error: type[Exception], message: str
) -> None:
    arguments = {"learning_rate_init": 0.1, **keywords}
    with pytest.raises(error, match=message):
        convention.learning_rate_at(**arguments)  # type: ignore[arg-type]


def test_update_params_refuses_what_scikit_learn_does_not_run() -> None:
    x16 = np.ones(3, np.float16)
    with pytest.raises(ValueError, match=r"trains in float32 or float64 .* not float16"):
        convention.update_params(x16, x16, None, learning_rate=0.1)
    x = np.ones(3, np.float32)
    with pytest.raises(TypeError, match=r"momentum must be a Python int or float, got .*NumPy"):
        convention.update_params(x, x, None, learning_rate=0.1, momentum=np.float64(0.9))
    with pytest.raises(TypeError, match=r"optimizer's current rate.*learning_rate_at\("):
        convention.update_params(x, x, None, learning_rate="constant")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nesterov must be a bool, got int 1"):
        convention.update_params(x, x, None, learning_rate=0.1, nesterov=1)  # type: ignore[arg-type]


def test_the_registry_record() -> None:
    record = lookup("sklearn")
    assert record.function is convention.update_params
    assert [v.name for v in record.variants] == ["update_params"]
    assert record.variants[0].dtypes == ("float32", "float64")
    assert (record.state, record.first_state, record.stores) == ("velocities", "zeros", "v")
