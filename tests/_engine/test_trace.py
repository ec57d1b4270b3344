"""nagref._engine.trace: leaf functions become programs of their own arithmetic."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from nagref._apply import apply
from nagref._engine.ir import Hyper, Instr, Program, bind, instr
from nagref._engine.trace import CANONICAL, Tracer, trace


def _momentum(w: Any, g: Any, v: Any, *, lr: Any, momentum: Any) -> tuple[Any, Any]:
    v_new = momentum * v + lr * g
    return w - v_new, v_new


def test_operations_are_recorded_in_evaluation_order_with_operands_as_written() -> None:
    program = trace(_momentum)
    assert list(program.recipe) == [
        Instr("_t0", "mul", ("momentum", "v")),
        Instr("_t1", "mul", ("lr", "g")),
        Instr("_t2", "add", ("_t0", "_t1")),
        Instr("_t3", "sub", ("w", "_t2")),
    ]
    assert program.inputs == ("w", "g", "v")  # the positional parameters
    assert program.outputs == ("_t3", "_t2")
    assert dict(program.hypers) == {}  # keyword-only parameters are bound by the caller
    assert program.rounding == CANONICAL
    assert CANONICAL.contract is False
    assert program.split is None


def test_reflected_operators_keep_the_written_operand_order() -> None:
    def leaf(w: Any, g: Any) -> tuple[Any, ...]:
        return (2 * w, 3 + g, 1 - w, 4 / g, -w, w / g, w - g)

    program = trace(leaf)
    assert [(i.op, i.args) for i in program.recipe] == [
        ("mul", ("_k0", "w")),
        ("add", ("_k1", "g")),
        ("sub", ("_k2", "w")),
        ("div", ("_k3", "g")),
        ("neg", ("w",)),
        ("div", ("w", "g")),
        ("sub", ("w", "g")),
    ]
    assert dict(program.hypers) == {
        "_k0": Hyper(2.0),
        "_k1": Hyper(3.0),
        "_k2": Hyper(1.0),
        "_k3": Hyper(4.0),
    }


def test_literals_are_constant_registers_one_per_distinct_value() -> None:
    def leaf(w: Any, *, mu: Any) -> tuple[Any, ...]:
        return ((1 + mu) * w - 1 * w + w * 0.5,)

    program = trace(leaf)
    assert [(i.op, i.args) for i in program.recipe] == [
        ("add", ("_k0", "mu")),
        ("mul", ("_t0", "w")),
        ("mul", ("_k0", "w")),  # the literal 1 again: the same register
        ("sub", ("_t1", "_t2")),
        ("mul", ("w", "_k1")),
        ("add", ("_t3", "_t4")),
    ]
    assert dict(program.hypers) == {"_k0": Hyper(1.0), "_k1": Hyper(0.5)}
    # a literal is rounded once, to the storage dtype, and is a Python float
    assert all(type(h.value) is float and h.via == ("storage",) for h in program.hypers.values())


def test_signed_zero_literals_are_distinct_registers() -> None:
    def leaf(w: Any) -> tuple[Any, ...]:
        return (w + 0.0, w + -0.0, w + 0)

    program = trace(leaf)
    assert [i.args for i in program.recipe] == [("w", "_k0"), ("w", "_k1"), ("w", "_k0")]
    zero, negative_zero = program.hypers["_k0"].value, program.hypers["_k1"].value
    assert zero == 0.0
    assert math.copysign(1.0, zero) == 1.0
    assert negative_zero == 0.0
    assert math.copysign(1.0, negative_zero) == -1.0


def test_signed_zero_literals_give_the_signs_ieee_addition_gives() -> None:
    def leaf(w: Any) -> tuple[Any, ...]:
        return (w + 0.0, w + -0.0)

    w = np.array([-0.0, 0.0, 1.0], np.float32)
    plus, minus = apply(trace(leaf), {"w": w})
    assert np.signbit(plus).tolist() == [False, False, False]  # -0 + +0 = +0
    assert np.signbit(minus).tolist() == [True, False, False]  # -0 + -0 = -0


def test_division_is_traced_and_runs_as_ieee_division() -> None:
    def leaf(w: Any, g: Any) -> tuple[Any, ...]:
        return (w / g, 1 / g)

    program = trace(leaf)
    assert [(i.op, i.args) for i in program.recipe] == [
        ("div", ("w", "g")),
        ("div", ("_k0", "g")),
    ]
    w = np.array([1.0, -1.0, 0.0, 3.0], np.float32)
    g = np.array([3.0, 0.0, -0.0, 7.0], np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        quotient, reciprocal = apply(program, {"w": w, "g": g})
        assert quotient.tobytes() == (w / g).tobytes()
        assert reciprocal.tobytes() == (np.float32(1) / g).tobytes()


def test_a_returned_input_hyperparameter_or_literal_is_copied() -> None:
    def leaf(w: Any, g: Any, *, lr: Any) -> tuple[Any, ...]:
        return (w, g * 2, lr, 2)

    program = trace(leaf)
    assert list(program.recipe) == [
        Instr("_t0", "mul", ("g", "_k0")),
        Instr("_t1", "copy", ("w",)),
        Instr("_t2", "copy", ("lr",)),
        Instr("_t3", "copy", ("_k0",)),
    ]
    assert program.outputs == ("_t1", "_t0", "_t2", "_t3")


def test_a_returned_input_is_a_new_array() -> None:
    def leaf(w: Any, g: Any) -> tuple[Any, ...]:
        return (w, g)

    w = np.array([1.0, -0.0, 2.0], np.float64)
    g = np.array([3.0, 4.0, 5.0], np.float64)
    new_w, new_g = apply(trace(leaf), {"w": w, "g": g})
    assert new_w is not w
    assert new_g is not g
    assert not np.shares_memory(new_w, w)
    assert new_w.tobytes() == w.tobytes()
    new_w[0] = 9.0
    assert w[0] == 1.0


def test_trace_is_cached_per_function() -> None:
    def first(w: Any, *, lr: Any) -> tuple[Any]:
        return (w * lr,)

    def second(w: Any, *, lr: Any) -> tuple[Any]:
        return (w * lr,)

    assert trace(first) is trace(first)
    assert trace(second) is not trace(first)
    assert trace(second) == trace(first)  # the same arithmetic, a separate entry


def test_non_numbers_are_refused() -> None:
    def with_bool(w: Any) -> tuple[Any]:
        return (w * True,)

    def with_string(w: Any) -> tuple[Any]:
        return (w * "2",)

    with pytest.raises(TypeError, match="a traced rule may combine its arguments and numbers"):
        trace(with_bool)
    with pytest.raises(TypeError, match=r"got '2'"):
        trace(with_string)


def test_tracer_program_for_expressions_assembled_at_run_time() -> None:
    tracer = Tracer()
    w, v, beta = tracer.symbol("w"), tracer.symbol("v"), tracer.symbol("beta")
    one = tracer.number(1.0)
    scaled = (one + beta) * v
    program = tracer.program(("w", "v"), (w - scaled, v, one))
    assert list(program.recipe) == [
        instr("_t0", "add", "_k0", "beta"),
        instr("_t1", "mul", "_t0", "v"),
        instr("_t2", "sub", "w", "_t1"),
        instr("_t3", "copy", "v"),  # an input returned: copied
        instr("_t4", "copy", "_k0"),  # a literal returned: copied
    ]
    assert program.inputs == ("w", "v")
    assert program.outputs == ("_t2", "_t3", "_t4")
    assert dict(program.hypers) == {"_k0": Hyper(1.0)}


def test_tracer_numbers_are_shared_with_literals_and_keep_the_sign_of_zero() -> None:
    tracer = Tracer()
    w = tracer.symbol("w")
    half = tracer.number(0.5)
    negative_zero = tracer.number(-0.0)
    program = tracer.program(("w",), (w * 0.5 + half, w + negative_zero, w + 0.0))
    assert [i.args for i in program.recipe] == [
        ("w", "_k0"),
        ("_t0", "_k0"),
        ("w", "_k1"),
        ("w", "_k2"),
    ]
    assert math.copysign(1.0, program.hypers["_k1"].value) == -1.0
    assert math.copysign(1.0, program.hypers["_k2"].value) == 1.0


def test_a_traced_and_bound_program_computes_the_functions_arithmetic() -> None:
    rng = np.random.default_rng(3)
    w, g, v = (rng.standard_normal(37).astype(np.float32) for _ in range(3))
    v[:3] = [0.0, -0.0, 0.0]
    program: Program = bind(trace(_momentum), {"lr": Hyper(0.1), "momentum": Hyper(0.9)})
    new_w, new_v = apply(program, {"w": w, "g": g, "v": v})
    want_w, want_v = _momentum(w, g, v, lr=np.float32(0.1), momentum=np.float32(0.9))
    assert new_v.tobytes() == want_v.tobytes()
    assert new_w.tobytes() == want_w.tobytes()
