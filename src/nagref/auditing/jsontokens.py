"""A strict JSON reader over a memory map, one token at a time, in bounded memory.

The pieces :mod:`.vectorfile` walks a test vector with: the caller says what
it expects next (an object and the keys it may hold, an array, a string, an
integer, a list of hex floats or of bit patterns), and the reader checks exactly that. Nothing
is decoded that was not asked for; no string outside a float list may be
longer than :data:`MAX_STRING` bytes, no number longer than 64 characters, no
object hold more than :data:`MAX_MEMBERS` members, and :meth:`Tokens.skip`
(for the one free-form value, a recording's ``spec``) nests at most
:data:`MAX_DEPTH` deep, holds at most :data:`MAX_VALUES` values, and keeps a
stack, not a recursion. A list of hex
floats is parsed a run of about 128 KB at a time, vectorised, and the pages of
the map already read are handed back as the reader moves on, so that neither
the file nor a list of its strings is ever resident at once.
"""

from __future__ import annotations

import json
import mmap
import re
import sys
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ..vectors.hexfloat import misfit, numpy_dtype

__all__ = [
    "MAX_DEPTH",
    "MAX_MEMBERS",
    "MAX_STRING",
    "MAX_VALUES",
    "MalformedError",
    "Tokens",
    "parse_bits",
    "parse_hex",
]

#: The longest string, in bytes, outside the float lists: names, keys, a scalar's decimal.
MAX_STRING = 4096
#: The most members of one object, and items of a short list (a shape, the state names).
MAX_MEMBERS = 256
#: How deep a free-form value may nest, and how many values it may hold.
MAX_DEPTH = 8
MAX_VALUES = 1 << 20
# Possessive repeats (Python 3.11) keep no state per item; without them, shorter runs.
_POSSESSIVE = b"+" if sys.version_info >= (3, 11) else b""
_CHUNK = 1 << 17 if _POSSESSIVE else 1 << 16  # bytes of a float list parsed at once
_RELEASE = 1 << 20  # bytes read before their pages of the map are handed back
_END = -1
_WS = re.compile(rb"[ \t\n\r]*")
_PLAIN = re.compile(rb'[^"\\\x00-\x1f]*')  # a string's characters up to a quote or an escape
_SIMPLE = re.compile(rb'"([^"\\\x00-\x1f]*)"')
_SPACE = frozenset(b" \t\n\r")
_ESCAPE = re.compile(rb'\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})')
_NUMBER = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_STRICT_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]{0,39})(?:\.[0-9]{1,40})?(?:[eE][+-]?[0-9]{1,4})?")
_INTEGER = re.compile(rb"0|[1-9][0-9]{0,17}")
_LITERAL = re.compile(rb"true|false|null")
_LITERALS = {b"true": True, b"false": False, b"null": None}
_OPEN = {ord("{"): b"}", ord("["): b"]"}
# one string, then more after commas: schema.json's hex and decimal patterns
_HEX = rb'"(?:-?0x[01]\.[0-9a-f]{1,13}p[+-][0-9]{1,4}|nan|inf|-inf)"'
_DECIMAL = rb'"(?:-?[0-9](?:\.[0-9]+)?e[+-][0-9]+|nan|inf|-inf)"'
_BITS = rb'"0x[0-9a-f]{4}"'  # schema.json's bits pattern
_SEPARATOR = rb"[ \t\n\r]*,[ \t\n\r]*"
_HEX_RUN = re.compile(_HEX + rb"(?:" + _SEPARATOR + _HEX + rb")*" + _POSSESSIVE)
_BITS_RUN = re.compile(_BITS + rb"(?:" + _SEPARATOR + _BITS + rb")*" + _POSSESSIVE)
_DECIMAL_RUN = re.compile(_DECIMAL + rb"(?:" + _SEPARATOR + _DECIMAL + rb")*" + _POSSESSIVE)
_NIBBLE = np.zeros(256, np.int64)  # a hex digit's value; anything else (the 'p') 0
_NIBBLE[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16)


@lru_cache(maxsize=1024)
def _utf8(text: bytes) -> str:
    return text.decode("utf-8")


class MalformedError(ValueError):
    """Not what was expected: the reason in one line, without the file's name."""


