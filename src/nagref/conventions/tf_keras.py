r"""tf-keras's (Keras 2's) SGD, bit for bit (tf-keras 2.21 on TensorFlow 2.21).

Three code paths, the convention's ``optimizer`` (the velocity v holds
lr-scaled steps, so lr sits inside it; it starts at zero):

* ``"sgd"``: ``tf_keras.optimizers.SGD`` (``tf_keras/src/optimizers/sgd.py``,
  ``update_step``), whose ``m`` is built for every variable, so it keeps a
  velocity at momentum 0 too:

  .. math::
      \theta &\leftarrow \theta - (\theta\lambda)\eta \quad\text{(weight decay, decoupled,
      first: ``optimizer.py``, ``_apply_weight_decay``)}\\
      m_t &= -g_t\eta + m_{t-1}\mu,\qquad
      \theta_t = \theta_{t-1} + (-g_t\eta + m_t\mu) \text{ (nesterov) or } \theta_{t-1} + m_t

  −gη + mμ is mμ − gη bit for bit (x + (−y) is x − y in IEEE arithmetic,
  the sign of zero included), so this is Keras 3's recipe
  (:func:`nagref.conventions._recipes.velocity_lr_inside`) with the
  velocity kept at μ = 0: there a −0.0 variable and a zero gradient give
  +0.0 (θ + (−0·η + 0·0)), where θ − gη keeps −0.0, and a gradient of ±inf
  leaves m = ∓inf, so the next step's m·0 is NaN.
* ``"legacy"``: ``tf_keras.optimizers.legacy.SGD``
  (``tf_keras/src/optimizers/legacy/gradient_descent.py``), which runs the
  raw op below when momentum > 0, else ``ResourceApplyGradientDescent``
  (θ − gη, no state). That is Keras 3's eager recipe on TensorFlow exactly
  (:func:`nagref.conventions.keras.sgd` with ``backend="tensorflow"``); it
  has no weight decay.
* ``"raw_op"``: ``tf.raw_ops.ResourceApplyKerasMomentum`` itself
  (``tensorflow/core/kernels/training_ops.cc``, ``ApplyKerasMomentum``:
  ``accum = accum * momentum - grad * lr``; ``var += accum * momentum -
  grad * lr`` or ``var += accum``), the accumulator kept at μ = 0 too.

Each operation rounds on its own (Eigen on CPU): float16 and bfloat16 are
computed in float32 and rounded to the 16-bit format after every operation,
and float32, float64 and bfloat16 subnormals are flushed to zero (bfloat16's
in float32). The hyperparameters: both optimizers hold ``learning_rate`` in
a float32 variable and make ``momentum`` and ``weight_decay`` float32
tensors (``tf.cast`` of a Python float, the legacy one's float32 hyper
variables), each then cast to the variable's dtype, so for float64
variables η, μ and λ are float32 numbers. The new optimizer's learning-rate
variable has ``tf_keras.backend.floatx()``'s dtype, so under
``set_floatx("float64")`` η is a float64 number, cast at run time (to float16
and bfloat16 through float32): ``learning_rate_dtype="float64"``. The raw op
takes ``tf.constant(x, dtype)`` scalars: rounded straight to float64, and to
float16 and bfloat16 through float32.

Where ``model.fit`` runs the step (CPU: a ``tf.function``, no XLA; tf-keras
turns the optimizer's ``jit_compile`` off without a GPU), TensorFlow's graph
optimizer folds the weight decay to θ − θ·fl(ηλ) (``tf_function=True``), except
on 0-d variables and on one-element variables whose learning rate needs no
cast. With ``jit_compile`` in effect the update step runs under XLA
(``jit_compile=True``, the weight decay before it, eagerly): contracted as
Keras 3's compiled step, v = fma(v, μ, −fl(gη)), and where μ is 1 in the
dtype v = fma(g, −η, v) (but not in the Nesterov step of a one-element
variable). Measured against tf-keras 2.21.0: docs/conventions.md.
"""

