r"""The published formulations of momentum and Nesterov's method, each in its paper's variables.

Every function is one step, pure and stateless like the core rules: it takes
arrays or pytrees, returns new ones, and evaluates the recurrence as printed,
left to right, one correctly rounded operation at a time in the parameters'
dtype (hyperparameters are rounded to that dtype first). Each recurrence is
written once, as a leaf function that the engine traces into a program
(:mod:`nagref._engine.trace`), so it runs on every backend and fast path and
``nagref explain`` lists its operations. The state each
formulation stores, its sign, its first step and where the learning rate
sits are compared in ``docs/formulations.md``; :mod:`nagref.convert` maps
the states into one another. The seeds' lecture form (Ruder 2016) is the
core's :func:`nagref.momentum` and :func:`nagref.nag`; the frameworks' forms
are :mod:`nagref.conventions`.

================  =====================  ==========================  =====================
function          state                  gradient taken at           source
================  =====================  ==========================  =====================
``polyak``        x_k, x_{k−1}           x_k                         Polyak 1964
``nesterov_1983`` y_k, x_{k−1}           y_k                         Nesterov 1983
``sutskever_cm``  θ_t, v_t               θ_t                         Sutskever 2013 (1)-(2)
``sutskever_nag`` θ_t, v_t               θ_t + μ v_t (``lookahead``) Sutskever 2013 (3)-(4)
``bengio``        Θ_t, v_t               Θ_t                         Bengio et al. 2012
``dozat``         θ_t, m_t               θ_t                         Dozat 2016
================  =====================  ==========================  =====================

Each step's momentum is a keyword argument, so schedules
(:mod:`nagref.schedules`) apply step by step. Bengio's and Dozat's updates
use two momenta, this step's and the next one's.

References:
    B. T. Polyak, "Some methods of speeding up the convergence of iteration
    methods", USSR Comput. Math. Math. Phys. 4(5):1-17, 1964.
    Yu. Nesterov, "A method for solving the convex programming problem with
    convergence rate O(1/k^2)", Soviet Math. Dokl. 27(2):372-376, 1983.
    I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the importance of
    initialization and momentum in deep learning", ICML 2013, eqs. (1)-(4).
    Y. Bengio, N. Boulanger-Lewandowski and R. Pascanu, "Advances in
    optimizing recurrent networks", arXiv:1212.0901, 2012, section
    "Simplified Nesterov momentum".
    T. Dozat, "Incorporating Nesterov momentum into Adam", ICLR 2016
    workshop, section 2 (the rewritten NAG update).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from ._apply import apply
from ._checks import check_lr, check_momentum
from ._engine.ir import Hyper, bind
from ._engine.trace import trace
from ._typing import Hyperparameter, TreeT

__all__ = [
    "bengio",
    "dozat",
    "nesterov_1983",
    "polyak",
    "sutskever_cm",
    "sutskever_lookahead",
    "sutskever_nag",
]


def polyak(
    x: TreeT, grad: TreeT, x_prev: TreeT, *, alpha: Hyperparameter, beta: Hyperparameter
) -> tuple[TreeT, TreeT]:
    r"""One step of Polyak's (1964) heavy-ball method, in its two-step form.

    .. math::  x_{k+1} = x_k - \alpha \nabla f(x_k) + \beta (x_k - x_{k-1})

    Start with x_{−1} = x_0, which makes the first step plain gradient descent.

    Args:
        x: the iterate x_k.
        grad: ∇f(x_k).
        x_prev: the previous iterate x_{k−1}.
        alpha: the step size α >= 0.
        beta: the momentum β in [0, 1).

    Returns:
        ``(x_{k+1}, x_k)``: the state of the next step (x_k as a new array).
    """
    hypers = {"alpha": check_lr("alpha", alpha), "beta": check_momentum("beta", beta)}
    out = _step(_polyak_leaf, {"x": x, "grad": grad, "x_prev": x_prev}, hypers)
    return cast(tuple[TreeT, TreeT], out)


def _polyak_leaf(x: Any, g: Any, x_prev: Any, *, alpha: Any, beta: Any) -> tuple[Any, Any]:
    return (x - alpha * g) + beta * (x - x_prev), x


def nesterov_1983(
    y: TreeT, grad: TreeT, x_prev: TreeT, *, alpha: Hyperparameter, beta: Hyperparameter
) -> tuple[TreeT, TreeT]:
    r"""One step of Nesterov's (1983) method, in its two-sequence form.

    .. math::
        x_k = y_k - \alpha \nabla f(y_k), \qquad
        y_{k+1} = x_k + \beta_k (x_k - x_{k-1})

    with β_k = (a_k − 1)/a_{k+1} (:func:`nagref.schedules.nesterov`) in the
    paper, or a constant β for strongly convex f (Nesterov 2004, section
    2.2). Start with y_0 = x_{−1} = x_0.

    Args:
        y: the point y_k, where the gradient is taken.
        grad: ∇f(y_k).
        x_prev: the previous gradient-step point x_{k−1}.
        alpha: the step size α >= 0 (1/L in the paper's analysis).
        beta: the momentum β_k in [0, 1).

    Returns:
        ``(y_{k+1}, x_k)``: the state of the next step.
    """
    hypers = {"alpha": check_lr("alpha", alpha), "beta": check_momentum("beta", beta)}
    out = _step(_nesterov_leaf, {"y": y, "grad": grad, "x_prev": x_prev}, hypers)
    return cast(tuple[TreeT, TreeT], out)


def _nesterov_leaf(y: Any, g: Any, x_prev: Any, *, alpha: Any, beta: Any) -> tuple[Any, Any]:
    x = y - alpha * g
    return x + beta * (x - x_prev), x


def sutskever_cm(
    theta: TreeT, grad: TreeT, v: TreeT, *, epsilon: Hyperparameter, mu: Hyperparameter
) -> tuple[TreeT, TreeT]:
    r"""One step of classical momentum, Sutskever et al. (2013), eqs. (1)-(2).

    .. math::
        v_{t+1} = \mu v_t - \varepsilon \nabla f(\theta_t), \qquad
        \theta_{t+1} = \theta_t + v_{t+1}

    v is the displacement θ_{t+1} − θ_t (it points downhill, opposite to
    the seeds' V). Start with v_0 = 0.

    Args:
        theta: the parameters θ_t.
        grad: ∇f(θ_t).
        v: the velocity v_t.
        epsilon: the learning rate ε >= 0.
        mu: the momentum μ in [0, 1).

    Returns:
        ``(θ_{t+1}, v_{t+1})``.
    """
    return _sutskever(theta, grad, v, epsilon, mu)


def sutskever_nag(
    theta: TreeT, grad: TreeT, v: TreeT, *, epsilon: Hyperparameter, mu: Hyperparameter
) -> tuple[TreeT, TreeT]:
    r"""One step of Nesterov's accelerated gradient, Sutskever et al. (2013), eqs. (3)-(4).

    .. math::
        v_{t+1} = \mu v_t - \varepsilon \nabla f(\theta_t + \mu v_t), \qquad
        \theta_{t+1} = \theta_t + v_{t+1}

    ``grad`` is taken at :func:`sutskever_lookahead`; given it, the
    arithmetic is that of :func:`sutskever_cm`. θ_t is Nesterov's x_{t−1},
    and θ_t + μ v_t his y_t. Start with v_0 = 0.

    Args:
        theta: the parameters θ_t.
        grad: ∇f(θ_t + μ v_t).
        v: the velocity v_t.
        epsilon: the learning rate ε >= 0.
        mu: the momentum μ in [0, 1).

    Returns:
        ``(θ_{t+1}, v_{t+1})``.
    """
    return _sutskever(theta, grad, v, epsilon, mu)


def sutskever_lookahead(theta: TreeT, v: TreeT, *, mu: Hyperparameter) -> TreeT:
    r"""The point θ_t + μ v_t where :func:`sutskever_nag` takes the gradient (eq. (3))."""
    hypers = {"mu": check_momentum("mu", mu)}
    (point,) = _step(_lookahead_leaf, {"theta": theta, "v": v}, hypers)
    return cast(TreeT, point)


def _lookahead_leaf(theta: Any, v: Any, *, mu: Any) -> tuple[Any]:
    return (theta + mu * v,)


def _sutskever(
    theta: TreeT, grad: TreeT, v: TreeT, epsilon: object, mu: object
) -> tuple[TreeT, TreeT]:
    hypers = {"epsilon": check_lr("epsilon", epsilon), "mu": check_momentum("mu", mu)}
    out = _step(_sutskever_leaf, {"theta": theta, "grad": grad, "v": v}, hypers)
    return cast(tuple[TreeT, TreeT], out)


def _sutskever_leaf(theta: Any, g: Any, v: Any, *, epsilon: Any, mu: Any) -> tuple[Any, Any]:
    v_new = mu * v - epsilon * g
    return theta + v_new, v_new


def _two_momenta(lr_name: str, lr: object, mu: object, mu_next: object) -> dict[str, Any]:
    """Validated hyperparameters of a step that uses this and the next momentum."""
    return {
        lr_name: check_lr(lr_name, lr),
        "mu": check_momentum("mu", mu),
        "mu_next": check_momentum("mu_next", mu_next),
    }


def bengio(
    Theta: TreeT,  # noqa: N803 (the paper's capital theta)
    grad: TreeT,
    v: TreeT,
    *,
    epsilon: Hyperparameter,
    mu: Hyperparameter,
    mu_next: Hyperparameter,
) -> tuple[TreeT, TreeT]:
    r"""One step of Bengio et al.'s (2012) simplified Nesterov momentum.

    The stored parameter is Sutskever's look-ahead point, Θ_{t−1} = θ_{t−1}
    + μ_{t−1} v_{t−1}, so the gradient is taken where the parameters are:

    .. math::
        v_t = \mu_{t-1} v_{t-1} - \varepsilon_{t-1} \nabla f(\Theta_{t-1}), \\
        \Theta_t = \Theta_{t-1} + \mu_t \mu_{t-1} v_{t-1}
                   - (1 + \mu_t)\, \varepsilon_{t-1} \nabla f(\Theta_{t-1})

    With a constant μ this is Keras's ``SGD(nesterov=True)``. From v_0 = 0
    the first step is the "long" one, Θ_1 = Θ_0 − (1 + μ) ε ∇f(Θ_0).

    Args:
        Theta: the stored parameters Θ_{t−1}.
        grad: ∇f(Θ_{t−1}).
        v: the velocity v_{t−1}.
        epsilon: the learning rate ε_{t−1} >= 0.
        mu: the momentum μ_{t−1} of this step, in [0, 1).
        mu_next: the momentum μ_t of the next step, in [0, 1).

    Returns:
        ``(Θ_t, v_t)``.
    """
    hypers = _two_momenta("epsilon", epsilon, mu, mu_next)
    out = _step(_bengio_leaf, {"Theta": Theta, "grad": grad, "v": v}, hypers)
    return cast(tuple[TreeT, TreeT], out)


def _bengio_leaf(
    big_theta: Any, g: Any, v: Any, *, epsilon: Any, mu: Any, mu_next: Any
) -> tuple[Any, Any]:
    v_new = mu * v - epsilon * g
    big_theta_new = (big_theta + (mu_next * mu) * v) - ((1 + mu_next) * epsilon) * g
    return big_theta_new, v_new


def dozat(
    theta: TreeT,
    grad: TreeT,
    m: TreeT,
    *,
    eta: Hyperparameter,
    mu: Hyperparameter,
    mu_next: Hyperparameter,
) -> tuple[TreeT, TreeT]:
    r"""One step of Nesterov momentum as Dozat (2016) rewrites it for Nadam.

    .. math::
        m_t = \mu_t m_{t-1} + g_t, \qquad
        \theta_t = \theta_{t-1} - \eta\,(\mu_{t+1} m_t + g_t)

    with g_t = ∇f(θ_{t−1}): the look-ahead is applied to the current
    momentum instead of taking the momentum step twice. m holds no learning
    rate (PyTorch's buffer is the same m), and θ is Bengio's Θ. From m_0 = 0
    the first step is the long one.

    Args:
        theta: the parameters θ_{t−1}.
        grad: g_t = ∇f(θ_{t−1}).
        m: the momentum vector m_{t−1}.
        eta: the learning rate η >= 0.
        mu: the momentum μ_t of this step, in [0, 1).
        mu_next: the momentum μ_{t+1} of the next step, in [0, 1).

    Returns:
        ``(θ_t, m_t)``.
    """
    hypers = _two_momenta("eta", eta, mu, mu_next)
    out = _step(_dozat_leaf, {"theta": theta, "grad": grad, "m": m}, hypers)
    return cast(tuple[TreeT, TreeT], out)


def _dozat_leaf(theta: Any, g: Any, m: Any, *, eta: Any, mu: Any, mu_next: Any) -> tuple[Any, Any]:
    m_new = mu * m + g
    return theta - eta * (mu_next * m_new + g), m_new


def _step(
    leaf_fn: Callable[..., tuple[Any, ...]],
    trees: Mapping[str, object],
    hypers: Mapping[str, Hyperparameter],
) -> tuple[Any, ...]:
    """One step of a formulation: its traced leaf function over the trees."""
    program = bind(trace(leaf_fn), {name: Hyper(value) for name, value in hypers.items()})
    return apply(program, trees)
