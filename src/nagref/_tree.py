"""Pytrees: one array, or nested ``dict`` / ``list`` / ``tuple`` of arrays.

A rule flattens its first tree argument (the parameters) into a list of
leaves and a :class:`Structure`, flattens every other tree argument *against*
that structure (raising on any mismatch, with the path of the offending
node), runs leaf by leaf, and rebuilds the caller's structure.

Containers are ``dict`` (and subclasses), ``list`` and ``tuple`` (named
tuples included). Everything else is a leaf. Dict keys must match as sets;
the parameters' key order is the order of the result. A tree nests at most
:data:`MAX_DEPTH` containers deep and holds no cycle (a container inside
itself); either is a ``TypeError`` naming the path where it happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["MAX_DEPTH", "Path", "Structure", "flatten", "flatten_like", "path_name", "unflatten"]

Path = tuple[Any, ...]
#: The deepest nesting of containers accepted (a model's pytree nests a few levels).
MAX_DEPTH = 100
_Kind = Literal["leaf", "dict", "list", "tuple"]


@dataclass(frozen=True)
class Structure:
    """The shape of a pytree without its leaves."""

    kind: _Kind
    container: type | None = None
    keys: tuple[Any, ...] = ()
    children: tuple[Structure, ...] = ()

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(child.num_leaves for child in self.children)

    def describe(self) -> str:
        if self.kind == "leaf":
            return "an array"
        if self.kind == "dict":
            return f"a {_type_name(self.container)} with keys {sorted(self.keys, key=repr)}"
        return f"a {_type_name(self.container)} of length {len(self.children)}"


#: Every leaf's structure (one shared object, so that a leaf is recognised by identity).
_LEAF = Structure("leaf")
_CONTAINERS = (dict, list, tuple)


def _type_name(container: type | None) -> str:
    return "leaf" if container is None else container.__name__


def _kind_of(node: object) -> _Kind:
    if isinstance(node, dict):
        return "dict"
    if isinstance(node, list):
        return "list"
    if isinstance(node, tuple):
        return "tuple"
    return "leaf"


def path_name(name: str, path: Path) -> str:
    """Render ``name`` plus a path as Python indexing, e.g. ``grad['w'][0]``."""
    return name + "".join(f"[{key!r}]" for key in path)


def flatten(tree: object, name: str = "param") -> tuple[list[tuple[Path, object]], Structure]:
    """Return ``(leaves with their paths, structure)`` in depth-first order.

    Raises:
        TypeError: the tree nests deeper than :data:`MAX_DEPTH` or holds a
            container inside itself; the message names the path, inside the
            argument ``name``.
    """
    leaves: list[tuple[Path, object]] = []
    structure = _flatten(tree, (), leaves, set(), name)
    return leaves, structure


def _flatten(
    node: object, path: Path, out: list[tuple[Path, object]], above: set[int], name: str
) -> Structure:
    kind = _kind_of(node)
    if kind == "leaf":
        out.append((path, node))
        return _LEAF
    assert isinstance(node, (dict, list, tuple))
    if id(node) in above:
        raise TypeError(
            f"{path_name(name, path)} is a {type(node).__name__} that contains itself: "
            "a pytree must not be cyclic"
        )
    if len(path) >= MAX_DEPTH:
        raise TypeError(
            f"{path_name(name, path)} nests containers deeper than {MAX_DEPTH} levels, "
            "the most a pytree may"
        )
    above.add(id(node))
    items: list[tuple[Any, object]] = list(
        node.items() if isinstance(node, dict) else enumerate(node)
    )
    children = []
    for key, item in items:
        if isinstance(item, _CONTAINERS):
            children.append(_flatten(item, (*path, key), out, above, name))
        else:  # a leaf, inline: a model's pytree is mostly leaves
            out.append(((*path, key), item))
            children.append(_LEAF)
    above.discard(id(node))
    keys = tuple(key for key, _ in items) if kind == "dict" else ()
    return Structure(kind, type(node), keys, tuple(children))


def flatten_like(structure: Structure, tree: object, name: str) -> list[object]:
    """Flatten ``tree`` in the order of ``structure``.

    Raises:
        ValueError: where ``tree`` does not have that structure; the message
            names the node by its path inside the argument ``name``.
    """
    out: list[object] = []
    _flatten_like(structure, tree, name, (), out)
    return out


def _flatten_like(
    structure: Structure, node: object, name: str, path: Path, out: list[object]
) -> None:
    kind = _kind_of(node)
    if structure.kind == "leaf":
        if kind != "leaf":
            raise ValueError(_mismatch(structure, node, name, path))
        out.append(node)
        return
    if kind != structure.kind:
        raise ValueError(_mismatch(structure, node, name, path))
    if isinstance(node, dict):
        if node.keys() != set(structure.keys):
            raise ValueError(_mismatch(structure, node, name, path))
        items: list[Any] = [node[key] for key in structure.keys]
        keys: Sequence[Any] = structure.keys
    else:
        assert isinstance(node, (list, tuple))
        if len(node) != len(structure.children):
            raise ValueError(_mismatch(structure, node, name, path))
        items, keys = list(node), range(len(node))
    for key, child, item in zip(keys, structure.children, items, strict=True):
        if child is _LEAF and not isinstance(item, _CONTAINERS):
            out.append(item)  # a leaf, inline
        else:
            _flatten_like(child, item, name, (*path, key), out)


def _mismatch(structure: Structure, node: object, name: str, path: Path) -> str:
    # the node's top level only: it may be deep or cyclic itself
    if isinstance(node, dict):
        got = f"a {type(node).__name__} with keys {sorted(node, key=repr)}"
    elif isinstance(node, (list, tuple)):
        got = f"a {type(node).__name__} of length {len(node)}"
    else:
        got = f"a leaf of type {type(node).__name__}"
    return (
        f"{path_name(name, path)} does not match the structure of the parameters: "
        f"expected {structure.describe()}, got {got}"
    )


def unflatten(structure: Structure, leaves: Sequence[object]) -> Any:
    """Rebuild a pytree of ``structure`` from its leaves (the inverse of flatten)."""
    it = iter(leaves)
    tree = _unflatten(structure, it)
    if next(it, _END) is not _END:
        raise ValueError("more leaves than the structure holds")
    return tree


_END = object()


def _unflatten(structure: Structure, it: Iterator[object]) -> Any:
    if structure.kind == "leaf":
        return next(it)
    children = [
        next(it) if child is _LEAF else _unflatten(child, it) for child in structure.children
    ]
    container = structure.container
    assert container is not None
    if structure.kind == "dict":
        return container(zip(structure.keys, children, strict=True))
    if structure.kind == "tuple" and hasattr(container, "_fields"):
        return container(*children)  # a named tuple
    build: Callable[[list[Any]], Any] = container
    return build(children)
