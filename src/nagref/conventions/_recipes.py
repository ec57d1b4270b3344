"""Recipes that several frameworks share, as named builders any convention can use.

Each builder returns the instructions of one update in a well-known form, in
the operand order the frameworks' sources write it; the convention supplies
the rounding model, the hyperparameter casts and the first step. Registers:
``p`` the parameters, ``g`` the gradient, ``v`` the velocity, and the
constants ``lr``, ``mu``, ``wd``.
"""

from __future__ import annotations

from .._engine.ir import Instr, instr

__all__ = ["decoupled_decay", "velocity_lr_inside"]


def velocity_lr_inside(
    momentum: float, nesterov: bool, weight_decay: float | None, *, kept: bool = False
) -> tuple[Instr, ...]:
    r"""The velocity with lr inside, every operation rounded on its own (Keras's form).

    .. math::
        \theta \leftarrow \theta - \theta\lambda\eta;\quad
        v \leftarrow \mu v - g\eta;\quad
        \theta \leftarrow \theta + \mu v - g\eta \text{ (nesterov) or } \theta + v

    and θ ← θ − gη when μ = 0 (unless ``kept``: a velocity kept at μ = 0 too,
    as tf-keras's SGD keeps it): Sutskever et al.'s (2013) v, and under
    Nesterov Bengio et al.'s (2012) look-ahead form. Keras 3 (eager,
    ``keras/src/optimizers/sgd.py``) and scikit-learn's ``SGDOptimizer``
    write it so.
    """
    steps = list(decoupled_decay()) if weight_decay is not None else []
    if momentum != 0 or kept:
        velocity = [
            instr("a", "mul", "v", "mu", note="m * momentum"),
            instr("b", "mul", "g", "lr", note="gradient * learning_rate"),
        ]
        steps += [*velocity, instr("v", "sub", "a", "b", note="m.assign(m * momentum - g * lr)")]
        if nesterov:
            steps += [
                *velocity,
                instr("u", "sub", "a", "b", note="m * momentum - g * lr, with the new m"),
                instr("p", "add", "p", "u", note="variable.assign_add(...)"),
            ]
        else:
            steps.append(instr("p", "add", "p", "v", note="variable.assign_add(m)"))
    else:
        steps += [
            instr("b", "mul", "g", "lr", note="gradient * learning_rate"),
            instr("p", "sub", "p", "b", note="variable.assign_sub(gradient * learning_rate)"),
        ]
    return tuple(steps)


def decoupled_decay() -> tuple[Instr, ...]:
    r"""Keras's decoupled weight decay, θ ← θ − (θλ)η, each operation rounded on its own."""
    return (
        instr("t", "mul", "p", "wd", note="variable * wd"),
        instr("t", "mul", "t", "lr", note="... * lr"),
        instr("p", "sub", "p", "t", note="variable.assign(variable - variable * wd * lr)"),
    )
