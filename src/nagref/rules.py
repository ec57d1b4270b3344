"""The three update rules, in the seeds' notation (the lecture notes; Ruder 2016).

Notation: W are the parameters, g the gradient, V the velocity (it points in
the direction of the gradient, so it is *subtracted*), η the learning rate
(``lr``) and β the momentum coefficient (``momentum``).

Arithmetic contract (the "documented operation order"). Every rule is
evaluated in the parameters' dtype, one correctly rounded array operation at
a time, in exactly this order:

=============  ==========================================================
``sgd``        W' = W − (η·g)
``momentum``   V' = (β·V) + (η·g);  W' = W − V'
``nag``        the same as ``momentum``, with g = ∇L(W − β·V)
``lookahead``  W − (β·V)
=============  ==========================================================

η and β are first rounded to the parameters' dtype (for a complex dtype, to
that dtype with a zero imaginary part). On NumPy, array-api-strict, PyTorch
(CPU), Dask and eager JAX the results equal this order bit for bit, except
that JAX on CPU flushes subnormal numbers to zero. Under ``jax.jit`` XLA may
contract a multiply and an add into one fused multiply-add, which changes
the last bit of some elements; see ``docs/rules.md``.

Every function accepts one array or a pytree (nested ``dict`` / ``list`` /
``tuple``) of arrays, returns new arrays in the same structure, and never
modifies its inputs, unless the caller donates output arrays with ``out=``
(which may be the inputs themselves: an in-place step, with the same bits).
Hyperparameters are keyword-only Python numbers or 0-d real floating arrays
of the parameters' library.

References:
    H. Robbins and S. Monro, "A stochastic approximation method", Ann. Math.
    Statist. 22(3):400-407, 1951.
    B. T. Polyak, "Some methods of speeding up the convergence of iteration
    methods", USSR Comput. Math. Math. Phys. 4(5):1-17, 1964.
    Yu. Nesterov, "A method for solving the convex programming problem with
    convergence rate O(1/k^2)", Soviet Math. Dokl. 27(2):372-376, 1983.
    I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the importance of
    initialization and momentum in deep learning", ICML 2013, eqs. (1)-(4).
    S. Ruder, "An overview of gradient descent optimization algorithms",
    arXiv:1609.04747, 2016, sections 4.1 and 4.2.
"""

from __future__ import annotations

from typing import Any, cast

from ._apply import apply
from ._checks import check_leaves, check_lr, check_momentum
from ._engine.ir import Hyper, bind
from ._engine.trace import trace
from ._tree import flatten, unflatten
from ._typing import Hyperparameter, TreeT

__all__ = ["init_velocity", "lookahead", "momentum", "nag", "sgd"]


# -- the arithmetic, written once --------------------------------------------


def _sgd_leaf(w: Any, g: Any, *, lr: Any) -> tuple[Any]:
    return (w - lr * g,)


def _momentum_leaf(w: Any, g: Any, v: Any, *, lr: Any, momentum: Any) -> tuple[Any, Any]:
    v_new = momentum * v + lr * g
    return w - v_new, v_new


def _lookahead_leaf(w: Any, v: Any, *, momentum: Any) -> tuple[Any]:
    return (w - momentum * v,)


def _velocity_step(
    param: TreeT,
    grad: TreeT,
    velocity: TreeT,
    *,
    lr: object,
    mu: object,
    out: tuple[TreeT, TreeT] | None,
) -> tuple[TreeT, TreeT]:
    """Shared by :func:`momentum` and :func:`nag`: validate, then V' and W'."""
    hypers = {"lr": Hyper(check_lr("lr", lr)), "momentum": Hyper(check_momentum("momentum", mu))}
    trees = {"param": param, "grad": grad, "velocity": velocity}
    program = bind(trace(_momentum_leaf), hypers)
    new_param, new_velocity = apply(program, trees, out=out)
    return cast(TreeT, new_param), cast(TreeT, new_velocity)


# -- the public rules ---------------------------------------------------------


def _one(out: object) -> tuple[object] | None:
    return None if out is None else (out,)


def sgd(param: TreeT, grad: TreeT, *, lr: Hyperparameter, out: TreeT | None = None) -> TreeT:
    r"""One step of (stochastic) gradient descent.

    .. math::  W_{t+1} = W_t - \eta\, g_t

    Robbins and Monro (1951); Ruder (2016), eq. (1).

    Args:
        param: the parameters W (an array or a pytree of arrays).
        grad: the gradient g at W, with the same structure, shapes and dtypes.
        lr: the learning rate η >= 0.
        out: arrays to write the result into, in the structure of ``param``
            (they may be ``param`` itself), or None for new arrays.

    Returns:
        The new parameters, in the structure of ``param``.
    """
    program = bind(trace(_sgd_leaf), {"lr": Hyper(check_lr("lr", lr))})
    (new_param,) = apply(program, {"param": param, "grad": grad}, out=_one(out))
    return cast(TreeT, new_param)


