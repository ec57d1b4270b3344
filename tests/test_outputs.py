"""nagref._outputs: out= arrays are refused where they share memory unsafely (issue 13, item 1)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nagref
from nagref._compat import extent
from nagref.conventions import pytorch, tensorflow


def _state(n: int = 8) -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(5)
    return tuple(rng.standard_normal(n).astype(np.float32) for _ in range(3))  # type: ignore[return-value]


def _refused(match: str, step: Any, *buffers: Any) -> None:
    """``step()`` raises ValueError matching ``match`` and writes none of ``buffers``."""
    before = [b.copy() for b in buffers]
    with pytest.raises(ValueError, match=match):
        step()
    for b, old in zip(buffers, before, strict=True):
        assert np.array_equal(np.asarray(b), np.asarray(old))


def test_an_output_viewing_another_leafs_input_is_refused() -> None:
    p0, p1 = np.ones(4, np.float32), np.full(4, 2, np.float32)
    g, o1 = np.ones(4, np.float32), np.empty(4, np.float32)
    _refused(
        r"out\[0\] is the same array as the input param\[1\] of another leaf",
        lambda: nagref.sgd([p0, p1], [g, g], lr=0.5, out=[p1[:], o1]),
        p0,
        p1,
        g,
        o1,
    )


def test_overlapping_slices_of_one_buffer_are_refused() -> None:
    buf, w = np.zeros(6, np.float32), np.ones(4, np.float32)
    _refused(
        r"out\[1\] overlaps out\[0\] in memory",
        lambda: nagref.momentum(w, w, w, lr=0.1, momentum=0.9, out=(buf[0:4], buf[2:6])),
        buf,
        w,
    )
    tree = {"a": buf[0:3], "b": buf[2:5]}  # across leaves of one output
    _refused(
        r"out\['b'\] overlaps out\['a'\]",
        lambda: nagref.sgd({"a": w[:3], "b": w[1:]}, {"a": w[:3], "b": w[1:]}, lr=1.0, out=tree),
        buf,
        w,
    )


def test_in_place_steps_have_the_bits_of_fresh_ones() -> None:
    p, g, v = _state()
    want = nagref.momentum(p, g, v, lr=0.1, momentum=0.9)
    p2, v2 = p.copy(), v.copy()
    got = nagref.momentum(p2, g, v2, lr=0.1, momentum=0.9, out=(p2, v2))
    assert got[0] is p2
    assert got[1] is v2
    assert p2.tobytes() == want[0].tobytes()
    assert v2.tobytes() == want[1].tobytes()
    p3 = p.copy()
    assert nagref.sgd(p3, g, lr=0.5, out=p3[:]).tobytes() == nagref.sgd(p, g, lr=0.5).tobytes()
    want = pytorch.sgd(p, g, v, lr=0.1, momentum=0.9)
    p2, v2 = p.copy(), v.copy()
    pytorch.sgd(p2, g, v2, lr=0.1, momentum=0.9, out=(p2, v2))
    assert p2.tobytes() == want[0].tobytes()
    assert v2.tobytes() == want[1].tobytes()
    want = tensorflow.apply_momentum(p, v, g, lr=0.1, momentum=0.9)  # (var, accum, grad)
    p2, v2 = p.copy(), v.copy()
    tensorflow.apply_momentum(p2, v2, g, lr=0.1, momentum=0.9, out=(p2, v2))
    assert p2.tobytes() == want[0].tobytes()
    assert v2.tobytes() == want[1].tobytes()


def test_the_wrong_role_is_refused() -> None:
    p, g, v = _state()
    _refused(
        r"out\[1\] is the same array as the input param: an output may be written over "
        r"its own input \(velocity\) only",
        lambda: nagref.momentum(p, g, v, lr=0.1, momentum=0.9, out=(None, p)),
        p,
        g,
        v,
    )
    _refused(  # tensorflow's state is its second tree: var_out over accum
        r"out\[0\] is the same array as the input accum",
        lambda: tensorflow.apply_momentum(p, v, g, lr=0.1, momentum=0.9, out=(v, None)),
        p,
        g,
        v,
    )
    _refused(
        r"out is the same array as the input grad",
        lambda: nagref.sgd(p, g, lr=0.1, out=g),
        p,
        g,
    )


def test_a_transposed_view_is_not_the_same_memory() -> None:
    m = np.arange(9, dtype=np.float32).reshape(3, 3)
    g = np.ones((3, 3), np.float32)
    _refused(
        r"out overlaps the input param in memory without being exactly it",
        lambda: nagref.sgd(m, g, lr=0.1, out=m.T),
        m,
        g,
    )


def test_tied_weights_cannot_be_written_twice() -> None:
    w, g = _state()[:2]
    tied = {"enc": w, "dec": w}
    _refused(
        r"out\['(enc|dec)'\] is the same array as (the input param|out)\['(enc|dec)'\]",
        lambda: nagref.sgd(tied, {"enc": g, "dec": g}, lr=0.1, out=tied),
        w,
        g,
    )
    new = nagref.sgd(tied, {"enc": g, "dec": g}, lr=0.1)  # reading them twice is fine
    assert new["enc"].tobytes() == new["dec"].tobytes()


def test_disjoint_slices_of_one_buffer_are_accepted() -> None:
    p, g, v = _state(12)
    flat = np.zeros(24, np.float32)
    params = {"a": p[:5].copy(), "b": p[5:].copy()}
    grads = {"a": g[:5], "b": g[5:]}
    out = ({"a": flat[0:5], "b": flat[5:12]}, {"a": flat[12:17], "b": flat[17:24]})
    vel = {"a": v[:5], "b": v[5:]}
    got = nagref.momentum(params, grads, vel, lr=0.1, momentum=0.9, out=out)
    want = nagref.momentum(params, grads, vel, lr=0.1, momentum=0.9)
    for k in ("a", "b"):
        assert got[0][k].tobytes() == want[0][k].tobytes()
        assert got[1][k].tobytes() == want[1][k].tobytes()
    assert np.shares_memory(got[0]["a"], flat)


def test_inputs_may_overlap_each_other() -> None:
    buf = np.arange(6, dtype=np.float32)
    out = np.empty(4, np.float32)
    nagref.sgd(buf[:4], buf[2:], lr=1.0, out=out)
    assert out.tobytes() == (buf[:4] - buf[2:]).tobytes()


def test_torch_tensors_sharing_storage() -> None:
    torch = pytest.importorskip("torch")
    base = torch.zeros(6)
    w = torch.ones(4)
    with pytest.raises(ValueError, match=r"out\[1\] overlaps out\[0\] in memory"):
        nagref.momentum(w, w, w, lr=0.1, momentum=0.9, out=(base[0:4], base[2:6]))
    m, g = torch.arange(4.0).reshape(2, 2), torch.ones(2, 2)
    with pytest.raises(ValueError, match=r"out overlaps the input param in memory"):
        nagref.sgd(m, g, lr=0.1, out=m.t())  # a transposed view of the same storage
    with pytest.raises(ValueError, match=r"out\[1\] is the same array as the input param\[0\]"):
        nagref.sgd([m, g], [g, g], lr=0.1, out=[g.clone(), m.view(2, 2)])
    assert torch.equal(base, torch.zeros(6))
    assert torch.equal(m, torch.arange(4.0).reshape(2, 2))
    q = m.clone()
    nagref.sgd(q, g, lr=0.5, out=q[:])  # the same elements: in place
    assert torch.equal(q, m - 0.5)


def test_extent_is_duck_typed() -> None:
    a = np.zeros((4, 3), np.float32)
    whole, col = extent(a), extent(a[:, 1])
    assert whole is not None
    assert col is not None
    assert whole.hi - whole.lo == 48
    assert (col.lo - whole.lo, col.hi - col.lo) == (4, 40)
    back = extent(a[::-1])
    assert back is not None
    assert back.lo == whole.lo
    assert extent(np.zeros(0)) is None
    assert extent(object()) is None
    assert extent(a).exact == extent(a[:]).exact != extent(a.T).exact  # type: ignore[union-attr]


def test_interleaved_strided_views_are_refused_conservatively() -> None:
    buf = np.zeros(8, np.float32)
    w = np.ones(4, np.float32)
    # buf[0::2] and buf[1::2] share no element, but their byte intervals intersect
    with pytest.raises(ValueError, match=r"out\[1\] overlaps out\[0\] in memory"):
        nagref.momentum(w, w, w, lr=0.1, momentum=0.9, out=(buf[0::2], buf[1::2]))


def test_an_owned_output_that_another_leaf_reads_is_refused() -> None:
    # owned arrays take the identity fast path: an in-place output that is also
    # the gradient of another leaf must still go to the sweep and be refused
    p0, g0, _ = _state()
    p1 = p0 + 1
    _refused(
        r"out\[1\] is the same array as the input grad\[0\] of another leaf",
        lambda: nagref.sgd([p0, p1], [p1, g0], lr=0.1, out=[p0, p1]),
        p0,
        p1,
        g0,
    )
    fresh = nagref.sgd([p0, p1], [g0, g0], lr=0.1)  # owned arrays in place: the fast path
    nagref.sgd([p0, p1], [g0, g0], lr=0.1, out=[p0, p1])
    assert [a.tobytes() for a in fresh] == [p0.tobytes(), p1.tobytes()]
