r"""scikit-learn's ``SGDOptimizer.update_params`` (``MLPClassifier`` / ``MLPRegressor``,
``solver="sgd"``), bit for bit (scikit-learn 1.9).

The recurrence (``sklearn/neural_network/_stochastic_optimizers.py``,
``SGDOptimizer._get_updates``; the velocities hold lr-scaled steps, so lr
sits inside them, and start at ``np.zeros_like(param)``):

.. math::
    v_t = \mu v_{t-1} - \eta_t g_t,\qquad
    \theta_t = \theta_{t-1} + (\mu v_t - \eta_t g_t) \text{ (nesterov) or }
    \theta_{t-1} + v_t

written ``momentum * velocity - learning_rate * grad`` and ``param +=
update``: Nesterov applies the momentum twice, to the old velocity and to the
new one (Bengio et al.'s (2012) look-ahead form, Keras's too), and the
velocity is kept even when μ = 0. Every operation is one NumPy ufunc, so each
rounds on its own in the parameters' dtype (float32 or float64; NumPy does
not contract ``a*b - c*d``), and nothing is flushed. ``momentum`` and the
learning rate are Python floats: NumPy 2 treats them as weak scalars and
rounds them once to float32 for float32 arrays (NEP 50). Measured against
scikit-learn 1.9.1 on NumPy 2.4.6: 0 differing elements of 358,746 float32
and 348,618 float64; with the scalars kept in float64 64,383 float32
elements differ, with ``a*b - c*d`` contracted 17,473.

The learning rate η_t is a Python float that ``_fit_stochastic`` changes
between epochs (:func:`learning_rate_at` gives it bit for bit): ``constant``
keeps ``float(learning_rate_init)``; ``invscaling`` sets
``float(learning_rate_init) / (t + 1) ** power_t`` after each epoch, t being
the samples seen so far (the estimator's ``t_``); ``adaptive`` divides it by
5.0 when ``n_iter_no_change`` epochs pass without improvement.

The names are ``SGDOptimizer``'s own: its ``learning_rate`` attribute (the
current rate; the estimators' ``learning_rate`` names the schedule, here
``lr_schedule``), ``momentum``, ``nesterov`` (the estimators'
``nesterovs_momentum``) and ``velocities``. scikit-learn trains in the dtype
of ``X``: float64, or float32 for float32 ``X``; a float64 ``y`` then makes
the gradients and velocities float64 (``grads_dtype="float64"``: measured,
0 of 886,180 elements differ). It has no float16 or bfloat16 path, and this
function refuses them.
"""

from __future__ import annotations

import numbers
from dataclasses import replace
from typing import Any, TypeVar

from .._checks import describe
from .._engine.ir import COMPUTE, Hyper, Program, Rounding
from .._typing import ArrayTree
from ._common import ZERO, donated, from_zero, run
from ._recipes import velocity_lr_inside
from ._registry import Capabilities, Convention, Hypers, Variant

__all__ = ["CONVENTION", "DTYPES", "SCHEDULES", "learning_rate_at", "update_params"]

T = TypeVar("T", bound=ArrayTree)

#: The dtypes scikit-learn's MLP trains in (``check_X_y(..., dtype=(np.float64, np.float32))``).
DTYPES = ("float32", "float64")
#: ``MLPClassifier`` / ``MLPRegressor``'s ``learning_rate`` schedules.
SCHEDULES = ("constant", "invscaling", "adaptive")

#: One NumPy ufunc per operation: each rounds in the arrays' dtype, nothing contracted.
_ROUNDING = Rounding(contract=False)

#: ``_get_updates``' own expressions, by the register each instruction writes.
_NOTES = {
    "a": "momentum * velocity",
    "b": "learning_rate * grad",
    "v": "velocities = momentum * velocity - learning_rate * grad",
    "u": "updates = momentum * velocity - learning_rate * grad, with the new velocity",
}


