"""Pytree flattening and rebuilding."""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import pytest

from nagref._tree import flatten, flatten_like, path_name, unflatten

Pair = namedtuple("Pair", ["left", "right"])


def test_round_trip_keeps_containers_and_order() -> None:
    tree = OrderedDict(b=[1, (2, Pair(3, {"z": 4, "a": 5}))], a=6)
    leaves, structure = flatten(tree)
    assert [leaf for _, leaf in leaves] == [1, 2, 3, 4, 5, 6]
    assert [path_name("p", path) for path, _ in leaves][3] == "p['b'][1][1][1]['z']"
    rebuilt = unflatten(structure, [leaf for _, leaf in leaves])
    assert rebuilt == tree
    assert type(rebuilt) is OrderedDict
    assert type(rebuilt["b"][1][1]) is Pair
    assert structure.num_leaves == 6


def test_a_bare_leaf_is_a_tree() -> None:
    leaves, structure = flatten("x")
    assert leaves == [((), "x")]
    assert unflatten(structure, ["y"]) == "y"


def test_flatten_like_follows_the_reference_key_order() -> None:
    _, structure = flatten({"a": 1, "b": 2})
    assert flatten_like(structure, {"b": 20, "a": 10}, "grad") == [10, 20]


def test_unflatten_refuses_extra_leaves() -> None:
    _, structure = flatten([1, 2])
    with pytest.raises(ValueError, match="more leaves than the structure holds"):
        unflatten(structure, [1, 2, 3])
