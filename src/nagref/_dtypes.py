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
* ``host_via``: the dtype NumPy's converter (``ml_dtypes``, for the formats
  NumPy lacks) rounds a Python float through on its way to this dtype, or
  None where it converts directly, or :data:`ML_DTYPES` where that is the
  installed ``ml_dtypes``' to say (:func:`host_via`): 0.6 converts float64
  to bfloat16 through float32, rounding twice; 0.7 rounds once. JAX,
  TensorFlow's tracing and the Keras backends convert Python floats with it;
* ``library``: the module that provides the dtype to NumPy where NumPy has
  no such dtype of its own (``ml_dtypes``), or None;
* ``buffer_format``: NumPy's ``dtype.char``; for a real dtype of NumPy's own
  that is also its PEP 3118 format character, which the C evaluator checks
  (NumPy exports no format for ``ml_dtypes``' bfloat16; a complex
  dtype's PEP 3118 format is ``Z`` and its real part's: ``Zf``, not ``F``);
  ``c_type`` and ``cuda_type``: the C and CUDA types that hold it in the
  compiled kernels, or None where none does (the NumPy kernel reads
  bfloat16 as its bits, uint16, and computes it in float: see
  :mod:`nagref.fastpaths.numpy`).
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "COMPLEX",
    "ML_DTYPES",
    "NAMES",
    "REAL",
    "TABLE",
    "DType",
    "by_buffer_format",
    "host_via",
    "largest",
    "lookup",
    "numpy_dtype",
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
    host_via: str | None
    library: str | None
    buffer_format: str | None
    c_type: str | None
    cuda_type: str | None


#: A ``host_via`` that the installed ``ml_dtypes`` decides (:func:`host_via`).
ML_DTYPES = "ml_dtypes"


def host_via(name: str) -> str | None:
    """The dtype a Python float goes through on the host on its way to dtype ``name``
    (the table's ``host_via``, :data:`ML_DTYPES` resolved), or None: directly."""
    row = TABLE.get(name)
    if row is None or row.host_via is None:
        return None
    return _ml_dtypes_via() if row.host_via == ML_DTYPES else row.host_via


@functools.cache
def _ml_dtypes_via() -> str | None:
    """How the installed ``ml_dtypes`` converts float64 to bfloat16: ``"float32"``, through
    float32 (rounding twice: ``ml_dtypes`` 0.6 and before), or None, once (0.7).

    Measured on 1 + 2**-8 + 2**-30, just above a tie of bfloat16 that float32
    rounds onto: once it rounds up, twice to even (down). Without ``ml_dtypes``
    nothing converts to bfloat16 on the host: ``"float32"``, the older rule.
    """
    try:
        bfloat16 = importlib.import_module("ml_dtypes").bfloat16
    except ModuleNotFoundError:
        return "float32"
    np = importlib.import_module("numpy")
    twice = float(np.asarray(1.0 + 2.0**-8 + 2.0**-30).astype(bfloat16)) == 1.0
    return "float32" if twice else None


#: name -> row, in the order every listing uses.
TABLE: dict[str, DType] = {
    row.name: row
    for row in (
        # name, kind, precision, min/max exponent, real, opmath, conventions,
        # host_via, library, buffer format, C type, CUDA type
        DType("float16", "real floating", 11, -14, 16, "float16", "float32", True,
              None, None, "e", "half", None),
        DType("float32", "real floating", 24, -126, 128, "float32", "float32", True,
              None, None, "f", "float", "float"),
        DType("float64", "real floating", 53, -1022, 1024, "float64", "float64", True,
              None, None, "d", "double", "double"),
        DType("bfloat16", "real floating", 8, -126, 128, "bfloat16", "float32", True,
              ML_DTYPES, "ml_dtypes", "E", None, None),
        DType("complex64", "complex floating", 24, -126, 128, "float32", "complex64", False,
              None, None, "F", None, None),
        DType("complex128", "complex floating", 53, -1022, 1024, "float64", "complex128", False,
              None, None, "D", None, None),
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


def numpy_dtype(name: str) -> Any:
    """NumPy's dtype ``name``: its own, or the one the row's ``library`` registers (bfloat16).

    A name outside the table is NumPy's to read (or refuse).
    """
    numpy = importlib.import_module("numpy")
    row = TABLE.get(name)
    if row is None or row.library is None:
        return numpy.dtype(name)
    return numpy.dtype(getattr(importlib.import_module(row.library), name))


def smallest_normal(name: str) -> float:
    """The smallest positive normal number of ``name`` (of its real part)."""
    return 2.0 ** lookup(name).min_exponent


def largest(name: str) -> float:
    """The largest finite number of ``name`` (of its real part): 65504 for float16."""
    row = lookup(name)
    return (2.0 - 2.0 ** (1 - row.precision)) * 2.0 ** (row.max_exponent - 1)


def round_to(value: float, name: str) -> float:
    """``value`` rounded to nearest (ties to even) in the dtype ``name`` (its real part).

    Rounded once, exactly, from the table's precision and exponent range
    (subnormals included): a value that rounds to 2**max_exponent or beyond
    becomes an infinity. A dtype not in the table (a non-native byte order)
    is returned unrounded: the backend converts a Python float once.
    """
    row = TABLE.get(name)
    if row is None or value == 0.0 or not math.isfinite(value):
        return value
    real = TABLE[row.real]
    exponent = math.frexp(value)[1]  # |value| = m * 2**exponent, 1/2 <= m < 1
    # the exponent of the last significand bit, subnormals sharing the smallest
    quantum = max(exponent, real.min_exponent + 1) - real.precision
    units = round(math.ldexp(value, -quantum))  # exact scaling; round() ties to even
    try:
        rounded = math.ldexp(float(units), quantum)
    except OverflowError:
        return math.copysign(math.inf, value)
    if math.frexp(rounded)[1] > real.max_exponent:
        return math.copysign(math.inf, value)
    return math.copysign(rounded, value)  # a zero keeps the sign of what it came from
