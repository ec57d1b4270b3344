"""nagref._engine.hypers: hyperparameters become 0-d constants along their cast chains."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from backends import XP, Backend, load

import nagref
from nagref._compat import array_namespace
from nagref._engine import hypers
from nagref._engine.hypers import check_libraries, constants, resolve
from nagref._engine.ir import COMPUTE, OPMATH, STORAGE, VIA_OPMATH, Hyper, Rounding

#: Rounded to float16 directly it is 0.2888; through float32 first, 0.2886
#: (float32 rounds it onto a float16 tie, which then goes to even).
TWICE = 0.288696291246982
ONCE_16 = float(np.float16(TWICE))
TWICE_16 = float(np.float16(np.float32(TWICE)))
CANONICAL = Rounding(contract=False)


def test_the_value_rounds_differently_once_and_twice() -> None:
    assert ONCE_16 == 0.288818359375
    assert TWICE_16 == 0.28857421875


def _constants(xp: XP, chains: dict[str, Any], leaf: Any, rounding: Rounding = CANONICAL) -> Any:
    """The constants of ``chains`` (name -> Hyper) for ``leaf``, as ``xp.call`` makes them."""

    def make(leaf: Any, **arrays: Any) -> dict[str, Any]:
        given = {name: Hyper(arrays.get(name, h.value), h.via) for name, h in chains.items()}
        return constants(xp.ns, given, rounding, leaf, None)

    arrays = {name: h.value for name, h in chains.items() if not isinstance(h.value, float)}
    return xp.call(make, leaf, **arrays)


def _need(xp: XP, dtype: str) -> None:
    if dtype not in xp.dtypes:
        pytest.skip(f"{xp.backend.value} has no {dtype}")


def test_python_floats_follow_their_cast_chain(xp: XP) -> None:
    _need(xp, "float16")
    leaf = xp.asarray(np.zeros(5, np.float16))
    made = _constants(
        xp,
        {
            "twice": Hyper(TWICE, VIA_OPMATH),
            "once": Hyper(TWICE),
            "explicit": Hyper(TWICE, ("float32", STORAGE)),
        },
        leaf,
    )
    for name, want in (("twice", TWICE_16), ("once", ONCE_16), ("explicit", TWICE_16)):
        got = xp.to_numpy(made[name])
        assert got.shape == ()
        assert got.dtype == np.float16, name
        assert float(got) == want, (name, float(got))


def test_zero_d_arrays_follow_their_cast_chain_and_stay_in_the_library(xp: XP) -> None:
    _need(xp, "float16")
    leaf = xp.asarray(np.zeros(5, np.float16))
    value = xp.asarray(np.float64(TWICE))
    made = _constants(
        xp, {"twice": Hyper(value, VIA_OPMATH), "once": Hyper(value, (STORAGE,))}, leaf
    )
    for name, want in (("twice", TWICE_16), ("once", ONCE_16)):
        assert array_namespace(made[name]) is xp.ns
        got = xp.to_numpy(made[name])
        assert got.dtype == np.float16
        assert float(got) == want, (name, float(got))


def test_a_chain_through_a_narrower_dtype_rounds_there(xp: XP) -> None:
    """Keras' learning rate: a float32 variable, cast to a float64 leaf's dtype."""
    leaf = xp.asarray(np.zeros(3, np.float64))
    made = _constants(xp, {"lr": Hyper(0.1, ("float32", STORAGE))}, leaf)
    got = xp.to_numpy(made["lr"])
    assert got.dtype == np.float64
    assert float(got) == float(np.float32(0.1)) != 0.1


@pytest.mark.parametrize(
    "value",
    [TWICE, -TWICE, 65519.99, 65520.0, -1e300, 2.0**-25, -(2.0**-25) * 1.5, 1e-50, -0.0, math.nan],
)
@pytest.mark.parametrize("via", [(STORAGE,), VIA_OPMATH, ("float32",), ("float64", STORAGE)])
def test_python_floats_are_rounded_as_numpy_rounds_them(value: float, via: tuple[str, ...]) -> None:
    """Each conversion of a chain rounds once, to nearest with ties to even, overflow to inf."""
    xp = array_namespace(np.zeros(1))
    made = constants(xp, {"x": Hyper(value, via)}, CANONICAL, np.zeros(1, np.float16), "cpu")
    want = np.asarray(value)
    with np.errstate(over="ignore"):
        for name in via:
            want = want.astype({"storage": "float16", "opmath": "float32"}.get(name, name))
    assert made["x"].dtype == want.dtype
    assert made["x"].tobytes() == want.tobytes() or (np.isnan(want) and np.isnan(made["x"]))


def test_compute_and_opmath_name_the_leafs_dtypes(xp: XP) -> None:
    rounding = Rounding(contract=False, compute={"float64": "float32"})
    for storage, compute, opmath in (
        ("float64", "float32", "float64"),
        ("float32", "float32", "float32"),
    ):
        leaf = xp.asarray(np.zeros(3, storage))
        made = _constants(
            xp,
            {"c": Hyper(0.1, (COMPUTE,)), "o": Hyper(0.1, (OPMATH,)), "s": Hyper(0.1)},
            leaf,
            rounding,
        )
        assert xp.to_numpy(made["c"]).dtype == np.dtype(compute)
        assert xp.to_numpy(made["o"]).dtype == np.dtype(opmath)
        assert xp.to_numpy(made["s"]).dtype == np.dtype(storage)
        assert float(xp.to_numpy(made["c"])) == float(np.asarray(0.1, compute))


@pytest.mark.parametrize("storage", ["float16", "float32", "float64"])
def test_opmath_is_float32_for_float16_and_the_dtype_itself_otherwise(storage: str) -> None:
    made = constants(
        array_namespace(np.zeros(1)),
        {"x": Hyper(1 / 3, (OPMATH,))},
        CANONICAL,
        np.zeros(2, storage),
        "cpu",
    )
    assert made["x"].dtype == np.dtype("float32" if storage == "float16" else storage)


def test_signed_zero_and_overflow_survive_the_chain() -> None:
    xp = array_namespace(np.zeros(1))
    leaf = np.zeros(2, np.float16)
    made = constants(
        xp,
        {"negative_zero": Hyper(-0.0, VIA_OPMATH), "huge": Hyper(1e300, VIA_OPMATH)},
        CANONICAL,
        leaf,
        "cpu",
    )
    assert np.signbit(made["negative_zero"])
    assert made["negative_zero"] == 0
    assert np.isposinf(made["huge"])


def test_a_non_native_byte_order_is_its_own_opmath() -> None:
    xp = array_namespace(np.zeros(1))
    leaf = np.zeros(3, ">f4")
    made = constants(xp, {"lr": Hyper(0.1, VIA_OPMATH)}, CANONICAL, leaf, "cpu")
    assert made["lr"].dtype == np.dtype(">f4")
    assert float(made["lr"]) == float(np.float32(0.1))


def test_resolve_names_dask_float16_though_its_namespace_does_not() -> None:
    dask = load(Backend.DASK)
    assert not hasattr(dask.ns, "float16")  # array_api_compat.dask.array
    leaf = dask.asarray(np.zeros(6, np.float16))
    assert resolve(dask.ns, "float16", leaf) == np.float16
    assert resolve(dask.ns, "float32", leaf) == dask.ns.float32
    made = dask.call(
        lambda leaf: constants(dask.ns, {"mu": Hyper(TWICE, VIA_OPMATH)}, CANONICAL, leaf, None),
        leaf,
    )
    assert float(dask.to_numpy(made["mu"])) == TWICE_16
    # and a whole step stays lazy
    g = dask.asarray(np.ones(6, np.float16))
    new = dask.call(nagref.sgd, leaf, g, lr=TWICE)
    assert dask.to_numpy(new).tolist() == [-ONCE_16] * 6


def test_resolve_gives_the_leafs_own_dtype_object() -> None:
    torch = load(Backend.TORCH)
    leaf = torch.asarray(np.zeros(2, np.float16))
    assert resolve(torch.ns, "float16", leaf) is leaf.dtype
    assert resolve(torch.ns, "float64", leaf) is torch.ns.float64


def test_an_array_on_another_device_is_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    xp = array_namespace(np.zeros(1))
    moved: list[tuple[Any, Any]] = []

    def to_device(value: Any, where: Any) -> Any:
        moved.append((value, where))
        return value

    monkeypatch.setattr(hypers, "to_device", to_device)
    leaf = np.zeros(3, np.float32)
    value = np.asarray(0.5, np.float64)
    made = constants(xp, {"lr": Hyper(value)}, CANONICAL, leaf, "accelerator:1")
    assert len(moved) == 1
    assert moved[0][1] == "accelerator:1"
    assert moved[0][0].dtype == np.float32  # cast first, then moved
    assert made["lr"] is moved[0][0]
    moved.clear()
    constants(xp, {"lr": Hyper(value)}, CANONICAL, leaf, "cpu")  # already there
    assert moved == []


def test_the_callers_array_is_never_changed(xp: XP) -> None:
    value = xp.asarray(np.float64(TWICE))
    leaf = xp.asarray(np.zeros(3, np.float32))
    made = _constants(xp, {"lr": Hyper(value)}, leaf)
    assert xp.to_numpy(made["lr"]).dtype == np.float32
    assert xp.to_numpy(value).dtype == np.float64
    assert float(xp.to_numpy(value)) == TWICE


def test_check_libraries_accepts_floats_and_the_leaves_library() -> None:
    torch = load(Backend.TORCH)
    leaf = np.zeros(3, np.float32)
    check_libraries({"lr": Hyper(0.1), "mu": Hyper(np.asarray(0.9))}, "param", leaf)
    with pytest.raises(
        TypeError,
        match=r"^mu \(.*\) and param\['w'\] \(.*\) come from "
        r"different array libraries$",
    ):
        check_libraries(
            {"lr": Hyper(0.1), "mu": Hyper(torch.asarray(np.float32(0.9)))}, "param['w']", leaf
        )


def test_a_rule_rounds_a_python_learning_rate_once_on_every_backend(xp: XP) -> None:
    """What the chains are for: nagref.sgd's lr is rounded once, to the storage dtype,
    on PyTorch too, whose own float64 -> float16 conversion rounds through float32."""
    _need(xp, "float16")
    p = xp.asarray(np.zeros(4, np.float16))
    g = xp.asarray(np.ones(4, np.float16))
    new = xp.to_numpy(xp.call(nagref.sgd, p, g, lr=TWICE))
    assert new.tolist() == [-ONCE_16] * 4
