"""What a program computes on leaves of one dtype, as a value: equal values, equal bits.

Two programs may spell one computation differently: other register names,
a hyperparameter called ``lr`` or ``epsilon``, a cast chain through float32
that is no cast at all for float32 leaves, constants that no operation
reads. :func:`fingerprint` removes the spelling and keeps what decides the
bits: the operations in order on the values they read (the inputs by
position, each constant by its dtype and bits as the leaves will see it),
the rounding for this storage dtype, the split into body and tail, and
where each output comes from. Two programs with equal fingerprints give the
same bits on the same leaves, since the engine is deterministic; unequal
fingerprints say nothing (a program may compute one value two ways).

The audit's replay runs each fingerprint once per step
(:func:`nagref._apply.sharing`), where candidates from several frameworks
round the same operations in the same order.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from .._checks import dtype_name
from .._compat import device
from .._typing import Namespace
from .hypers import constants
from .ir import Program, Recipe, Rounding

__all__ = ["fingerprint", "same"]


def fingerprint(xp: Namespace, program: Program, first: Any) -> Hashable | None:
    """``program``'s computation on leaves like ``first``; None where it is not told
    (per-element masks, a constant whose bytes its library does not give: ``tobytes``)."""
    if program.scalar is not None and any(program.scalar):
        return None
    storage = dtype_name(first)
    values = constants(xp, program.hypers, program.rounding, first, device(first))
    known: dict[str, Hashable] = {}
    for name, value in values.items():
        to_bytes = getattr(value, "tobytes", None)  # NumPy's and CuPy's arrays
        if to_bytes is None:
            return None
        known[name] = ("constant", str(value.dtype), bytes(to_bytes()))
    for k, name in enumerate(program.inputs):
        known[name] = ("input", k)
    body, after = _recipe(program.recipe, known)
    parts: list[Hashable] = [
        storage,
        _rounding(program.rounding, storage),
        body,
        tuple(None if name is None else after.get(name) for name in program.outputs),
        tuple(sorted((after.get(r), d) for r, d in program.stored.items())),
    ]
    if program.split is not None:
        split = program.split
        tail, tail_after = _recipe(split.tail, known)
        outputs = tuple(None if name is None else tail_after.get(name) for name in program.outputs)
        parts += [
            tail,
            outputs,
            _rounding(split.tail_rounding, storage),
            split.lanes.get(storage, 0),
            split.grain,
            split.threads,
        ]
    return tuple(parts)


def _recipe(
    recipe: Recipe, known: Mapping[str, Hashable]
) -> tuple[tuple[Hashable, ...], dict[str, Hashable]]:
    """Each operation on what it reads (registers renamed by the value they hold)."""
    held = dict(known)
    steps: list[Hashable] = []
    for k, instr in enumerate(recipe):
        steps.append((instr.op, tuple(_read(held, a) for a in instr.args)))
        held[instr.out] = ("result", k)
    return tuple(steps), held


def _read(held: Mapping[str, Hashable], register: str) -> Hashable:
    return held.get(register, ("unset", register))


def _rounding(rounding: Rounding, storage: str) -> Hashable:
    return (
        rounding.contract,
        rounding.compute.get(storage, storage),
        rounding.result.get(storage, storage),
        storage in rounding.flush,
    )


def same(prints: Sequence[Hashable | None], others: Sequence[Hashable | None]) -> bool:
    """Whether two calls' fingerprints (one per dtype group) tell them equal."""
    return all(p is not None for p in prints) and list(prints) == list(others)
