"""Arguments: every error names the argument, and no OverflowError or RecursionError escapes.

Issue 13, item 6 (the rules, conventions and schedules; the audit's own
arguments are in tests/hostile/test_loaders.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nagref
from nagref import _dtypes, _tree, schedules
from nagref.conventions import keras, pytorch

HUGE = 10**400  # an int no float holds


def _w() -> Any:
    return np.ones(3, np.float32)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: nagref.sgd(_w(), _w(), lr=HUGE), "lr"),
        (lambda: nagref.momentum(_w(), _w(), _w(), lr=0.1, momentum=HUGE), "momentum"),
        (lambda: nagref.nag(_w(), _w(), _w(), lr=-HUGE, momentum=0.5), "lr"),
        (lambda: nagref.lookahead(_w(), _w(), momentum=HUGE), "momentum"),
        (lambda: schedules.nesterov(HUGE), "k"),
        (lambda: schedules.fista(HUGE), "k"),
        (lambda: schedules.tuned(HUGE, "nag"), "kappa"),
        (lambda: schedules.sutskever(3, mu_max=HUGE), "mu_max"),
    ],
)
def test_integers_too_large_for_a_float_are_a_value_error_naming_the_argument(
    call: Any, name: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be .*, got int -?1000"):
        call()


def test_the_schedules_document_their_bound_and_stay_exact_below_it() -> None:
    assert schedules.MAX_STEP == 10**8
    with pytest.raises(ValueError, match=r"k must be an integer <= 100000000, got int"):
        schedules.nesterov(schedules.MAX_STEP + 1)
    # huge steps of the closed-form schedules are exact, not refused
    assert schedules.k_over_k3(HUGE) == 1.0
    assert schedules.sutskever(HUGE, mu_max=0.99) == 0.99


def test_a_cyclic_pytree_is_a_type_error_naming_the_path() -> None:
    cyclic: dict[str, Any] = {"w": _w()}
    cyclic["inner"] = {"again": cyclic}
    with pytest.raises(TypeError, match=r"^param\['inner'\]\['again'\] is a dict that contains"):
        nagref.sgd(cyclic, cyclic, lr=0.1)
    looped: list[Any] = [_w()]
    looped.append(looped)
    with pytest.raises(TypeError, match=r"^param\[1\] is a list that contains itself"):
        nagref.init_velocity(looped)
    # a grad that is cyclic where the parameters hold a leaf: a mismatch, named
    with pytest.raises(ValueError, match=r"^grad\[1\] does not match .* got a list of length 2"):
        nagref.sgd([_w(), _w()], looped, lr=0.1)


def test_a_pytree_deeper_than_the_limit_is_a_type_error_naming_the_path() -> None:
    tree: Any = _w()
    for _ in range(_tree.MAX_DEPTH):
        tree = [tree]
    nagref.sgd(tree, tree, lr=0.1)  # exactly the limit: accepted
    deeper = [tree]
    with pytest.raises(TypeError, match=r"^param(\[0\]){100} nests containers deeper than 100"):
        nagref.sgd(deeper, deeper, lr=0.1)
    very = _w()
    for _ in range(100_000):  # far beyond Python's recursion limit
        very = [very]
    with pytest.raises(TypeError, match="nests containers deeper than"):
        nagref.init_velocity(very)


def _supported() -> str:
    return ", ".join(_dtypes.NAMES)


def test_dtypes_outside_the_table_are_refused_naming_the_leaf() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    cases = {
        "float128": np.ones(2, np.longdouble),
        "float8_e4m3fn": np.ones(2, ml_dtypes.float8_e4m3fn),
        "float8_e5m2": np.ones(2, ml_dtypes.float8_e5m2),
    }
    for name, leaf in cases.items():
        if str(leaf.dtype) != name:  # longdouble is float64 on some platforms
            continue
        tree = {"a": _w(), "b": leaf}
        with pytest.raises(TypeError, match=rf"^param\['b'\] has dtype {name}; nagref supports"):
            nagref.sgd(tree, tree, lr=0.1)
        with pytest.raises(TypeError, match=rf"^param has dtype {name}; nagref supports "):
            nagref.init_velocity(leaf)
    torch = pytest.importorskip("torch")
    eighth = torch.ones(2, dtype=torch.float8_e4m3fn)
    pattern = rf"^param has dtype float8_e4m3fn; nagref supports {_supported()}$"
    with pytest.raises(TypeError, match=pattern):
        nagref.nag(eighth, eighth, eighth, lr=0.1, momentum=0.5)
    # bfloat16 is a row of the table: NumPy's (ml_dtypes) and torch's are accepted
    tree = {"a": _w(), "b": np.ones(2, ml_dtypes.bfloat16)}
    assert nagref.sgd(tree, tree, lr=0.5)["b"].dtype == ml_dtypes.bfloat16
    half = torch.ones(2, dtype=torch.bfloat16)
    assert nagref.nag(half, half, half, lr=0.1, momentum=0.5)[0].dtype == torch.bfloat16


def test_the_other_byte_order_is_the_same_dtype() -> None:
    little = np.array([1.0, 2.0, 3.0], np.float32)
    big = little.astype(">f4")
    assert nagref.sgd(big, big, lr=0.5).tobytes() == (
        nagref.sgd(little, little, lr=0.5).astype(">f4").tobytes()
    )
    with pytest.raises(TypeError, match=r"^grad has dtype float32 but param has dtype >f4"):
        nagref.sgd(big, little, lr=0.5)


def test_a_convention_error_inside_a_pytree_names_the_leaf() -> None:
    tree = {"dense": {"kernel": _w(), "bias": np.ones(2, np.complex64)}}
    with pytest.raises(
        TypeError,
        match=r"^variable\['dense'\]\['bias'\] has dtype complex64; the framework conventions",
    ):
        keras.sgd(tree, tree, None, learning_rate=0.1, momentum=0.9)
    with pytest.raises(TypeError, match=r"^param\['dense'\]\['bias'\] has dtype complex64"):
        pytorch.sgd(tree, tree, None, lr=0.1)


def test_a_meta_device_lr_is_refused_naming_lr() -> None:
    torch = pytest.importorskip("torch")
    lr = torch.tensor(0.1, device="meta")
    with pytest.raises(ValueError, match=r"^lr \(torch.Tensor .* on device meta\) holds no value"):
        nagref.sgd(torch.ones(3), torch.ones(3), lr=lr)


TORCH_CASES = [
    ("float16", {"lr": 65504.0}),
    ("float16", {"lr": 65504.5}),
    ("float16", {"lr": 65520.0, "momentum": 0.9}),
    ("float16", {"lr": 1e6, "momentum": 0.5, "nesterov": True}),
    ("float16", {"lr": 0.1, "weight_decay": 70000.0}),
    ("float16", {"lr": 0.1, "momentum": 0.5, "dampening": -70000.0}),
    ("float16", {"lr": 0.1, "momentum": 70000.0}),  # mul_'s scalar: not checked, inf
    ("float16", {"lr": 0.1, "momentum": 70000.0, "nesterov": True}),
    ("float32", {"lr": 3.5e38}),
    ("float32", {"lr": 3.4028234663852886e38}),
    ("float32", {"lr": 0.1, "momentum": 0.5, "dampening": -1e39}),
    ("float64", {"lr": 1e300, "weight_decay": 1e300}),
]


@pytest.mark.parametrize("foreach", [False, True], ids=["single-tensor", "foreach"])
@pytest.mark.parametrize(("dtype", "hypers"), TORCH_CASES)
def test_the_pytorch_convention_raises_where_torch_raises(
    dtype: str, hypers: dict[str, Any], foreach: bool
) -> None:
    torch = pytest.importorskip("torch")
    kind = getattr(torch, dtype)
    p = torch.ones(40, dtype=kind, requires_grad=True)
    p.grad = torch.ones(40, dtype=kind)
    optimizer = torch.optim.SGD([p], foreach=foreach, **hypers)
    buffer = None
    torch_error = ours_error = ""
    try:
        for _ in range(2):
            optimizer.step()
    except RuntimeError as error:
        torch_error = str(error)
    param, grad = np.ones(40, dtype), np.ones(40, dtype)
    try:
        for _ in range(2):
            param, buffer = pytorch.sgd(param, grad, buffer, foreach=foreach, **hypers)
    except ValueError as error:
        ours_error = str(error)
    assert bool(ours_error) == bool(torch_error)
    if torch_error:
        assert "without overflow" in torch_error
        name = ours_error.partition("=")[0]
        assert ours_error.startswith(f"{name}={hypers[name]!r} is out of range for {dtype}")
    else:
        assert param.tobytes() == p.detach().numpy().tobytes()


def test_the_fused_kernel_does_not_check_and_neither_does_nagref() -> None:
    param, buffer = pytorch.sgd(_w(), _w(), None, lr=1e39, fused=True)
    assert np.isneginf(param).all()
    assert buffer is None