from __future__ import annotations

from typing import Any, TypeVar

from .._dtypes import round_to
from .._engine.ir import STORAGE, VIA_OPMATH, Hyper, Instr, Program, Rounding, instr
from .._host import native_float16 as _native_float16
from .._typing import ArrayTree
from ._common import (
    FLUSHED,
    IN_OPMATH,
    ZERO,
    donated,
    from_zero,
    native_here,
    not_native_here,
    number,
)
from ._keras_xla import graph_decay, graph_kind, jit_recipe, run_grouped
from ._recipes import decoupled_decay, velocity_lr_inside
from ._registry import REAL_FLOATS, Capabilities, Convention, Variant
from .keras import CONVENTION as _KERAS3

__all__ = ["CONVENTION", "OPTIMIZERS", "sgd"]

T = TypeVar("T", bound=ArrayTree)

#: The code paths this convention models (see the module docstring).
OPTIMIZERS = ("sgd", "legacy", "raw_op")

#: the new optimizer's learning-rate variable's dtypes modelled (``set_floatx``'s; not float16)
_FLOATX = ("float32", "float64")

_ROUNDING = Rounding(contract=False, compute=IN_OPMATH, flush=FLUSHED)
#: XLA's: contracted, in the dtype itself (native float16 too)
_JIT = Rounding(contract=True, flush=FLUSHED)
#: a float32 tensor (the optimizers' hyperparameters) cast to the variable's dtype
_FLOAT32 = ("float32", STORAGE)


