"""Framework conventions: each framework's own update, bit for bit, and their registry.

Each submodule is one framework's update, written as a short recipe of
primitive operations (:mod:`nagref._engine.ir`) under that framework's
rounding model, with the framework's own parameter names, and ends with its
registry record, ``CONVENTION`` (:class:`~._registry.Convention`). All of
them are pure: they take the state as an argument and return the new state.

:data:`REGISTRY` holds every module's record, found by listing this package:
a new convention is a new module here, and nothing in this file changes.
Everything that enumerates conventions (the vectors, the audit, the live
suite, :mod:`nagref.convert`, the tests) reads it. docs/conventions.md
compares the conventions side by side.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from ._registry import Capabilities, Convention, Extra, Hypers, Variant


def _discover() -> dict[str, Convention]:
    """Every public submodule's ``CONVENTION``, by name, in name order."""
    registry: dict[str, Convention] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module: ModuleType = importlib.import_module(f"{__name__}.{info.name}")
        record = getattr(module, "CONVENTION", None)
        if not isinstance(record, Convention):
            raise TypeError(f"{module.__name__} defines no CONVENTION record")
        if record.name != info.name:
            raise ValueError(f"{module.__name__}.CONVENTION is named {record.name!r}")
        registry[record.name] = record
        globals()[info.name] = module
    return registry


#: Every convention, by name (the module's name), in name order.
REGISTRY: dict[str, Convention] = _discover()


def keyword_names(field: str, *first: str) -> tuple[str, ...]:
    """``first``, then each convention's keyword for a :class:`Hypers` field (``"lr"``), in
    registry order, each name once (:meth:`Convention.names`)."""
    own = (n for c in REGISTRY.values() if (n := c.names().get(field)))
    return tuple(dict.fromkeys((*first, *own)))


def lookup(name: str) -> Convention:
    """The convention called ``name``; an unknown name is a ValueError that lists them."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise ValueError(f"unknown convention {name!r}; the conventions are {known}") from None


__all__ = [
    "REGISTRY",
    "Capabilities",
    "Convention",
    "Extra",
    "Hypers",
    "Variant",
    "keyword_names",
    "lookup",
]
