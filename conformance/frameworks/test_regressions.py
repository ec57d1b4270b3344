"""Cases that random search found, kept as fixed tests.

Signed zeros reach the live frameworks intact. TensorFlow's eager conversion
caches Python numbers by value, and +0.0 equals -0.0, so converting -0.0
after +0.0 returns +0.0. A NumPy ``float64`` scalar is a Python ``float``,
so a worker that iterated a 1-d gradient array would hand TensorFlow a cached
+0.0 for a -0.0 gradient and report a spurious sign-of-zero mismatch (CI met
one, in keras-tensorflow-float64, after hundreds of cases). These tests pin
both the framework's behaviour and the worker's defence against it.

PyTorch converts a Python scalar to Half through float, so a float16
``alpha`` is rounded twice; the CLI's random cases found an lr for which that
changes the result. The 72,500-case run then found the same in Optax under
``jax.jit`` (XLA converts a float64 schedule value to float16 through
float32), and TensorFlow's ``tf.constant(x, float16)`` does it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from conformance import require
from nagref._compat import named_dtype
from nagref._dtypes import round_to
from nagref.conventions import REGISTRY, optax, pytorch, tensorflow
from nagref.live import VARIANTS, Spec, Worker, check, compare, run_nagref, worker_variant

torch = require("torch")


def test_tensorflow_conflates_signed_zero_python_scalars() -> None:
    # in a child process, like every TensorFlow run here
    probe = (
        "import numpy as np, tensorflow as tf\n"
        "tf.constant(np.float64(0.0))\n"
        "print(np.signbit(tf.constant(np.float64(-0.0)).numpy()),"
        " np.signbit(tf.constant(np.array(-0.0)).numpy()))"
    )
    # the scalar -0.0 came back as the cache's +0.0; the 0-d array kept its sign
    assert _tensorflow_prints(probe).split() == ["False", "True"]


def _tensorflow_prints(probe: str) -> str:
    """What ``probe`` prints, run in a child process, as every TensorFlow run here."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout


def _spec(convention: str, variant: str, *, seed: int, steps: int, momentum: float) -> Spec:
    return Spec(
        convention=convention,
        variant=variant,
        dtype="float64",
        shape=(),
        seed=seed,
        lr=(0.5,) * steps,
        momentum=momentum,
        nesterov=False,
        dampening=0.0,
        weight_decay=None,
        maximize=False,
        special=0.3 if seed == 0 else 0.05,
        scale=1.0,
    )


@pytest.mark.parametrize(
    ("convention", "variant"), [("keras", "tensorflow"), ("tensorflow", "apply_momentum")]
)
def test_a_negative_zero_gradient_after_a_positive_one(convention: str, variant: str) -> None:
    # seed 0 draws +0.0 gradients; seed 403 draws -0.0 at step 75, where a
    # momentum that float32 flushes to zero leaves the velocity's sign to it
    # (the case CI found)
    first = _spec(convention, variant, seed=0, steps=8, momentum=0.5)
    second = _spec(convention, variant, seed=403, steps=131, momentum=2.4569123984e-302)
    worker = Worker(convention, worker_variant(convention, variant))
    try:
        for spec in (first, second):
            result = check(worker, spec)
            assert result.bitwise, result.first
    finally:
        worker.close()


@pytest.mark.parametrize("foreach", [False, True])
def test_torch_rounds_a_float16_alpha_through_float32(foreach: bool) -> None:
    lr, p, g = 0.003417014972781023, -0.10968017578125, -2.15234375
    assert np.float16(np.float32(lr)) != np.float16(lr)
    param = torch.full((40,), p, dtype=torch.float16)  # the SIMD body and its tail
    param.grad = torch.full((40,), g, dtype=torch.float16)
    ours, _ = pytorch.sgd(param.numpy(), param.grad.numpy(), None, lr=lr, foreach=foreach)
    torch.optim.SGD([param], lr=lr, foreach=foreach).step()
    assert param.numpy().tobytes() == ours.tobytes()