def sgd(
    variable: T,
    gradient: T,
    momentum_var: T | None,
    *,
    learning_rate: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float | None = None,
    optimizer: str = "sgd",
    learning_rate_dtype: str = "float32",
    jit_compile: bool = False,
    tf_function: bool = False,
    native_float16: bool | None = None,
    out: tuple[T | None, T | None] | None = None,
) -> tuple[T, T | None]:
    """One ``apply_gradients`` of tf-keras's SGD (or one raw op), without mutating its inputs.

    Args:
        variable: the variables θ (an array or a pytree of arrays).
        gradient: their gradients.
        momentum_var: the velocities m (the raw op's ``accum``), or None for zeros.
        learning_rate, momentum, nesterov: as in ``tf_keras.optimizers.SGD``
            (the raw op's ``lr``, ``momentum`` and ``use_nesterov``).
        weight_decay: ``tf_keras.optimizers.SGD``'s (``optimizer="sgd"`` only;
            None: none, 0.0 still runs θ − (θ·0)·η).
        optimizer: one of :data:`OPTIMIZERS`: ``"sgd"``, the new
            optimizer; ``"legacy"``, ``tf_keras.optimizers.legacy.SGD``;
            ``"raw_op"``, ``ResourceApplyKerasMomentum`` with ``tf.constant``
            hyperparameters.
        learning_rate_dtype: the dtype of the new optimizer's learning-rate
            variable: ``tf_keras.backend.floatx()`` when it was built
            (``"float32"`` unless ``set_floatx`` changed it; the legacy one's
            is always float32).
        jit_compile: the new optimizer's ``jit_compile`` in effect (tf-keras
            turns it off where TensorFlow sees no GPU): its update step under
            XLA, v = fma(v, μ, −fl(gη)), θ + fma(v, μ, −fl(gη)) (nesterov) or
            θ + v, the weight decay run before it, outside XLA.
        tf_function: ``apply_gradients`` inside a ``tf.function`` (as
            ``model.fit`` runs it): TensorFlow's graph optimizer folds the
            weight decay, θ − θ·fl(ηλ); the rest as eagerly (or as
            ``jit_compile`` says).
        native_float16: whether XLA has native float16 arithmetic
            (AVX512-FP16); None: this CPU's. Only float16 under
            ``jit_compile`` reads it.
        out: ``(variable_out, momentum_var_out)``: arrays to write the results
            into (they may be the inputs themselves, an in-place step; either
            may be None for a new array), or None for new arrays.

    Returns:
        ``(variable, momentum_var)``; the velocity is None for the legacy
        optimizer at momentum 0 (it has no slot then).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    lr = number("learning_rate", learning_rate)
    mu = number("momentum", momentum)
    if optimizer != "raw_op" and not 0 <= mu <= 1:
        raise ValueError(f"`momentum` must be between [0, 1]. Received: momentum={momentum}")
    if not isinstance(nesterov, bool):
        raise TypeError(f"nesterov must be a bool, got {nesterov!r}")
    wd = None if weight_decay is None else number("weight_decay", weight_decay)
    if wd is not None and optimizer != "sgd":
        raise ValueError(
            f"weight_decay is tf_keras.optimizers.SGD's (optimizer='sgd'), got "
            f"weight_decay={weight_decay!r} with optimizer={optimizer!r}"
        )
    _check_paths(optimizer, learning_rate_dtype, jit_compile, tf_function, native_float16)
    # the new optimizer and the raw op keep a velocity whatever the momentum;
    # the legacy optimizer only above 0 (ResourceApplyGradientDescent else)
    kept = optimizer != "legacy"
    has_state = kept or mu > 0
    via = VIA_OPMATH if optimizer == "raw_op" else _FLOAT32
    hypers = {
        # a float64 variable (floatx) cast at run time: to the 16-bit formats through
        # float32, as TensorFlow's Cast does (measured)
        "lr": Hyper(lr, VIA_OPMATH if learning_rate_dtype == "float64" else via),
        "mu": Hyper(mu, via),
        "wd": Hyper(0.0 if wd is None else wd, via),
    }
    trees: dict[str, Any] = {"variable": variable, "gradient": gradient}
    inputs: tuple[str, ...] = ("p", "g")
    starts: tuple[Instr, ...] = ()
    if has_state and momentum_var is not None:
        trees["momentum_var"] = momentum_var
        inputs += ("v",)
    elif has_state:  # the velocity variables start at zero
        starts = from_zero("v")
        hypers["zero"] = ZERO
    outputs = ("p", "v" if has_state else None)
    native = _native_float16() if native_float16 is None else native_float16

    def program(dtype: str, kind: str) -> Program:
        # TensorFlow's graph optimizer folds λη, but not everywhere (graph_decay)
        # (measured: not on one-element variables whose learning rate needs no cast)
        cast = dtype != learning_rate_dtype
        decay = graph_decay(kind, fold_one=cast) if tf_function else decoupled_decay()
        steps = (*starts, *(decay if wd is not None else ()))
        # XLA keeps bfloat16's round trips, and float16's without native arithmetic
        if not jit_compile or dtype == "bfloat16" or (dtype == "float16" and not native):
            return Program((*steps, *velocity_lr_inside(mu, nesterov, None, kept=kept)),
                           _ROUNDING, inputs, outputs, hypers)  # fmt: skip
        # where μ is 1 in the dtype XLA drops v·1 and fuses gη instead, except for
        # the Nesterov step of a one-element variable (measured)
        unit = round_to(round_to(mu, "float32"), dtype) == 1 and not (kind != "many" and nesterov)
        update = (
            _unit_momentum(nesterov)
            if unit
            else jit_recipe(mu, nesterov, None, one=False, kept=True)
        )
        return Program((*steps, *update), _JIT, inputs, outputs, {**hypers, "neg_lr": neg_lr})

    neg_lr = Hyper(-lr, hypers["lr"].via)
    # the leaves' kinds matter to the graph optimizer and XLA only
    kind = graph_kind if tf_function or jit_compile else _any
    new_variable, new_velocity = run_grouped(
        trees, program, donated(out, "momentum_var", has_state), kind
    )
    return new_variable, new_velocity


def _check_paths(
    optimizer: str,
    learning_rate_dtype: str,
    jit_compile: bool,
    tf_function: bool,
    native_float16: bool | None,
) -> None:
    """The arguments that pick a code path: refused where they name none modelled."""
    for name, flag in (("jit_compile", jit_compile), ("tf_function", tf_function)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {flag!r}")
    if native_float16 is not None and not isinstance(native_float16, bool):
        raise TypeError(f"native_float16 must be a bool or None, got {native_float16!r}")
    if (jit_compile or tf_function) and optimizer != "sgd":
        raise ValueError(
            "jit_compile and tf_function model tf_keras.optimizers.SGD (optimizer='sgd'), "
            f"got optimizer={optimizer!r}"
        )
    if learning_rate_dtype not in _FLOATX:
        raise ValueError(
            f"learning_rate_dtype must be one of {', '.join(_FLOATX)}, got {learning_rate_dtype!r}"
        )
    if learning_rate_dtype != "float32" and optimizer != "sgd":
        raise ValueError(
            "learning_rate_dtype is tf_keras.optimizers.SGD's (optimizer='sgd'): the legacy "
            "optimizer's and the raw op's learning rates do not follow floatx"
        )
    if jit_compile and learning_rate_dtype != "float32":
        raise NotImplementedError(
            "jit_compile=True with a float64 learning rate is not modelled (not measured)"
        )
    if jit_compile and tf_function:
        raise NotImplementedError(
            "jit_compile=True with tf_function=True is not modelled (measured: its weight "
            "decay rounds otherwise); each of them alone is"
        )


def _any(shape: tuple[int, ...]) -> str:
    return "any"


def _unit_momentum(nesterov: bool) -> tuple[Instr, ...]:
    """XLA's update where μ rounds to 1: v·μ dropped, the product gη fused instead."""
    steps = [instr("v", "muladd", "g", "neg_lr", "v", note="-gradient * lr + m, fused")]
    if nesterov:
        return (
            *steps,
            instr("u", "muladd", "g", "neg_lr", "v", note="-gradient * lr + new m, fused"),
            instr("p", "add", "p", "u", note="variable.assign_add(...)"),
        )
    return (*steps, instr("p", "add", "p", "v", note="variable.assign_add(m)"))