def momentum(
    param: TreeT,
    grad: TreeT,
    velocity: TreeT,
    *,
    lr: Hyperparameter,
    momentum: Hyperparameter,
    out: tuple[TreeT, TreeT] | None = None,
) -> tuple[TreeT, TreeT]:
    r"""One step of classical (heavy-ball) momentum.

    .. math::
        V_{t+1} = \beta V_t + \eta\, \nabla L(W_t), \qquad W_{t+1} = W_t - V_{t+1}

    Polyak (1964); Sutskever et al. (2013), eqs. (1)-(2), with V = -v;
    Ruder (2016), section 4.1. The velocity starts at zero
    (:func:`init_velocity`), so the first step is a plain gradient step.

    Args:
        param: the parameters W_t.
        grad: the gradient ∇L(W_t).
        velocity: the velocity V_t.
        lr: the learning rate η >= 0.
        momentum: the momentum coefficient β in [0, 1).
        out: ``(param_out, velocity_out)`` to write the results into (they
            may be ``param`` and ``velocity`` themselves, an in-place step),
            or None for new arrays.

    Returns:
        ``(W_{t+1}, V_{t+1})``, each in the structure of ``param``.
    """
    return _velocity_step(param, grad, velocity, lr=lr, mu=momentum, out=out)


def lookahead(
    param: TreeT, velocity: TreeT, *, momentum: Hyperparameter, out: TreeT | None = None
) -> TreeT:
    r"""The look-ahead point at which Nesterov's method takes the gradient.

    .. math::  \tilde W_t = W_t - \beta V_t

    Sutskever et al. (2013), eq. (3) (there θ + μv, with v = -V);
    Ruder (2016), section 4.2.

    Args:
        param: the parameters W_t.
        velocity: the velocity V_t.
        momentum: the momentum coefficient β in [0, 1).
        out: arrays to write the result into, in the structure of ``param``
            (they may be ``param`` itself), or None for new arrays.

    Returns:
        W_t - β V_t, in the structure of ``param``.
    """
    mu = Hyper(check_momentum("momentum", momentum))
    program = bind(trace(_lookahead_leaf), {"momentum": mu})
    (point,) = apply(program, {"param": param, "velocity": velocity}, out=_one(out))
    return cast(TreeT, point)


def nag(
    param: TreeT,
    grad: TreeT,
    velocity: TreeT,
    *,
    lr: Hyperparameter,
    momentum: Hyperparameter,
    out: tuple[TreeT, TreeT] | None = None,
) -> tuple[TreeT, TreeT]:
    r"""One step of Nesterov accelerated gradient (NAG).

    .. math::
        V_{t+1} = \beta V_t + \eta\, \nabla L(W_t - \beta V_t), \qquad
        W_{t+1} = W_t - V_{t+1}

    Nesterov (1983); Sutskever et al. (2013), eqs. (3)-(4), with V = -v;
    Ruder (2016), section 4.2. ``grad`` must be the gradient at the
    look-ahead point ``lookahead(param, velocity, momentum=momentum)``.
    Given that gradient, the arithmetic is exactly that of :func:`momentum`:
    the two methods differ only in where the gradient is taken.

    Args:
        param: the parameters W_t.
        grad: the gradient ∇L(W_t - β V_t) at the look-ahead point.
        velocity: the velocity V_t.
        lr: the learning rate η >= 0.
        momentum: the momentum coefficient β in [0, 1).
        out: ``(param_out, velocity_out)`` to write the results into (they
            may be ``param`` and ``velocity`` themselves, an in-place step),
            or None for new arrays.

    Returns:
        ``(W_{t+1}, V_{t+1})``, each in the structure of ``param``.
    """
    return _velocity_step(param, grad, velocity, lr=lr, mu=momentum, out=out)


def init_velocity(param: TreeT) -> TreeT:
    """A zero velocity V_0: zeros with each parameter's dtype, shape and device.

    Args:
        param: the parameters (an array or a pytree of arrays).

    Returns:
        Zeros in the structure of ``param``.
    """
    leaves_with_paths, structure = flatten(param)
    paths = [path for path, _ in leaves_with_paths]
    leaves = [leaf for _, leaf in leaves_with_paths]
    xp = check_leaves(["param"], [leaves], paths)
    zeros = [] if xp is None else [xp.zeros_like(leaf) for leaf in leaves]
    return cast(TreeT, unflatten(structure, zeros))
