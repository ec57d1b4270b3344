"""Trace a leaf function written with ``*``, ``+``, ``-`` into a recipe.

The canonical rules are written once, as ordinary expressions on arrays
(``momentum * v + lr * g``). Calling such a function on :class:`_Symbol`
placeholders records each operation, in Python's evaluation order and with
its operands in the order written, as a :class:`~nagref._recipe.Step`. The
recipe is therefore the function's own arithmetic, not a second copy of it,
and it runs on the generic path or on a backend's kernel alike, under
:data:`CANONICAL` rounding: every operation rounded once to the storage
dtype.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cache
from typing import Any

from ._recipe import Op, Program, Rounding, Step

__all__ = ["CANONICAL", "trace"]

#: The canonical rules' rounding: every operation rounded once to the storage dtype.
CANONICAL = Rounding(contract=False)


class _Symbol:
    """A register name; arithmetic on it appends a step to the shared tape."""

    def __init__(self, name: str, tape: list[Step]) -> None:
        self.name = name
        self._tape = tape

    def _emit(self, op: Op, *args: object) -> _Symbol:
        names = tuple(self._check(a) for a in args)
        out = _Symbol(f"_t{len(self._tape)}", self._tape)
        self._tape.append(Step(out.name, op, names))
        return out

    @staticmethod
    def _check(arg: object) -> str:
        if not isinstance(arg, _Symbol):
            raise TypeError(f"a traced rule may combine only its arguments, got {arg!r}")
        return arg.name

    def __mul__(self, other: object) -> _Symbol:
        return self._emit("mul", self, other)

    def __rmul__(self, other: object) -> _Symbol:
        return self._emit("mul", other, self)

    def __add__(self, other: object) -> _Symbol:
        return self._emit("add", self, other)

    def __radd__(self, other: object) -> _Symbol:
        return self._emit("add", other, self)

    def __sub__(self, other: object) -> _Symbol:
        return self._emit("sub", self, other)

    def __rsub__(self, other: object) -> _Symbol:
        return self._emit("sub", other, self)

    def __neg__(self) -> _Symbol:
        return self._emit("neg", self)


@cache
def trace(leaf_fn: Callable[..., tuple[Any, ...]]) -> Program:
    """The program of ``leaf_fn(*arrays, **hyperparameters)`` (cached per function).

    Its inputs are the positional parameters; the keyword-only ones
    (hyperparameters) are constant registers, given as arrays when it runs.
    """
    parameters = inspect.signature(leaf_fn).parameters.values()
    positional = tuple(p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD)
    keyword = tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)
    tape: list[Step] = []
    results = leaf_fn(
        *(_Symbol(name, tape) for name in positional),
        **{name: _Symbol(name, tape) for name in keyword},
    )
    outputs = tuple(_Symbol._check(result) for result in results)
    return Program(tuple(tape), CANONICAL, positional, outputs)