#: the legacy optimizer and the raw op have no weight decay
_NO_DECAY = Capabilities()

CONVENTION = Convention(
    name="tf_keras",
    function=sgd,
    roles=("param", "grad", "state"),
    state="momentum_var",
    first_state="zeros",
    stores="v",
    keywords=_KERAS3.keywords,  # the same names: learning_rate, momentum, ...
    variants=(
        # cost: an eager apply_gradients step takes about four raw ops' time
        Variant("sgd", {"optimizer": "sgd"}, cost=4),
        # set_floatx("float64") before the optimizer is built: a float64 learning rate
        Variant("sgd-floatx64", {"optimizer": "sgd", "learning_rate_dtype": "float64"}, cost=8),
        # apply_gradients in a tf.function (model.fit): the weight decay folded
        Variant("sgd-function", {"optimizer": "sgd", "tf_function": True}, cost=4),
        # jit_compile=True in effect (a GPU seen; forced here), a compilation per
        # case; float16 as on a CPU without AVX512-FP16 (XLA kept to AVX2), or with it
        Variant(
            "sgd-jit",
            {"optimizer": "sgd", "jit_compile": True, "native_float16": False},
            REAL_FLOATS,
            not_native_here,
            cost=10,
        ),
        Variant(
            "sgd-jit-avx512fp16",
            {"optimizer": "sgd", "jit_compile": True, "native_float16": True},
            ("float16",),
            native_here,
            cost=10,
        ),
        Variant("legacy", {"optimizer": "legacy"}, cost=2, capabilities=_NO_DECAY),
        Variant("raw_op", {"optimizer": "raw_op"}, capabilities=_NO_DECAY),
    ),
    capabilities=Capabilities(weight_decay=True),
    requirement="tf-keras tensorflow-cpu",
)
