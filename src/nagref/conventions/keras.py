r"""Keras 3's ``keras.optimizers.SGD.apply``, eager, bit for bit (Keras 3.15).

The recurrence (``keras/src/optimizers/sgd.py``; the velocity v holds
lr-scaled steps, so lr sits inside it, and starts at zero):

.. math::
    \theta &\leftarrow \theta - \theta\,\lambda\,\eta \quad\text{(weight decay, decoupled, first)}\\
    v_t &= \mu v_{t-1} - \eta g_t,\qquad
    \theta_t = \theta_{t-1} + \mu v_t - \eta g_t \text{ (nesterov) or } \theta_{t-1} + v_t

with θ_t = θ_{t-1} − η g_t when momentum is 0. That is Bengio et al.'s
(2012) look-ahead form of Nesterov's method.

Per backend, as measured against Keras 3.15.1:

* ``"tensorflow"``, ``"jax"``, ``"numpy"``: each operation rounds
  separately. The learning rate is a float32 variable, cast to the
  variable's dtype. TensorFlow also passes momentum and weight decay through
  float32; NumPy (and JAX under ``jit``) convert them on the host, as the
  installed ``ml_dtypes`` does; eager JAX float16 directly, bfloat16 through float32.
  TensorFlow and JAX on CPU flush float32, float64 and bfloat16 subnormals
  to zero; bfloat16 is computed in
  float32 and flushed there, before its rounding to bfloat16. The NumPy
  backend follows JAX's 32-bit type promotion, so a float64 variable is
  updated in float32 arithmetic (each operand rounded to float32) and stored
  back; its bfloat16 arithmetic (``ml_dtypes``) rounds each operation.
* ``"torch"``: its own foreach code: v = fma(g, −η, fl(v·μ)); Nesterov
  θ = fma(v, μ, fma(g, −η, θ)); weight decay θ·fl32(1 − fl32(λ·η)).
  float16 and bfloat16 round as :mod:`nagref.conventions.pytorch` describes,
  with ``_foreach_mul_``'s scalar rounded to the 16-bit format, except the
  weight decay factor, a float32 tensor, which stays float32. The same
  ``_foreach_`` kernels, so the same ``threads`` (chunks of a tensor over
  32,768 elements, each with its own scalar tail) and ``cpu_capability``
  (``"default"``: nothing fuses), measured against Keras 3.15.1 on torch
  2.13.0 with ``ATEN_CPU_CAPABILITY`` set.

The learning rate: a float becomes a float32 variable, so η is a float32
number whatever the variables' dtype. A callable or a
``LearningRateSchedule`` that returns a Python float hands that float to the
update instead; on the JAX backend (with ``jax_enable_x64``) and on the torch
backend it arrives as a float64 and is cast to the variables' dtype (JAX
converts the Python float on the host, rounding once, or for bfloat16 twice
as ``ml_dtypes`` does; torch's ``alpha`` reaches the 16-bit formats through
float32), so float64 variables see η unrounded
(``learning_rate_dtype="float64"``; measured against Keras 3.15.1: with η
rounded to float32, about 160 of 240 float64 elements differ after 3 steps).
On the TensorFlow and NumPy backends such a value becomes float32 as a float
does; float32 and float16 variables give the same bits either way.

Compiled by XLA (``jit=True``): ``jax.jit(optimizer.stateless_apply)`` on
the JAX backend and ``tf.function(optimizer.apply, jit_compile=True)`` on
TensorFlow compile to the same code on CPU. Measured against Keras 3.15.1
(JAX 0.10.2, TensorFlow 2.21), from the optimized HLO and object code, and
bitwise on 3-step trajectories of 200 random optimizers per dtype and
backend (about 118,000 float32, 120,000 float64, 118,000 float16 and
122,000 bfloat16 elements, 0 differing; the eager model differs in about
36% of the float32 elements), XLA contracts and reassociates, every other
operation rounding on its own:

.. math::
    c &= \mathrm{fl}(\eta\lambda),\quad \theta \leftarrow \mathrm{fma}(-\theta, c, \theta)
      \quad\text{(weight decay, tensors of more than one element)}\\
    t &= \mathrm{fl}(\theta\lambda),\quad \theta \leftarrow \mathrm{fma}(t, -\eta, \theta)
      \quad\text{(weight decay, one-element tensors)}\\
    b &= \mathrm{fl}(g\eta),\quad v_t = \mathrm{fma}(v_{t-1}, \mu, -b),\quad
      \theta_t = \mathrm{fl}(\theta_{t-1} + \mathrm{fma}(v_t, \mu, -b))
      \text{ (nesterov) or } \mathrm{fl}(\theta_{t-1} + v_t)

and θ_t = fma(g, −η, θ_{t−1}) when momentum is 0. XLA's algebraic
simplifier rewrites (θλ)·broadcast(η) as θ·broadcast(ηλ), the scalar c
computed at run time in the variable's dtype; a one-element tensor's
broadcast is a bitcast, and nothing is reassociated (24,366 elements of
optimizers half of whose tensors have one element: 0 differ; 39 without
this rule). float32 and float64 are computed in their own dtype, flushing
subnormals to zero; float16, on a CPU with native float16 arithmetic
(AVX512-FP16, ``native_float16``), in float16 with correctly rounded FMAs
and no flushing. bfloat16 is exactly the eager model: computed in float32,
flushed there and rounded to bfloat16 after every operation, nothing
contracted or reassociated (0 of 121,804 elements differ from the eager
model). float16 on a CPU without AVX512-FP16 (measured on this CPU with XLA
kept to AVX2, ``XLA_FLAGS=--xla_cpu_max_isa=AVX2``) has the weight decay
reassociated as above but nothing contracted: each operation computed in
float32 and rounded to float16 (0 of 31,395 elements differ per backend;
the eager model differs in 107 of the 15,376 aimed at the weight decay).
The learning rate is the float32 variable, cast at run time; momentum and
weight decay are folded into the program as the eager backend converts
them (JAX on the host, TensorFlow through float32). In a ``tf.function``
(``tf_function=True``: ``model.fit`` on TensorFlow without XLA), TensorFlow's
graph optimizer folds the weight decay to θ − θ·fl(ηλ) except on 0-d variables
(measured against Keras 3.15.1: docs/conventions.md; one-element float32
variables under a ``LearningRateSchedule`` keep (θλ)η, not modelled).
Not modelled either: ``model.fit`` on JAX, where XLA fuses a reduction that
produces a gradient (a bias's) into the update and contracts
v = fma(g, −η, fl(vμ)) for that tensor instead, and Keras's torch backend
under ``jit_compile`` (``torch.compile``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .._checks import describe
from .._engine.ir import STORAGE, VIA_HOST, VIA_OPMATH, Hyper, Program, Rounding
from .._typing import ArrayTree
from . import _jax, _keras_torch
from ._aten import check_capability, check_threads, elementwise, runs_here
from ._common import (
    FLUSHED,
    IN_OPMATH,
    ZERO,
    donated,
    float32,
    from_zero,
    native_here,
    not_native_here,
    number,
    run,
)
from ._keras_xla import compiled_program, graph_kind, graph_program, run_by_size, run_grouped
from ._recipes import velocity_lr_inside
from ._registry import REAL_FLOATS, Capabilities, Convention, Hypers, Variant

__all__ = ["BACKENDS", "CONVENTION", "JIT_BACKENDS", "LEARNING_RATE_DTYPES", "sgd"]

T = TypeVar("T", bound=ArrayTree)

#: The Keras backends this convention models.
BACKENDS = ("tensorflow", "jax", "numpy", "torch")
#: The backends whose compiled step (``jit=True``) this convention models.
JIT_BACKENDS = ("jax", "tensorflow")
#: The dtypes a learning rate reaches the update in (see ``sgd``).
LEARNING_RATE_DTYPES = ("float32", "float64")

_ROUNDING = {
    "tensorflow": Rounding(contract=False, compute=IN_OPMATH, flush=FLUSHED),
    "jax": Rounding(contract=False, compute=IN_OPMATH, flush=FLUSHED),
    "numpy": Rounding(
        contract=False, compute={"float64": "float32"}, result={"float64": "float32"}
    ),
}


def sgd(
    variable: T,
    gradient: T,
    momentum_var: T | None,
    *,
    learning_rate: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float | None = None,
    backend: str = "tensorflow",
    learning_rate_dtype: str = "float32",
    threads: int | None = None,
    cpu_capability: str | None = None,
    jit: bool = False,
    tf_function: bool = False,
    native_float16: bool | None = None,
    out: tuple[T | None, T | None] | None = None,
) -> tuple[T, T | None]:
    """One ``SGD.apply`` of Keras 3 on ``backend``, without mutating its inputs.

    Args:
        variable: the variables θ (an array or a pytree of arrays).
        gradient: their gradients.
        momentum_var: the velocities v, or None for zeros.
        learning_rate, momentum, nesterov, weight_decay: as in
            ``keras.optimizers.SGD``, validated with its messages.
        backend: one of :data:`BACKENDS`.
        learning_rate_dtype: the dtype in which the learning rate reaches the
            update: ``"float32"`` for a float (Keras's float32 variable);
            ``"float64"`` for a callable or schedule returning a Python float
            on the ``"jax"`` (x64) or ``"torch"`` backend.
        threads, cpu_capability: the torch backend's intra-op threads and
            CPU kernels, as :func:`nagref.conventions.pytorch.sgd` takes
            them (None: torch's here). Other backends take None only.
        jit: model the step compiled by XLA (see the module docstring):
            ``jax.jit(optimizer.stateless_apply)`` on ``"jax"``,
            ``tf.function(optimizer.apply, jit_compile=True)`` on
            ``"tensorflow"``; those two backends only (Keras's torch backend
            compiles with ``torch.compile``, not modelled), with a float32
            learning rate. Leaves of one element and larger leaves fold the
            weight decay differently, so the leaves are run in those two
            groups (the results are the same pytrees, in order).
        tf_function: ``optimizer.apply`` inside a ``tf.function`` (as
            ``model.fit`` runs it) on ``"tensorflow"``, not compiled:
            TensorFlow's graph optimizer folds the weight decay,
            θ − θ·fl(ηλ), except on 0-d variables
            (:func:`nagref.conventions._keras_xla.graph_decay`; a float or
            callable learning rate); the rest, and every step without weight
            decay, as eagerly.
        native_float16: whether the CPU has native float16 arithmetic
            (AVX512-FP16), which XLA uses for float16 under ``jit``; None
            asks the CPU this runs on. Only float16 under ``jit`` reads it.
        out: ``(variable_out, momentum_var_out)``: arrays to write the results into
            (they may be the inputs themselves, an in-place step; either may
            be None for a new array), or None for new arrays.

    Returns:
        ``(variable, momentum_var)``; the velocity is None when momentum == 0.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
        raise ValueError(
            "Argument `learning_rate` should be float, or an instance of "
            "LearningRateSchedule, or a callable (that takes in the current "
            "iteration value and returns the corresponding learning rate value). "
            f"Received instead: learning_rate={learning_rate}"
        )
    if not isinstance(momentum, float) or momentum < 0 or momentum > 1:
        raise ValueError("`momentum` must be a float between [0, 1].")
    if learning_rate_dtype not in LEARNING_RATE_DTYPES:
        raise ValueError(
            f"learning_rate_dtype must be one of {', '.join(LEARNING_RATE_DTYPES)}, "
            f"got {learning_rate_dtype!r}"
        )
    _check_compiled(backend, learning_rate_dtype, jit, tf_function, native_float16)
    torch = backend == "torch"
    if not torch and (threads is not None or cpu_capability is not None):
        raise ValueError(
            f"threads and cpu_capability are the torch backend's; backend={backend!r} "
            "takes None for both"
        )
    lr = float(learning_rate)
    wide = learning_rate_dtype == "float64"
    wd = None if weight_decay is None else number("weight_decay", weight_decay)
    recipe = (
        _keras_torch.recipe(momentum, nesterov, wd)
        if torch
        else velocity_lr_inside(momentum, nesterov, wd)
    )
    through32 = ("float32", "storage")
    # TensorFlow casts a Python float through float32; NumPy converts it on the
    # host (ml_dtypes: bfloat16 through float32 before 0.7), as JAX does under
    # jax.jit; eager JAX as _at_run_time (below) says
    direct = through32 if backend == "tensorflow" else VIA_HOST
    hypers = {
        # a float32 variable cast to the dtype, or (JAX) the Python float
        # itself, which jnp converts on the host
        "lr": Hyper(lr, VIA_HOST if wide else through32),
        "neg_lr": Hyper(-lr if wide else -float32(lr), VIA_OPMATH),  # alpha=-lr
        "mu": Hyper(momentum, VIA_OPMATH if torch else direct),
        "wd": Hyper(0.0 if wd is None else wd, direct),
        # 1 - wd * lr: float32 tensor arithmetic, or (a float64 lr) a Python
        # float that _foreach_mul_ rounds to the dtype
        "decay": (
            Hyper(1.0 - (wd or 0.0) * lr, VIA_OPMATH)
            if wide
            else Hyper(_keras_torch.decay_factor(lr, wd), ("float32",))
        ),
    }
    trees: dict[str, Any] = {"variable": variable, "gradient": gradient}
    inputs: tuple[str, ...] = ("p", "g")
    if momentum != 0 and momentum_var is not None:
        trees["momentum_var"] = momentum_var
        inputs += ("v",)
    elif momentum != 0:  # the velocity variables start at zero
        recipe = (*from_zero("v"), *recipe)
        hypers["zero"] = ZERO
    outputs = ("p", "v" if momentum != 0 else None)
    if tf_function and wd is not None:  # the graph optimizer folds the weight decay
        eager = Program(recipe, _ROUNDING[backend], inputs, outputs, hypers)
        graph = graph_program(eager)
        new_variable, new_velocity = run_grouped(
            trees, graph, donated(out, "momentum_var", momentum != 0), graph_kind
        )
        return new_variable, new_velocity
    if jit:
        eager = Program(recipe, _ROUNDING[backend], inputs, outputs, hypers)
        compiled = compiled_program(eager, momentum, nesterov, wd, native_float16)
        new_variable, new_velocity = run_by_size(
            trees, compiled, donated(out, "momentum_var", momentum != 0), wd is not None
        )
        return new_variable, new_velocity
    # the torch backend's rounding is torch's elementwise kernels' (pytorch.elementwise)
    rounding, split = (
        elementwise(recipe, check_capability(cpu_capability), check_threads(threads))
        if torch
        else (_ROUNDING[backend], None)
    )
    program = Program(recipe, rounding, inputs, outputs, hypers, split)
    names = ("lr", "mu", "wd") if wide else ("mu", "wd")  # eager JAX: cast as ops.cast does
    at = _at_run_time(program, names) if backend == "jax" else program
    new_variable, new_velocity = run(trees, at, donated(out, "momentum_var", momentum != 0))
    return new_variable, new_velocity


def _check_compiled(
    backend: str, learning_rate_dtype: str, jit: bool, tf_function: bool, native: bool | None
) -> None:
    """The arguments that pick a compiled or graph step: refused where none is modelled."""
    if not isinstance(jit, bool):
        raise TypeError(f"jit must be a bool, got {describe(jit)}")
    _jax.native(native)  # checked: a bool, or None (this CPU's)
    if jit and backend not in JIT_BACKENDS:
        raise ValueError(
            f"jit=True models XLA on the jax and tensorflow backends, got backend={backend!r}"
            + (
                " (Keras's torch backend compiles with torch.compile, which is not modelled)"
                if backend == "torch"
                else ""
            )
        )
    if not isinstance(tf_function, bool):
        raise TypeError(f"tf_function must be a bool, got {describe(tf_function)}")
    if tf_function and (backend != "tensorflow" or jit):
        raise ValueError(
            "tf_function=True models tf.function(optimizer.apply) on the tensorflow backend, "
            f"uncompiled; got backend={backend!r}, jit={jit!r}"
        )
    if jit and learning_rate_dtype != "float32":
        raise ValueError(
            "jit=True models a float learning rate (learning_rate_dtype='float32'), "
            f"got learning_rate_dtype={learning_rate_dtype!r}"
        )


def _at_run_time(p: Program, names: tuple[str, ...]) -> Callable[[str], Program]:
    """Program ``p`` with the hyperparameters ``names`` converted as eager Keras on JAX
    casts a Python float: float16 directly, on a CPU with AVX512-FP16 and without it
    alike; bfloat16 through float32, whatever ``ml_dtypes`` does on the host (measured
    with ml_dtypes 0.6 and 0.7, on an AVX512-FP16 Intel CPU and an AVX2 AMD EPYC)."""

    def per_dtype(dtype: str) -> Program:
        via = (STORAGE,) if dtype == "float16" else VIA_OPMATH
        hypers = {k: Hyper(h.value, via) if k in names else h for k, h in p.hypers.items()}
        return p._replace(hypers=hypers)

    return per_dtype


def _keywords(h: Hypers) -> dict[str, object]:
    keywords: dict[str, object] = {
        "learning_rate": h.lr,
        "momentum": float(h.momentum or 0.0),
        "nesterov": h.nesterov,
    }
    if h.weight_decay is not None:
        keywords["weight_decay"] = h.weight_decay
    return keywords


#: The torch backend's variants pin one thread and the CPU capability (see
#: :mod:`nagref.conventions.pytorch`), so that a vector does not depend on the
#: machine; the live driver sets them before Keras imports torch.
_TORCH: dict[str, object] = {"backend": "torch", "threads": 1, "cpu_capability": "avx512"}

CONVENTION = Convention(
    name="keras",
    function=sgd,
    roles=("param", "grad", "state"),
    state="momentum_var",
    first_state="zeros",
    stores="v",
    keywords=_keywords,
    variants=(
        *(Variant(backend, {"backend": backend}) for backend in BACKENDS if backend != "torch"),
        # optimizer.apply in a tf.function (model.fit): the weight decay folded
        Variant("tensorflow-function", {"backend": "tensorflow", "tf_function": True}),
        Variant("torch", _TORCH, live=runs_here("avx512")),
        # a callable learning rate: a float64 value on these two backends
        Variant("jax-callable-lr", {"backend": "jax", "learning_rate_dtype": "float64"}),
        Variant(
            "torch-callable-lr",
            {**_TORCH, "learning_rate_dtype": "float64"},
            live=runs_here("avx512"),
        ),
        # torch's scalar kernels (ATEN_CPU_CAPABILITY=default): nothing fuses
        Variant(
            "torch-default", {**_TORCH, "cpu_capability": "default"}, live=runs_here("default")
        ),
        # compiled by XLA, a compilation per case; float16 as on a CPU without
        # AVX512-FP16 (here: XLA kept to AVX2), or with it (``-avx512fp16``)
        *(
            Variant(
                f"{backend}-jit",
                {"backend": backend, "jit": True, "native_float16": False},
                REAL_FLOATS,
                not_native_here,
                cost=10,
            )
            for backend in JIT_BACKENDS
        ),
        *(
            Variant(
                f"{backend}-jit-avx512fp16",
                {"backend": backend, "jit": True, "native_float16": True},
                ("float16",),
                native_here,
                cost=10,
            )
            for backend in JIT_BACKENDS
        ),
    ),
    capabilities=Capabilities(weight_decay=True, changing_lr=False),
    requirement="keras tensorflow-cpu jax torch==2.13.0",
    process_per_variant=True,
)
