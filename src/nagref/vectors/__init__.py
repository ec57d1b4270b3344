"""Language-neutral test vectors: nagref's trajectories as JSON, one file per case.

For people who implement SGD, momentum or NAG elsewhere (Rust, C++, CUDA,
JavaScript) and need exact expected values. ``nagref vectors --out DIR``
writes them; :func:`cases` and :func:`encode` are the same as a library.

Each file holds one case: the convention (``rules``, ``formulations`` or a
framework), its variant and dtype, the function it exercises, the
hyperparameters of every step under that function's own names, the initial
parameters and state, the gradient of every step, and the parameters and
state nagref computes after every step. Every float appears twice, as an
exact hexadecimal string (C99 ``%a`` / ``float.hex``; ``nan``, ``inf`` and
``-inf`` spelled so) and as the shortest decimal that reads back to the same
value in its array's dtype; a bfloat16 array also holds each value's bit
pattern (``bits``). ``state_dtype`` names the state's dtype where it is not
the case's (Optax's float32 trace of bfloat16 parameters). ``schema.json``
(in this package) is the JSON Schema; ``docs/vectors.md`` shows how to
consume the files.

The output is deterministic: the same nagref version writes byte-identical
files.

The trajectories recorded from the live frameworks (``conformance/recordings``,
:mod:`nagref.live.recordings`) are files of the same format, with two
optional members nagref's own vectors never hold: ``recorded_by`` (the
framework and its version) and ``spec`` (the live case). :mod:`.hexfloat` is
the one hex-float codec that both use.
"""

from __future__ import annotations

from .catalogue import CONVENTIONS, DTYPES, Case, cases
from .encode import SCHEMA_VERSION, encode, schema, write

__all__ = ["CONVENTIONS", "DTYPES", "SCHEMA_VERSION", "Case", "cases", "encode", "schema", "write"]