# A learning rate and a momentum whose 16-bit value depends on whether the
# float64 is rounded once or through float32: torch, TensorFlow and XLA at run
# time round twice, NumPy and XLA's constant folding once (in float16; in
# bfloat16 every framework here rounds twice, ml_dtypes on the host too).
TWICE_LR, TWICE_MU = 0.288696291246982, 0.51879885
# bfloat16 ties: each is a bfloat16 midpoint whose lower neighbour is even,
# nudged up by 2**-30. Rounded once it goes up; through float32 it lands on
# the midpoint first and then goes down to even.
TWICE_LR16 = 0.125 * (1 + 2.0**-8) * (1 + 2.0**-30)
TWICE_MU16 = 0.5 * (1 + 5 * 2.0**-8) * (1 + 2.0**-30)
TWICE = {"float16": (TWICE_LR, TWICE_MU), "bfloat16": (TWICE_LR16, TWICE_MU16)}
HALF_ROWS = [
    (convention, variant, dtype)
    for convention, variants in VARIANTS.items()
    for variant, dtypes in variants.items()
    for dtype in TWICE
    if dtype in dtypes
]


@pytest.mark.parametrize("dtype", list(TWICE))
def test_the_ties_round_differently_once_and_through_float32(dtype: str) -> None:
    for x in TWICE[dtype]:
        assert round_to(x, dtype) != round_to(round_to(x, "float32"), dtype)


@pytest.mark.parametrize(("convention", "variant", "dtype"), HALF_ROWS)
def test_16_bit_hyperparameters_that_round_differently_through_float32(
    convention: str, variant: str, dtype: str
) -> None:
    twice_lr, twice_mu = TWICE[dtype]
    record = REGISTRY[convention]
    changing = record.can(record.variant(variant)).changing_lr
    lr = (twice_lr, 0.1) * 3 + (twice_lr,) if changing else (twice_lr,) * 7
    worker = Worker(convention, worker_variant(convention, variant))
    try:
        for nesterov in (False, True):
            spec = Spec(
                convention=convention,
                variant=variant,
                dtype=dtype,
                shape=(37,),
                seed=5,
                lr=lr,
                momentum=twice_mu,
                nesterov=nesterov,
                dampening=0.0,
                weight_decay=None,
                maximize=False,
                special=0.0,
                scale=1.0,
            )
            result = check(worker, spec)
            assert result.bitwise, (nesterov, result.first)
    finally:
        worker.close()


def test_tensorflow_v1_momentum_optimizer_rounds_its_hyperparameters_to_float32() -> None:
    # tf.compat.v1.train.MomentumOptimizer makes lr and momentum float32
    # tensors and casts them to float64 variables: the raw op's model (its
    # hyperparameters rounded straight to float64) differs at every step
    spec = replace(
        _spec("tensorflow", "momentum_optimizer_v1", seed=11, steps=4, momentum=0.9),
        shape=(37,),
        lr=(0.1, 0.03, 0.1, 0.2),
        special=0.0,
    )
    worker = Worker("tensorflow", worker_variant("tensorflow", "momentum_optimizer_v1"))
    try:
        for nesterov in (False, True):
            case = replace(spec, nesterov=nesterov)
            live = worker.run(case)
            assert compare(case, live, run_nagref(case)).bitwise
            as_raw_op = run_nagref(replace(case, variant="apply_momentum"))
            # more elements than all the parameters of all the steps differ
            assert compare(case, live, as_raw_op).mismatches > 37 * len(spec.lr)
    finally:
        worker.close()


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_hands_a_callable_learning_rate_to_float64_variables_unrounded(
    backend: str,
) -> None:
    # a callable (or a LearningRateSchedule) returning a Python float: on the
    # JAX (x64) and torch backends, float64 variables see the float64 value,
    # where a float learning rate is a float32 variable
    variant = f"{backend}-callable-lr"
    spec = replace(
        _spec("keras", variant, seed=5, steps=3, momentum=0.9),
        shape=(37,),
        lr=(0.9000000000000001,) * 3,
        special=0.0,
    )
    worker = Worker("keras", worker_variant("keras", variant))
    try:
        live = worker.run(spec)
        assert compare(spec, live, run_nagref(spec)).bitwise
        as_float = run_nagref(replace(spec, variant=backend))  # η rounded to float32
        assert compare(spec, live, as_float).mismatches > 37
    finally:
        worker.close()


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_optax_keeps_a_float32_trace_of_bfloat16_parameters(mode: str) -> None:
    # accumulator_dtype=jnp.float32: the trace, and the update computed from
    # it, stay float32; modelled as the plain bfloat16 update it differs
    variant = f"{mode}-float32-trace"
    spec = replace(
        _spec("optax", variant, seed=7, steps=5, momentum=0.9),
        dtype="bfloat16",
        shape=(37,),
        lr=(0.1, 0.03, 0.1, 0.2, 0.1),
        special=0.0,
    )
    worker = Worker("optax", worker_variant("optax", variant))
    try:
        for nesterov in (False, True):
            case = replace(spec, nesterov=nesterov)
            live = worker.run(case)
            trace = live[0][1]
            assert trace is not None
            assert trace.dtype == np.float32
            assert compare(case, live, run_nagref(case)).bitwise
            plain = run_nagref(replace(case, variant=mode))  # the trace in bfloat16
            differing = sum(
                int(np.count_nonzero(ours.astype(np.float64) != theirs.astype(np.float64)))
                for (ours, _), (theirs, _) in zip(plain, live, strict=True)
            )
            assert differing > 0
    finally:
        worker.close()


