"""Type stub for the compiled evaluator (src/nagref/fastpaths/_cpu.c)."""

from collections.abc import Sequence

from typing_extensions import Buffer

HAVE_FLOAT16: int
MAX_REGISTERS: int
BLOCK_BYTES: int

def run(
    kind: int,
    flush: bool,
    n_registers: int,
    program: bytes,
    constants: Sequence[tuple[int, float]],
    inputs: Sequence[tuple[int, Buffer]],
    outputs: Sequence[tuple[int, Buffer]],
    start: int,
    stop: int,
    /,
) -> None: ...
