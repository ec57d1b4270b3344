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
    jobs: Sequence[tuple[Sequence[tuple[int, Buffer]], Sequence[tuple[int, Buffer]], int, int]],
    /,
) -> list[int]: ...
