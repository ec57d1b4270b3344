"""Trace a leaf function written with ``*``, ``+``, ``-`` and ``/`` into a program.

The canonical rules, the published formulations and the state maps of
:mod:`nagref.convert` are written once, as ordinary expressions on arrays
(``momentum * v + lr * g``). Calling such a function on :class:`_Symbol`
placeholders records each operation, in Python's evaluation order and with
its operands in the order written, as an :class:`~nagref._engine.ir.Instr`.
The program is therefore the function's own arithmetic, not a second copy
of it, and it runs on the generic path or on a backend's kernel alike, under
:data:`CANONICAL` rounding: every operation rounded once to the storage
dtype.

A number literal (``1 + mu``) becomes a constant register rounded to the
storage dtype, as NumPy, PyTorch and JAX round a Python scalar that meets
an array. A function that returns one of its inputs unchanged returns a
copy of it (a ``copy`` instruction), never the input itself.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from functools import cache
from typing import Any

from .ir import Hyper, Instr, Op, Program, Rounding, instr

__all__ = ["CANONICAL", "Tracer", "trace"]

#: The canonical rules' rounding: every operation rounded once to the storage dtype.
CANONICAL = Rounding(contract=False)


class _Tape:
    """The instructions recorded so far, and the literals met."""

    def __init__(self) -> None:
        self.instrs: list[Instr] = []
        self.literals: dict[str, Hyper] = {}
        self._names: dict[str, str] = {}  # float.hex of a literal -> its register

    def literal(self, value: float) -> str:
        number = float(value)
        key = number.hex()  # tells -0.0 from 0.0
        if key not in self._names:
            name = f"_k{len(self._names)}"
            self._names[key] = name
            self.literals[name] = Hyper(number)
        return self._names[key]


class _Symbol:
    """A register name; arithmetic on it appends an instruction to the shared tape."""

    def __init__(self, name: str, tape: _Tape) -> None:
        self.name = name
        self._tape = tape

    def _emit(self, op: Op, *args: object) -> _Symbol:
        names = tuple(self._operand(a) for a in args)
        out = _Symbol(f"_t{len(self._tape.instrs)}", self._tape)
        self._tape.instrs.append(Instr(out.name, op, names))
        return out

    def _operand(self, arg: object) -> str:
        if isinstance(arg, _Symbol):
            return arg.name
        if isinstance(arg, numbers.Real) and not isinstance(arg, bool):
            return self._tape.literal(float(arg))
        raise TypeError(f"a traced rule may combine its arguments and numbers, got {arg!r}")

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

    def __truediv__(self, other: object) -> _Symbol:
        return self._emit("div", self, other)

    def __rtruediv__(self, other: object) -> _Symbol:
        return self._emit("div", other, self)

    def __neg__(self) -> _Symbol:
        return self._emit("neg", self)


class Tracer:
    """Records arithmetic on symbols into a program (what :func:`trace` uses).

    For programs assembled at run time (the state maps of :mod:`nagref.convert`):
    make a symbol per input and hyperparameter, compute with them as with
    arrays, then call :meth:`program` with the results.
    """

    def __init__(self) -> None:
        self._tape = _Tape()

    def symbol(self, name: str) -> Any:
        """A register filled by an input or a hyperparameter called ``name``."""
        return _Symbol(name, self._tape)

    def number(self, value: float) -> Any:
        """A literal: a constant register, rounded to the storage dtype."""
        return _Symbol(self._tape.literal(value), self._tape)

    def program(self, inputs: tuple[str, ...], results: tuple[Any, ...]) -> Program:
        """The program with these input registers, returning ``results`` in order.

        A result that is an input, a hyperparameter or a literal is copied,
        so that no output is an input.
        """
        tape = self._tape
        computed = {i.out for i in tape.instrs}
        outputs = []
        for result in results:
            name = _Symbol._operand(_Symbol("", tape), result)
            if name not in computed:
                copied = f"_t{len(tape.instrs)}"
                tape.instrs.append(instr(copied, "copy", name))
                computed.add(copied)
                name = copied
            outputs.append(name)
        return Program(tuple(tape.instrs), CANONICAL, inputs, tuple(outputs), dict(tape.literals))


@cache
def trace(leaf_fn: Callable[..., tuple[Any, ...]]) -> Program:
    """The program of ``leaf_fn(*arrays, **hyperparameters)`` (cached per function).

    Its inputs are the positional parameters; the keyword-only ones
    (hyperparameters) are constant registers, whose :class:`Hyper` values
    the caller adds (:func:`~nagref._engine.ir.bind`). Literals are
    already there.
    """
    parameters = inspect.signature(leaf_fn).parameters.values()
    positional = tuple(p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD)
    keyword = tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)
    tracer = Tracer()
    results = leaf_fn(
        *(tracer.symbol(name) for name in positional),
        **{name: tracer.symbol(name) for name in keyword},
    )
    return tracer.program(positional, tuple(results))
