"""Plumbing shared by the conventions: pytrees, validation and leaf dispatch."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._apply import apply, check
from .._checks import describe, dtype_name
from .._dtypes import TABLE, round_to
from .._engine.ir import Hyper, Instr, Program, Rounding, instr, per_dtype
from .._host import native_float16, x86_64
from .._tree import flatten, flatten_like, unflatten
from ._registry import REAL_FLOATS

__all__ = [
    "DTYPES",
    "FLUSHED",
    "IN_OPMATH",
    "REAL_FLOATS",
    "ZERO",
    "check_trees",
    "donated",
    "dtype_name",
    "float32",
    "from_zero",
    "native_here",
    "not_native_here",
    "number",
    "run",
    "stand_in",
    "written",
]


#: The storage dtypes the conventions take, and who takes them (for the checks' messages).
DTYPES = (REAL_FLOATS, "the framework conventions support")

#: A rounding model's ``compute`` map for kernels that compute each dtype in
#: its ``opmath`` (the dtype table's): float16 and bfloat16 in float32.
IN_OPMATH: dict[str, str] = {
    name: TABLE[name].opmath for name in REAL_FLOATS if TABLE[name].opmath != name
}

#: The storage dtypes whose subnormals a CPU running with FTZ/DAZ flushes (XLA
#: and TensorFlow on x86): those whose subnormals are subnormal in the dtype
#: they are computed in: float32, float64, and bfloat16 (float32's exponent
#: range), but not float16, whose subnormals are normal float32 numbers.
FLUSHED: frozenset[str] = frozenset(
    name
    for name in REAL_FLOATS
    if TABLE[name].min_exponent == TABLE[TABLE[name].opmath].min_exponent
)


def native_here(dtype: str) -> bool:
    """A ``native_float16=True`` variant's ``live``: float16, on a CPU with AVX512-FP16."""
    return dtype == "float16" and native_float16()


def not_native_here(dtype: str) -> bool:
    """A ``native_float16=False`` variant's ``live``: every dtype on x86-64, where XLA can
    be kept to AVX2 (the live driver starts such a worker so on an AVX512-FP16 CPU)."""
    return not native_here(dtype) or x86_64()


def number(name: str, value: object) -> float:
    """A hyperparameter given as a Python real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    return float(value)


def run(
    trees: Mapping[str, object],
    program: Program | Callable[[str], Program],
    out: Sequence[object | None] | None = None,
    fixed: Mapping[str, str] | None = None,
) -> tuple[Any, ...]:
    """Validate the trees (as the core rules do) and run the convention's program.

    ``program`` is one program for every dtype, or a function giving the
    program for a storage dtype (by name); that is asked once per dtype in
    the trees, after every leaf's dtype is checked to be one the conventions
    model (a leaf of another is named by its pytree path), and before
    anything is computed. ``fixed``: trees (and outputs, ``"out[1]"``) of a
    dtype of their own (see :func:`nagref._apply.apply`).
    """
    return apply(per_dtype(program), trees, out=out, n_outputs=2, dtypes=DTYPES, fixed=fixed)


def check_trees(
    trees: Mapping[str, object],
    program: Program | Callable[[str], Program],
    out: Sequence[object | None] | None = None,
) -> None:
    """Check the trees and ``out`` as :func:`run` does, computing and writing nothing."""
    check(per_dtype(program), trees, out=out, n_outputs=2, dtypes=DTYPES)


def stand_in(dtype: str) -> Program:
    """A program for :func:`check_trees` alone (it is never run): any dtype, two outputs."""
    return Program((), Rounding(contract=False), ("p", "g"), ("p", "b"), {})


def written(out: tuple[Any, Any] | None, results: tuple[Any, Any]) -> tuple[Any, Any]:
    """``results`` (param and state trees, computed whole) written into ``out``'s arrays.

    Each array of ``out[k]`` (checked before anything was computed) receives
    the leaf of ``results[k]`` in its place, and is returned in its stead;
    an ``out[k]`` of None, or a None result, is left as it is.
    """
    if out is None:
        return results
    trees = list(results)
    for k, tree in enumerate(results):
        if out[k] is None or tree is None:
            continue
        entries, structure = flatten(tree)
        values = [leaf for _, leaf in entries]
        targets: list[Any] = flatten_like(structure, out[k], f"out[{k}]")
        for j, (target, value) in enumerate(zip(targets, values, strict=True)):
            if value is not None and target is not value:
                target[...] = value
                values[j] = target
        trees[k] = unflatten(structure, values)
    return trees[0], trees[1]


#: A state that starts at zero (the frameworks' zeros initializer), as a
#: recipe's first step: ``state <- 0``, from the constant register ``zero``.
ZERO = Hyper(0.0)


def from_zero(state: str) -> tuple[Instr, ...]:
    """The instruction that starts register ``state`` at zero (see :data:`ZERO`)."""
    return (instr(state, "copy", "zero"),)


def donated(out: object, state: str, has_state: bool) -> tuple[object, object] | None:
    """Check a convention's ``out=(param_out, state_out)`` against what it returns."""
    if out is None:
        return None
    if not isinstance(out, tuple) or len(out) != 2:
        raise ValueError(f"out must be a pair (param_out, {state}_out), got {describe(out)}")
    if out[1] is not None and not has_state:
        raise ValueError(f"out[1] must be None: this step returns no {state}")
    return out


def float32(value: float) -> float:
    """``value`` rounded to float32 (to nearest, ties to even), as a Python float.

    One float32 operation evaluated in float64 and then rounded is correctly
    rounded, since 53 >= 2·24 + 2 (Figueroa 1995), so hyperparameter
    arithmetic done this way equals the framework's float32 arithmetic.
    """
    return round_to(value, "float32")
