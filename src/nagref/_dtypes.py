"""Every fact nagref knows about a storage dtype, in one table.

The casts, the exact FMA, the kernels, the conventions, the test oracles,
the vectors' schema and the trajectory loader all read :data:`TABLE`;
nothing else names a dtype's properties. Adding a dtype is one row here,
plus each convention's rounding facts in its own module.

A row says:

* ``kind``: ``"real floating"`` or ``"complex floating"`` (the array API's
  dtype kinds);
* ``precision``: significand bits, the implicit leading bit included (of the
  real part, for a complex dtype); ``min_exponent`` and ``max_exponent``:
  the smallest normal number is 2**min_exponent and every finite number is
  below 2**max_exponent;
* ``real``: the dtype of its real part (itself, for a real dtype);
* ``opmath``: the dtype the frameworks' CPU kernels compute it in
  (PyTorch's ``opmath_type``, Eigen's and XLA's upcasts): float32 for the
  16-bit formats, the dtype itself otherwise. A Python float reaches a
  16-bit tensor through it, so it is rounded twice (c10's ``Half(double)``);
* ``conventions``: whether the framework conventions model it;
* ``buffer_format``: NumPy's ``dtype.char``; for a real dtype that is also
  its PEP 3118 format character, which the C evaluator checks (a complex
  dtype's PEP 3118 format is ``Z`` and its real part's: ``Zf``, not ``F``);
  ``c_type`` and ``cuda_type``: the C and CUDA types the compiled kernels
  compute it in, or None where they do not.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "COMPLEX",
    "NAMES",
    "REAL",
    "TABLE",
    "DType",
    "by_buffer_format",
    "largest",
    "lookup",
    "round_to",
    "smallest_normal",
]

Kind = Literal["real floating", "complex floating"]


@dataclass(frozen=True)
class DType:
    """One storage dtype (see the module docstring)."""

    name: str
    kind: Kind
    precision: int
    min_exponent: int
    max_exponent: int
    real: str
    opmath: str
    conventions: bool
    buffer_format: str | None
    c_type: str | None
    cuda_type: str | None


#: name -> row, in the order every listing uses.
TABLE: dict[str, DType] = {
    row.name: row
    for row in (
        # name, kind, precision, min/max exponent, real, opmath, conventions,
        # buffer format, C type, CUDA type
        DType("float16", "real floating", 11, -14, 16, "float16", "float32", True,
              "e", "half", None),
        DType("float32", "real floating", 24, -126, 128, "float32", "float32", True,
              "f", "float", "float"),
        DType("float64", "real floating", 53, -1022, 1024, "float64", "float64", True,
              "d", "double", "double"),
        DType("complex64", "complex floating", 24, -126, 128, "float32", "complex64", False,
              "F", None, None),
        DType("complex128", "complex floating", 53, -1022, 1024, "float64", "complex128", False,
              "D", None, None),
    )
}  # fmt: skip

#: Every dtype nagref supports, real and complex.
NAMES: tuple[str, ...] = tuple(TABLE)
#: The real floating dtypes.
REAL: tuple[str, ...] = tuple(n for n, d in TABLE.items() if d.kind == "real floating")
#: The complex floating dtypes.
COMPLEX: tuple[str, ...] = tuple(n for n, d in TABLE.items() if d.kind == "complex floating")

_BY_FORMAT = {d.buffer_format: d for d in TABLE.values() if d.buffer_format is not None}


def lookup(name: str) -> DType:
    """The row of ``name``; a KeyError names the dtypes there are."""
    try:
        return TABLE[name]
    except KeyError:
        raise KeyError(f"unknown dtype {name!r}; nagref knows {', '.join(NAMES)}") from None


def by_buffer_format(char: str) -> DType | None:
    """The row whose NumPy ``dtype.char`` (for a real dtype, its PEP 3118 format) is ``char``."""
    return _BY_FORMAT.get(char)


def smallest_normal(name: str) -> float:
    """The smallest positive normal number of ``name`` (of its real part)."""
    return 2.0 ** lookup(name).min_exponent


def largest(name: str) -> float:
    """The largest finite number of ``name`` (of its real part): 65504 for float16."""
    row = lookup(name)
    return (2.0 - 2.0 ** (1 - row.precision)) * 2.0 ** (row.max_exponent - 1)


def round_to(value: float, name: str) -> float:
    """``value`` rounded to nearest (ties to even) in the dtype ``name`` (its real part).

    ``struct`` packs a float as C converts it (float32) or as IEEE 754
    rounds it (float16), once; a value that rounds beyond the largest finite
    number becomes an infinity. A dtype not in the table (a non-native byte
    order) is returned unrounded: the backend converts a Python float once.
    """
    row = TABLE.get(name)
    if row is None:
        return value
    code = TABLE[row.real].buffer_format
    assert code is not None
    try:
        rounded: float = struct.unpack(code, struct.pack(code, value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)
    return rounded
