"""How torch walks a tensor's memory (conventions._layouts), against its rules and torch itself.

The live checks of whole SGD steps are in
``conformance/frameworks/test_torch_layouts.py``; here each piece of the
model: the named layouts, density, ``TensorIterator``'s order, new outputs'
and clones' strides (asked of torch where it is installed, as it is in CI),
and the SIMD rows, which for a contiguous tensor are the engine's pieces.
"""

from __future__ import annotations

import numpy as np
import pytest

from conformance import require
from nagref._compat import array_namespace
from nagref._engine.ir import instr as make
from nagref._engine.ir import pieces
from nagref.conventions._layouts import (
    allocated,
    cloned,
    contiguous,
    dense,
    memory_axes,
    named,
    order,
    read,
    scalar_any,
    simd,
    walk,
)

torch = require("torch")
XP = array_namespace(np.empty(0))


def test_named_layouts_give_torchs_strides() -> None:
    assert named("contiguous", (3, 5), "x") == (5, 1) == tuple(torch.empty(3, 5).stride())
    assert named("transposed", (3, 5), "x") == (1, 3) == tuple(torch.empty(5, 3).t().stride())
    assert named("transposed", (2, 3, 4), "x") == tuple(
        torch.empty(4, 3, 2).permute(2, 1, 0).stride()
    )
    assert named("strided", (64,), "x") == (2,) == tuple(torch.empty(128)[::2].stride())
    assert named("strided", (3, 4), "x") == tuple(torch.empty(3, 8)[:, ::2].stride())
    assert named("transposed", (), "x") == () == named("strided", (), "x")
    assert named([4, 1], (3, 4), "x") == (4, 1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("diagonal", "grad_layout must be one of contiguous, transposed, strided or strides"),
        ((1,), "grad_layout must be one of contiguous, transposed, strided or 2 whole numbers"),
        ((1, -1), "got tuple (1, -1)"),
        ((True, 1), "got tuple (True, 1)"),
        (3, "got int 3"),
    ],
)
def test_a_bad_layout_is_named_with_its_value(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        named(value, (3, 4), "grad_layout")


def test_density_and_memory_order() -> None:
    assert dense((3, 5), (5, 1))
    assert dense((3, 5), (1, 3))
    assert not dense((64,), (2,))
    assert not dense((3, 4), (8, 2))
    assert not dense((3, 4), (0, 1))
    assert dense((1, 5), (99, 1))
    assert dense((1,), (7,))
    assert dense((0, 3), (3, 1))
    assert memory_axes((3, 5), (1, 3)) == (1, 0)
    assert memory_axes((2, 3, 4), (1, 8, 2)) == (1, 2, 0)


def test_read_takes_a_torch_tensors_or_numpy_arrays_strides() -> None:
    assert read(torch.empty(5, 3).t(), "param") == (1, 3)
    assert read(np.empty((5, 3), np.float16).T, "param") == (1, 3)
    assert read(np.empty(8, np.float32)[::2], "grad") == (2,)
    assert read([1.0], "param") is None
    with pytest.raises(ValueError, match=r"grad has strides \(-4,\) \(bytes\)"):
        read(np.empty(4, np.float32)[::-1], "grad")


# (shape, the operands' strides, outputs first)
ORDERS = [
    ((3, 5), [(1, 3), (1, 3)]),
    ((3, 5), [(5, 1), (1, 3)]),
    ((3, 5), [(1, 3), (5, 1)]),
    ((4, 1, 6), [(6, 6, 1), (1, 4, 4)]),
    ((2, 3, 4), [(1, 2, 6), (12, 4, 1)]),
    ((2, 3, 4), [(24, 8, 2), (12, 4, 1)]),
    ((5, 5), [(5, 1), (5, 1)]),
]


@pytest.mark.parametrize(("shape", "operands"), ORDERS)
def test_a_new_output_is_dense_in_the_inputs_order_as_torch_allocates_it(
    shape: tuple[int, ...], operands: list[tuple[int, ...]]
) -> None:
    a, b = (torch.empty(10_000).as_strided(shape, s) for s in operands)
    got = tuple((a + b).stride())
    ours = allocated(shape, operands)
    assert [s for s, n in zip(got, shape, strict=True) if n != 1] == [
        s for s, n in zip(ours, shape, strict=True) if n != 1
    ]
    assert sorted(order(shape, operands)) == list(range(len(shape)))


@pytest.mark.parametrize(
    ("shape", "strides"),
    [((3, 5), (1, 3)), ((64,), (2,)), ((3, 4), (8, 2)), ((2, 3, 4, 5), (60, 1, 15, 3)),
     ((2, 3, 4, 5), (120, 1, 30, 6)), ((3, 4), (0, 1))],
)  # fmt: skip
def test_clone_keeps_a_dense_layout_and_makes_others_contiguous_or_channels_last(
    shape: tuple[int, ...], strides: tuple[int, ...]
) -> None:
    x = torch.empty(10_000).as_strided(shape, strides)
    assert cloned(shape, strides) == tuple(torch.clone(x).stride())


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("size", [0, 1, 31, 32, 33, 100, 32768, 32769, 65537, 100_003])
def test_a_contiguous_tensor_is_one_row_the_engines_pieces(size: int, threads: int) -> None:
    got = simd(XP, (size,), [(1,), (1,)], lanes=32, grain=32768, threads=threads)
    expected = np.zeros(size, bool)
    for segment, start, stop in pieces(32, size, 32768, threads):
        expected[start:stop] = segment == 0
    assert got.tolist() == expected.tolist()


def test_rows_of_the_walk_order_each_have_a_body_and_tail() -> None:
    # a 2-D tensor whose rows do not coalesce: 40-element rows, each 32 + 8
    got = simd(XP, (3, 40), [(80, 1), (40, 1)], lanes=32, grain=32768, threads=1)
    assert got[:, :32].all()
    assert not got[:, 32:].any()
    # both transposed: one walk in memory order, its tail the last 15 in memory
    got = simd(XP, (5, 3), [(1, 5), (1, 5)], lanes=32, grain=32768, threads=1)
    assert not got.any()
    got = simd(XP, (40, 3), [(1, 40), (1, 40)], lanes=32, grain=32768, threads=1)
    in_memory = got.T.reshape(-1)
    assert in_memory[:96].all()
    assert not in_memory[96:].any()
    # an operand not stride-1 in the walk: every element in the scalar loop
    assert not simd(XP, (64,), [(1,), (2,)], lanes=32, grain=32768, threads=1).any()
    assert not simd(XP, (3, 5), [(5, 1), (1, 3)], lanes=32, grain=32768, threads=1).any()


def test_walk_follows_the_layouts_through_torchs_operations() -> None:
    recipe = (
        make("b", "copy", "g"),  # buf = clone(grad)
        make("g", "muladd", "b", "mu", "g"),  # grad.add(buf, alpha=mu): new
        make("p", "muladd", "g", "lr", "p"),  # param.add_(grad, alpha=-lr)
    )

    def in_place(s: object) -> bool:
        return getattr(s, "out", "") in ("p", "b")

    masks, layouts = walk(
        recipe, (64,), {"p": (1,), "g": (2,)}, in_place=in_place, lanes=32, grain=32768,
        threads=1, xp=XP,
    )  # fmt: skip
    assert layouts == {"p": (1,), "g": (1,), "b": (1,)}  # clone and the new grad: contiguous
    assert set(masks) == {1}
    assert masks[1].all()
    masks, layouts = walk(
        recipe, (5, 3), {"p": (3, 1), "g": (1, 5)}, in_place=in_place, lanes=32, grain=0,
        threads=1, xp=XP,
    )  # fmt: skip
    assert layouts["b"] == (1, 5)
    assert layouts["g"] == (1, 5)
    assert set(masks) == {1, 2}  # 15 elements: all in the tail, wherever they are
    with pytest.raises(NotImplementedError, match="no torch layout rule"):
        walk((make("x", "div", "p", "g"),), (3,), {"p": (1,), "g": (1,)},
             in_place=in_place, lanes=32, grain=0, threads=1)  # fmt: skip
    assert contiguous((2, 0, 3)) == (3, 3, 1) == tuple(torch.empty(2, 0, 3).stride())


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_the_masks_are_the_leaves_namespaces_arrays(backend: str) -> None:
    """The layout model uses only the array API: a torch leaf's masks are torch tensors."""
    x = torch.empty(0) if backend == "torch" else np.empty(0)
    xp = array_namespace(x)
    got = simd(xp, (3, 40), [(80, 1), (40, 1)], lanes=32, grain=32768, threads=1)
    assert type(got).__module__.startswith(backend)
    expected = simd(XP, (3, 40), [(80, 1), (40, 1)], lanes=32, grain=32768, threads=1)
    assert np.asarray(got).tolist() == expected.tolist()


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize(
    ("shape", "operands"),
    [((3, 40), [(80, 1), (40, 1)]), ((3, 64), [(64, 1), (64, 1)]), ((64,), [(1,), (2,)]),
     ((40, 3), [(1, 40), (1, 40)]), ((32,), [(1,), (1,)]), ((0, 5), [(5, 1), (5, 1)]),
     ((1024, 64), [(64, 1), (128, 1)]), ((1000, 66), [(66, 1), (66, 1)]), ((), [(), ()]),
     ((1100, 60), [(60, 1), (60, 1)]), ((2048, 32), [(32, 1), (64, 1)])],
)  # fmt: skip
def test_scalar_any_says_from_the_shapes_whether_simd_leaves_a_scalar_element(
    shape: tuple[int, ...], operands: list[tuple[int, ...]], threads: int
) -> None:
    every = {"lanes": 32, "grain": 32768, "threads": threads}
    body = simd(XP, shape, operands, **every)
    assert scalar_any(shape, operands, **every) == (not bool(body.all()))