def test_tensorflow_flushes_bfloat16_in_float32_before_rounding() -> None:
    # g·lr = 2**-126 - 2**-134 is a float32 subnormal, flushed to zero there;
    # rounded to bfloat16 first it would be a tie that goes up to 2**-126, a
    # normal number that survives the flush
    probe = (
        "import numpy as np, tensorflow as tf\n"
        "var = tf.Variable(tf.zeros((1,), tf.bfloat16))\n"
        "accum = tf.Variable(tf.zeros((1,), tf.bfloat16))\n"
        "grad = tf.constant([1 - 2.0**-8], tf.bfloat16)\n"
        "tf.raw_ops.ResourceApplyMomentum(var=var.handle, accum=accum.handle,"
        " lr=tf.constant(2.0**-126, tf.bfloat16), grad=grad,"
        " momentum=tf.constant(0.5, tf.bfloat16))\n"
        "print(repr(float(tf.cast(var, tf.float64).numpy()[0])))"
    )
    printed = _tensorflow_prints(probe)
    bf16 = named_dtype(np, "bfloat16")
    var, accum = np.zeros(1, bf16), np.zeros(1, bf16)
    grad = np.array([1 - 2.0**-8], bf16)
    ours, _ = tensorflow.apply_momentum(var, accum, grad, lr=2.0**-126, momentum=0.5)
    live = float(printed.split()[-1])
    assert live == 0.0
    assert not np.signbit(live)
    assert float(ours[0]) == live
    assert not np.signbit(ours[0])
    # flushing after the rounding to bfloat16 would keep -2**-126
    assert round_to(-(1 - 2.0**-8) * 2.0**-126, "bfloat16") == -(2.0**-126)


def test_optax_under_jit_folds_a_constant_learning_rate_rounding_it_once() -> None:
    # a schedule returning a float64 constant: XLA folds its conversion to
    # bfloat16 (once, directly), where a value indexed by the step count is
    # converted at run time, through float32
    spec = replace(
        _spec("optax", "jit-array-lr", seed=7, steps=3, momentum=TWICE_MU16),
        dtype="bfloat16",
        shape=(37,),
        lr=(TWICE_LR16,) * 3,
        special=0.0,
    )
    worker = Worker("optax", worker_variant("optax", "jit-array-lr"))
    try:
        for nesterov in (False, True):
            case = replace(spec, nesterov=nesterov)
            live = worker.run(case)
            assert compare(case, live, run_nagref(case)).bitwise
            at_run_time = run_nagref(replace(case, variant="jit"))
            assert compare(case, live, at_run_time).mismatches >= 37
    finally:
        worker.close()


def test_optax_native_float16_leaves_bfloat16_alone() -> None:
    # AVX512-FP16 converts float16 directly; bfloat16 still goes through
    # float32 at run time (the flag once changed bfloat16's conversions too)
    param = np.zeros(40, dtype=named_dtype(np, "bfloat16"))
    grad = np.ones(40, dtype=param.dtype)
    for jit in (False, True):
        steps = [
            optax.sgd(param, grad, None, learning_rate=TWICE_LR16, jit=jit, native_float16=flag)[0]
            for flag in (False, True)
        ]
        assert steps[0].tobytes() == steps[1].tobytes()
        expected = -round_to(round_to(TWICE_LR16, "float32"), "bfloat16")
        assert float(steps[0][0]) == expected != -round_to(TWICE_LR16, "bfloat16")
