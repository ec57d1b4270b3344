"""Type stub for the compiled evaluator (src/nagref/fastpaths/_cpu.c)."""

from collections.abc import Sequence

HAVE_FLOAT16: int
MAX_REGISTERS: int
BLOCK_BYTES: int

#: (kind, flush, n_registers, lanes, input registers, output registers)
Spec = tuple[int, bool, int, int, bytes, bytes]

def run(
    spec: Spec,
    segments: Sequence[tuple[bytes, Sequence[tuple[int, float]]]],
    leaves: Sequence[tuple[object, ...]],
    array_type: type,
    /,
) -> list[int]: ...