class _InexactError(Exception):
    def __init__(self, index: int, reason: str) -> None:
        self.index, self.reason = index, reason


class Tokens:
    """A position in ``data`` and the ways to read on from it."""

    def __init__(self, data: mmap.mmap | bytes) -> None:
        self.data, self.size = data, len(data)
        self.pos = 0
        self.released = 0  # the map's pages before this offset were handed back

    def fail(self, where: str, wanted: str) -> MalformedError:
        """The error for something other than ``wanted`` at the current position."""
        self.peek()
        near = self.data[self.pos : self.pos + 24].decode("utf-8", "replace")
        got = repr(near) if near else "the end of the file"
        return MalformedError(f"{where}: expected {wanted} at byte {self.pos}, got {got}")

    def peek(self) -> int:
        """The next byte after any whitespace (not consumed), or -1 at the end."""
        if self.pos < self.size and self.data[self.pos] not in _SPACE:
            return self.data[self.pos]
        self.pos = _WS.match(self.data, self.pos).end()  # type: ignore[union-attr]
        return self.data[self.pos] if self.pos < self.size else _END

    def take(self, char: bytes) -> bool:
        """Consume ``char`` if it comes next."""
        if self.peek() == char[0]:
            self.pos += 1
            return True
        return False

    def expect(self, char: bytes, where: str, wanted: str) -> None:
        if not self.take(char):
            raise self.fail(where, wanted)

    def end(self) -> None:
        """Nothing but whitespace may follow."""
        if self.peek() != _END:
            raise self.fail("the file", "nothing after the vector")

    def token(self, pattern: re.Pattern[bytes], where: str, wanted: str) -> bytes:
        self.peek()
        match = pattern.match(self.data, self.pos)
        if match is None:
            raise self.fail(where, wanted)
        self.pos = match.end()
        return match.group()

    def string(self, where: str, limit: int = MAX_STRING, wanted: str = "a string") -> str:
        """A string of at most ``limit`` bytes; a longer one is refused once ``limit`` is read."""
        if self.peek() != ord('"'):
            raise self.fail(where, wanted)
        start, data = self.pos, self.data
        simple = _SIMPLE.match(data, start, start + limit + 2)
        if simple is not None:  # no escapes: the common case
            self.pos = simple.end()
            try:
                return _utf8(simple.group(1))
            except UnicodeDecodeError:
                raise MalformedError(f"{where}: not UTF-8, at byte {start}") from None
        pos, stop = start + 1, min(start + 1 + limit, len(data))
        while True:
            pos = _PLAIN.match(data, pos, stop).end()  # type: ignore[union-attr]
            escape = _ESCAPE.match(data, pos, stop)
            if escape is None:
                break
            pos = escape.end()
        if pos >= stop - 5 and stop < len(data) and data[pos] != ord('"'):
            raise MalformedError(f"{where}: a string longer than the limit of {limit} bytes")
        if pos == len(data) or data[pos] != ord('"'):
            self.pos = pos
            raise self.fail(where, "the string to go on (a control character or a bad escape?)")
        self.pos = pos + 1
        try:
            text = json.loads(data[start : pos + 1])
        except ValueError:
            raise MalformedError(f"{where}: not UTF-8, at byte {start}") from None
        assert isinstance(text, str)
        return text

    def number(self, where: str) -> bytes:
        """A JSON number's text: at most 64 characters, an exponent of at most 4 digits."""
        self.peek()
        match = _NUMBER.match(self.data, self.pos, self.pos + 65)
        if match is None:
            raise self.fail(where, "a number")
        token, self.pos = match.group(), match.end()
        if len(token) > 64 or not _STRICT_NUMBER.fullmatch(token):
            short = token[:20].decode() + ("..." if len(token) > 20 else "")
            raise MalformedError(f"{where}: the number {short} is too long or out of range")
        return token

    def integer(self, where: str) -> int:
        """A non-negative JSON integer of at most 18 digits: not 1.0, 1e3, "1" or true."""
        if not ord("0") <= self.peek() <= ord("9"):
            raise self.fail(where, "a non-negative integer")
        token = self.number(where)
        if not _INTEGER.fullmatch(token):
            raise MalformedError(
                f"{where}: expected an integer of at most 18 digits, got {token.decode()}"
            )
        return int(token)

    def literal(self, where: str) -> bool | None:
        return _LITERALS[self.token(_LITERAL, where, "true, false or null")]

    def members(
        self, where: str, allowed: frozenset[str] | None, required: tuple[str, ...] = ()
    ) -> Iterator[str]:
        """Each key of an object, its value next in line; unknown and repeated keys refused."""
        self.expect(b"{", where, "an object")
        seen: set[str] = set()
        if not self.take(b"}"):
            while True:
                key = self.key(where, seen)
                if allowed is not None and key not in allowed:
                    raise MalformedError(f"{where}: unknown key {key!r}")
                yield key
                if not self.take(b","):
                    self.expect(b"}", where, "',' or '}'")
                    break
        for key in required:
            if key not in seen:
                raise MalformedError(f"{where}: missing key {key!r}")

    def key(self, where: str, seen: set[str]) -> str:
        key = self.string(where, 256, "a key (a string)")
        if key in seen:
            raise MalformedError(f"{where}: the key {key!r} appears twice")
        if len(seen) == MAX_MEMBERS:
            raise MalformedError(f"{where}: more than {MAX_MEMBERS} members")
        seen.add(key)
        self.expect(b":", where, f"':' after {key!r}")
        return key

    def items(self, where: str, limit: int | None = None) -> Iterator[int]:
        """The index (from 1) of each item of an array, its value next in line."""
        self.expect(b"[", where, "an array")
        if self.take(b"]"):
            return
        n = 0
        while True:
            n += 1
            if limit is not None and n > limit:
                raise MalformedError(f"{where}: more than {limit} items")
            yield n
            self._release()
            if not self.take(b","):
                self.expect(b"]", where, "',' or ']'")
                return

    def skip(self, where: str) -> None:
        """Any JSON value, checked as strictly as the rest, and dropped."""
        stack: list[set[str] | None] = []  # for each open container, an object's keys or None
        for _ in range(MAX_VALUES):
            c = self.peek()
            if c in _OPEN:
                if len(stack) == MAX_DEPTH:
                    raise MalformedError(f"{where}: nested more than {MAX_DEPTH} deep")
                self.pos += 1
                keys: set[str] | None = set() if c == ord("{") else None
                stack.append(keys)
                if not self.take(_OPEN[c]):
                    if keys is not None:
                        self.key(where, keys)
                    continue  # a value follows
                stack.pop()
            elif c == ord('"'):
                self.string(where)
            elif c in (ord("t"), ord("f"), ord("n")):
                self.literal(where)
            else:
                self.number(where)
            while stack:  # a value is complete: the next one, or its container's end
                keys = stack[-1]
                if self.take(b","):
                    if keys is not None:
                        self.key(where, keys)
                    break
                self.expect(b"]" if keys is None else b"}", where, "',' or the container's end")
                stack.pop()
            if not stack:
                return
        raise MalformedError(f"{where}: more than {MAX_VALUES} values")

    def hex_floats(self, where: str, dtype: str | np.dtype[Any]) -> Iterator[npt.NDArray[Any]]:
        """A list of hex float strings, a run at a time: each value exactly one of ``dtype``'s."""
        done = 0
        kind = numpy_dtype(dtype)
        for run in self._runs(where, _HEX_RUN, "a hex float string (like 0x1.8p-1, nan, inf)"):
            try:
                values = parse_hex(run)
                _check_exact(values, kind)
            except _InexactError as error:
                word = _word(run, error.index)
                where = f"{where}[{done + error.index}]"
                raise MalformedError(f"{where}: {word!r} is {error.reason}") from None
            done += values.size
            yield values.astype(kind, copy=False)

    def bit_patterns(self, where: str) -> Iterator[npt.NDArray[np.uint16]]:
        """A list of 16-bit patterns (``"0x3fc0"``), a run at a time, as uint16 words."""
        for run in self._runs(where, _BITS_RUN, "a bit pattern string (like 0x3fc0)"):
            yield parse_bits(run)

    def decimals(self, where: str) -> int:
        """How many decimal strings a list holds, each checked against schema.json's pattern."""
        runs = self._runs(where, _DECIMAL_RUN, "a decimal string (like 1.5e-01, nan, inf)")
        return sum(run.count(b'"') // 2 for run in runs)

    def _runs(self, where: str, pattern: re.Pattern[bytes], wanted: str) -> Iterator[bytes]:
        """A list of strings as runs of ``pattern`` of at most 128 KB each."""
        self.expect(b"[", where, "an array")
        if self.take(b"]"):
            return
        while True:
            self.peek()
            match = pattern.match(self.data, self.pos, min(self.pos + _CHUNK, len(self.data)))
            if match is None:
                raise self.fail(where, wanted)
            self.pos = match.end()
            yield self.data[match.start() : match.end()]
            self._release()
            if not self.take(b","):
                self.expect(b"]", where, "',' or ']'")
                return

    def _release(self) -> None:
        """Hand the pages already read back, so that a large file does not stay resident."""
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if self.pos - self.released < _RELEASE or advice is None:
            return
        if isinstance(self.data, mmap.mmap):
            end = self.pos - self.pos % mmap.PAGESIZE
            self.data.madvise(advice, self.released, end - self.released)
            self.released = end


def parse_hex(run: bytes) -> npt.NDArray[np.float64]:
    """The values of a run of hex float strings (as ``_HEX_RUN`` matches it), exactly.

    Vectorised: the digits of every string are read at once, the significand
    and exponent assembled as integers, and the value scaled with ``ldexp``,
    which is exact where float64 holds the value; a value it does not hold
    (too large, or with bits below the smallest subnormal) is refused.
    """
    u = np.frombuffer(run, np.uint8)
    quotes = np.flatnonzero(u == ord('"'))
    start, end = quotes[0::2] + 1, quotes[1::2]
    negative = u[start] == ord("-")
    kind = u[start + negative]
    out = np.where(kind == ord("n"), np.nan, np.inf)
    hexes = np.flatnonzero(kind == ord("0"))
    s, e, p = start[hexes] + negative[hexes], end[hexes], np.flatnonzero(u == ord("p"))
    significand = (u[s + 2].astype(np.int64) - ord("0")) << 52
    for j in range(13):  # the digits after the point; past the last one, the 'p' reads as 0
        significand |= _NIBBLE[u[np.minimum(s + 4 + j, p)]] << (48 - 4 * j)
    exponent = np.zeros(s.size, np.int64)
    for k in range(4):
        at = p + 2 + k
        digit = u[np.minimum(at, e)].astype(np.int64) - ord("0")
        exponent = np.where(at < e, exponent * 10 + digit, exponent)
    exponent[u[p + 1] == ord("-")] *= -1
    with np.errstate(over="ignore", under="ignore"):
        value = np.ldexp(significand.astype(np.float64), (exponent - 52).astype(np.int32))
        back = np.ldexp(value, (52 - exponent).astype(np.int32))
    wrong = back != significand
    if wrong.any():
        i = int(np.argmax(wrong))
        too_large = bool(np.isinf(value[i]))
        raise _InexactError(
            int(hexes[i]), "out of range for float64" if too_large else "not exactly a float64"
        )
    out[hexes] = value
    np.negative(out, out=out, where=negative)
    return out


def parse_bits(run: bytes) -> npt.NDArray[np.uint16]:
    """The words of a run of bit pattern strings (as ``_BITS_RUN`` matches it)."""
    u = np.frombuffer(run, np.uint8)
    first = np.flatnonzero(u == ord('"'))[0::2] + 3  # the first digit, after '"0x'
    word = np.zeros(first.size, np.int64)
    for j in range(4):
        word = (word << 4) | _NIBBLE[u[first + j]]
    return word.astype(np.uint16)


def _check_exact(values: npt.NDArray[np.float64], dtype: np.dtype[Any]) -> None:
    if (i := misfit(values, dtype)) is not None:
        raise _InexactError(i, f"not a {dtype.name} value")


def _word(run: bytes, i: int) -> str:
    """The ``i``-th string of a run."""
    quotes = np.flatnonzero(np.frombuffer(run, np.uint8) == ord('"'))
    return run[quotes[2 * i] + 1 : quotes[2 * i + 1]].decode()