def update_params(
    params: T,
    grads: T,
    velocities: ArrayTree | None,
    *,
    learning_rate: float,
    momentum: float = 0.9,
    nesterov: bool = True,
    grads_dtype: str | None = None,
    out: tuple[T | None, T | None] | None = None,
) -> tuple[T, T]:
    """One ``SGDOptimizer.update_params(params, grads)``, without mutating its inputs.

    Args:
        params: the parameters θ (``coefs_ + intercepts_``: an array or a
            pytree of arrays, float32 or float64).
        grads: their gradients (``coef_grads + intercept_grads``).
        velocities: the optimizer's ``velocities``, or None for zeros (the
            first step).
        learning_rate: the optimizer's current ``learning_rate``, a Python
            number (:func:`learning_rate_at` gives it for a schedule); not
            the estimator's schedule name.
        momentum: μ, a Python number, as given to the estimator.
        nesterov: Nesterov's form (the estimator's ``nesterovs_momentum``).
        grads_dtype: ``"float64"`` for float64 gradients of float32
            parameters, as a float32 ``X`` with a float64 ``y`` gives them
            (``activations[-1] - y`` is float64): the velocities are then
            float64 too (None at the first step), the update float64
            arithmetic with η and μ unrounded, and ``param += update`` rounds
            the float64 sum to float32. None: the parameters' dtype.
        out: ``(params_out, velocities_out)``: arrays to write the results
            into (they may be the inputs themselves, as ``param += update``
            is; either may be None for a new array), or None for new arrays.

    Returns:
        ``(params, velocities)``.
    """
    if isinstance(learning_rate, str):
        raise TypeError(
            f"learning_rate must be the optimizer's current rate, a Python int or float, got "
            f"{describe(learning_rate)}; learning_rate_at({learning_rate!r}, ...) gives a "
            "schedule's rate"
        )
    eta = _python_number("learning_rate", learning_rate)
    mu = _python_number("momentum", momentum)
    if not isinstance(nesterov, bool):
        raise TypeError(f"nesterov must be a bool, got {describe(nesterov)}")
    recipe = tuple(
        replace(step, note=_NOTES.get(step.out, "param += update"))
        for step in velocity_lr_inside(mu, nesterov, None, kept=True)
    )
    # Python floats are weak scalars: rounded once to the arrays' dtype
    hypers = {"lr": Hyper(float(eta)), "mu": Hyper(float(mu))}
    trees: dict[str, Any] = {"params": params, "grads": grads}
    inputs: tuple[str, ...] = ("p", "g")
    if velocities is not None:
        trees["velocities"] = velocities
        inputs += ("v",)
    else:  # np.zeros_like(param)
        recipe = (*from_zero("v"), *recipe)
        hypers["zero"] = ZERO
    if grads_dtype not in (None, "float64"):
        raise ValueError(f"grads_dtype must be None or 'float64', got {describe(grads_dtype)}")
    program = Program(recipe, _ROUNDING, inputs, ("p", "v"), hypers)

    def for_dtype(dtype: str) -> Program:
        if dtype not in DTYPES:
            raise ValueError(
                f"scikit-learn's MLP trains in {' or '.join(DTYPES)} (the dtype of X), "
                f"not {dtype}: a {dtype} leaf is not modelled"
            )
        if grads_dtype is None or grads_dtype == dtype:
            return program
        # NumPy promotes to float64: η and μ meet float64 arrays, only p + u is stored back
        wide = {dtype: grads_dtype}
        promoted = {name: Hyper(h.value, (COMPUTE,)) for name, h in hypers.items()}
        return program._replace(
            rounding=Rounding(contract=False, compute=wide, result=wide),
            hypers=promoted,
            stored={"v": grads_dtype},
        )

    fixed = {} if grads_dtype is None else dict.fromkeys(("grads", "velocities", "out[1]"),
                                                         grads_dtype)  # fmt: skip
    new_params, new_velocities = run(trees, for_dtype, donated(out, "velocities", True), fixed)
    return new_params, new_velocities


def learning_rate_at(
    lr_schedule: str,
    *,
    learning_rate_init: float,
    power_t: float = 0.5,
    time_step: int = 0,
    decays: int = 0,
) -> float:
    """The optimizer's ``learning_rate`` under an MLP schedule: the same Python float.

    Args:
        lr_schedule: the schedule (the estimator's ``learning_rate``), one
            of :data:`SCHEDULES`.
        learning_rate_init, power_t: the estimator's parameters.
        time_step: the samples seen before this epoch (the estimator's
            ``t_``, which ``_fit_stochastic`` passes to ``iteration_ends``):
            ``k * n_samples`` in epoch k (from 0), the k-th ``partial_fit``
            on ``n_samples`` samples. Only ``invscaling`` reads it.
        decays: how often ``adaptive`` has divided the rate by 5
            (``trigger_stopping`` that did not stop); 0 for the others.

    Returns:
        ``float(learning_rate_init)``, ``float(learning_rate_init) /
        (time_step + 1) ** power_t`` (``invscaling``) or
        ``float(learning_rate_init)`` divided by 5.0 ``decays`` times
        (``adaptive``), in scikit-learn's own operation order.
    """
    if lr_schedule not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, "
                         f"got {describe(lr_schedule)}")  # fmt: skip
    init = float(_python_number("learning_rate_init", learning_rate_init))
    for name, count in (("time_step", time_step), ("decays", decays)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{name} must be an int >= 0, got {describe(count)}")
    if decays and lr_schedule != "adaptive":
        raise ValueError(f"decays={decays}: only the adaptive schedule decays")
    if lr_schedule == "invscaling":
        scale: float = (time_step + 1) ** _python_number("power_t", power_t)
        return init / scale
    rate = init
    for _ in range(decays):
        rate /= 5.0
    return rate


def _python_number(name: str, value: object) -> float:
    """A Python int or float: a NumPy scalar would promote float32 arithmetic to its dtype."""
    if type(value) is int or type(value) is float:
        return value
    hint = (
        " (a NumPy scalar is not a weak scalar: it would promote float32 updates to its "
        "own dtype, which is not modelled)"
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
        else ""
    )
    raise TypeError(f"{name} must be a Python int or float, got {describe(value)}{hint}")


def _keywords(h: Hypers) -> dict[str, object]:
    return {
        "learning_rate": h.lr,
        "momentum": float(h.momentum or 0.0),
        "nesterov": h.nesterov,
    }


CONVENTION = Convention(
    name="sklearn",
    function=update_params,
    roles=("param", "grad", "state"),
    state="velocities",
    first_state="zeros",
    stores="v",
    keywords=_keywords,
    variants=(Variant("update_params", {}, DTYPES),),
    capabilities=Capabilities(),
    requirement="scikit-learn",
)
