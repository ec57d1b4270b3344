"""Regenerate the ``nagref explain`` listings in the docs: ``python docs/listings.py``.

A listing is a marker line ``<!-- nagref explain ARGS -->`` followed by a
fenced ``text`` block; this rewrites each block with the output of
``nagref explain ARGS``. tests/test_explaining.py checks that every block
is what the command prints.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

from nagref.cli import main

DOCS = Path(__file__).parent
BLOCK = re.compile(r"(<!-- nagref explain (?P<args>[^>]*?) -->\n```text\n)(?P<body>.*?)(```)", re.S)


def output(args: str) -> str:
    """What ``nagref explain ARGS`` prints."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main(["explain", *shlex.split(args)])
    return buffer.getvalue()


def regenerate(path: Path) -> bool:
    """Rewrite the listings in ``path``; whether anything changed."""
    text = path.read_text(encoding="utf-8")
    new = BLOCK.sub(lambda m: m.group(1) + output(m.group("args")) + m.group(4), text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    changed = [str(p) for p in sorted(DOCS.glob("*.md")) if regenerate(p)]
    print("rewrote " + (", ".join(changed) or "nothing"))
    sys.exit(0)
