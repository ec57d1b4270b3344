"""Bad input: a clear exception naming the argument and the value; nothing mutated."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from backends import XP, Backend

import nagref
from nagref import _dtypes


def _three(xp: XP, shape: tuple[int, ...] = (3,), dtype: str = "float32") -> list[Any]:
    return [xp.asarray(np.full(shape, k, dtype=dtype)) for k in (1.0, 2.0, 3.0)]


CALLS = {
    "sgd": lambda w, g, v, **h: nagref.sgd(w, g, lr=h.get("lr", 0.1)),
    "momentum": lambda w, g, v, **h: nagref.momentum(w, g, v, **{"lr": 0.1, "momentum": 0.9, **h}),
    "nag": lambda w, g, v, **h: nagref.nag(w, g, v, **{"lr": 0.1, "momentum": 0.9, **h}),
    "lookahead": lambda w, g, v, **h: nagref.lookahead(w, v, momentum=h.get("momentum", 0.9)),
}


@pytest.mark.parametrize("rule", ["sgd", "momentum", "nag"])
@pytest.mark.parametrize("bad", [-0.1, -1e-300, math.nan, math.inf, -math.inf])
def test_lr_negative_or_not_finite(xp: XP, rule: str, bad: float) -> None:
    with pytest.raises(
        ValueError, match=rf"^lr must be a finite number >= 0, got {re.escape(repr(bad))}$"
    ):
        CALLS[rule](*_three(xp), lr=bad)


@pytest.mark.parametrize("rule", ["momentum", "nag", "lookahead"])
@pytest.mark.parametrize("bad", [1.0, 1.5, -0.01, math.nan, math.inf])
def test_momentum_outside_zero_one(xp: XP, rule: str, bad: float) -> None:
    with pytest.raises(
        ValueError, match=rf"^momentum must be in \[0, 1\), got {re.escape(repr(bad))}$"
    ):
        CALLS[rule](*_three(xp), momentum=bad)


def test_array_hyperparameters_are_range_checked(xp: XP) -> None:
    if xp.contracts or xp.backend is Backend.DASK:
        pytest.skip("a traced or lazy value cannot be read without computing; see docs/rules.md")
    with pytest.raises(ValueError, match=r"^lr must be a finite number >= 0, got -0\.5 \("):
        nagref.sgd(*_three(xp)[:2], lr=xp.asarray(-0.5, "float64"))
    with pytest.raises(ValueError, match=r"^momentum must be in \[0, 1\), got 1\.0 \("):
        nagref.lookahead(*_three(xp)[:2], momentum=xp.asarray(1.0, "float32"))


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (True, TypeError, r"lr must be a real number or a 0-d real floating array, got bool True"),
        ("0.1", TypeError, r"got str '0\.1'"),
        (0.1j, TypeError, r"got complex 0\.1j"),
        (None, TypeError, r"got NoneType None"),
    ],
)
def test_lr_of_the_wrong_type(xp: XP, bad: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        nagref.sgd(*_three(xp)[:2], lr=bad)  # type: ignore[arg-type]


def test_lr_arrays_must_be_zero_dimensional_and_real_floating(xp: XP) -> None:
    w, g = _three(xp)[:2]
    with pytest.raises(ValueError, match=r"^lr must be a 0-d array, got shape \(2,\)$"):
        nagref.sgd(w, g, lr=xp.asarray([0.1, 0.2], "float32"))
    with pytest.raises(TypeError, match=r"^lr must have a real floating dtype, got .*int"):
        nagref.sgd(w, g, lr=xp.asarray(1, "int32"))
    with pytest.raises(
        TypeError, match=r"^momentum must have a real floating dtype, got .*complex"
    ):
        nagref.lookahead(w, g, momentum=xp.asarray(0.5, "complex64"))


def test_numpy_scalars_are_read_as_numbers(xp: XP) -> None:
    w, g = _three(xp)[:2]
    by_scalar = xp.to_numpy(nagref.sgd(w, g, lr=np.float32(0.25)))
    by_float = xp.to_numpy(nagref.sgd(w, g, lr=0.25))
    np.testing.assert_array_equal(by_scalar, by_float)


def test_shapes_must_match(xp: XP) -> None:
    w, g, v = _three(xp)
    with pytest.raises(ValueError, match=r"^grad has shape \(2, 2\) but param has shape \(3,\)$"):
        nagref.sgd(w, xp.asarray(np.ones((2, 2), "float32")), lr=0.1)
    with pytest.raises(
        ValueError, match=r"^velocity\['b'\] has shape \(\) but param\['b'\] has shape \(3,\)$"
    ):
        nagref.nag(
            {"a": w, "b": w},
            {"a": g, "b": g},
            {"a": v, "b": xp.asarray(np.float32(1))},
            lr=0.1,
            momentum=0.5,
        )


@pytest.mark.parametrize(
    ("grad", "message"),
    [
        (
            {"a": 0, "c": 0},
            r"grad does not match the structure of the parameters: expected a dict "
            r"with keys \['a', 'b'\], got a dict with keys \['a', 'c'\]",
        ),
        (
            {"a": 0, "b": [0, 0]},
            r"grad\['b'\] does not match .*: expected a list of length 1, "
            r"got a list of length 2",
        ),
        (
            {"a": 0, "b": (0,)},
            r"grad\['b'\] does not match .*: expected a list of length 1, "
            r"got a tuple of length 1",
        ),
        (
            {"a": {"x": 0}, "b": [0]},
            r"grad\['a'\] does not match .*: expected an array, got a dict",
        ),
        ([0, [0]], r"grad does not match .*: expected a dict .*, got a list of length 2"),
    ],
)
def test_pytree_structures_must_match(xp: XP, grad: Any, message: str) -> None:
    one = xp.asarray(np.ones(2, "float32"))
    param = {"a": one, "b": [one]}

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return type(node)(fill(v) for v in node)
        return one

    with pytest.raises(ValueError, match=message):
        nagref.sgd(param, fill(grad), lr=0.1)


def test_dtypes_must_match(xp: XP) -> None:
    w = xp.asarray(np.ones(3, "float32"))
    g = xp.asarray(np.ones(3, "float64"))
    with pytest.raises(
        TypeError,
        match=r"^grad has dtype float64 but param has dtype float32; "
        r"nagref never casts",
    ):
        nagref.sgd(w, g, lr=0.1)
    v = xp.asarray(np.ones(3, "complex64"))
    with pytest.raises(
        TypeError, match=r"^velocity has dtype complex64 but param has dtype float32"
    ):
        nagref.nag(w, w, v, lr=0.1, momentum=0.5)


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_integer_and_bool_arrays_are_rejected(xp: XP, dtype: str) -> None:
    w = xp.asarray(np.ones(3, dtype))
    supported = ", ".join(_dtypes.NAMES)
    pattern = rf"^param has dtype {dtype}; nagref supports {supported}$"
    with pytest.raises(TypeError, match=pattern):
        nagref.sgd(w, w, lr=0.1)
    with pytest.raises(TypeError, match=pattern):
        nagref.init_velocity(w)


@pytest.mark.parametrize(
    ("value", "shown"),
    [("abc", "str 'abc'"), (None, "NoneType None"), (1.5, "float 1.5"), (object, "type <class")],
)
def test_anything_that_is_not_an_array(xp: XP, value: Any, shown: str) -> None:
    w = xp.asarray(np.ones(3, "float32"))
    with pytest.raises(TypeError, match=rf"^grad must be an array, got {re.escape(shown)}"):
        nagref.sgd(w, value, lr=0.1)
    with pytest.raises(TypeError, match=rf"^param\[1\] must be an array, got {re.escape(shown)}"):
        nagref.init_velocity([w, value])


def test_arrays_from_two_libraries() -> None:
    torch = pytest.importorskip("torch")
    w = np.ones(3, "float32")
    g = torch.ones(3, dtype=torch.float32)
    with pytest.raises(
        TypeError,
        match=r"^param and grad come from different array libraries: "
        r"numpy\.ndarray and torch\.Tensor$",
    ):
        nagref.sgd(w, g, lr=0.1)
    with pytest.raises(
        TypeError,
        match=r"^lr \(numpy\.ndarray .*\) and param \(torch\.Tensor .*\) "
        r"come from different array libraries$",
    ):
        nagref.sgd(g, g, lr=np.asarray(0.1))


def test_arrays_on_two_devices() -> None:
    xs = pytest.importorskip("array_api_strict")
    w = xs.asarray([1.0, 2.0])
    g = xs.asarray([1.0, 2.0], device=xs.Device("device1"))
    with pytest.raises(
        ValueError,
        match=r"^grad is on device .*device1.* but param is on device "
        r".*CPU_DEVICE",
    ):
        nagref.sgd(w, g, lr=0.1)


def test_a_hyperparameter_on_another_device_is_moved_to_the_leaf() -> None:
    xs = pytest.importorskip("array_api_strict")
    w = xs.asarray([1.0, 2.0], device=xs.Device("device1"))
    out = nagref.sgd(w, w, lr=xs.asarray(0.5))
    assert out.device == xs.Device("device1")
    assert np.from_dlpack(out.to_device(xs.Device("CPU_DEVICE"))).tolist() == [0.5, 1.0]


def test_nothing_is_mutated_when_a_call_fails(xp: XP) -> None:
    w, g, v = _three(xp)
    before = [xp.to_numpy(a) for a in (w, g, v)]
    with pytest.raises(ValueError, match="momentum"):
        nagref.nag(w, g, v, lr=0.1, momentum=2.0)
    with pytest.raises(ValueError, match="shape"):
        nagref.nag(w, g, xp.asarray(np.ones(4, "float32")), lr=0.1, momentum=0.5)
    for array, original in zip((w, g, v), before, strict=True):
        np.testing.assert_array_equal(xp.to_numpy(array), original)
