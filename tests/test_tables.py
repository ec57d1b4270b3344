"""nagref._tables.aligned: columns as wide as their widest cell, and both rule styles."""

from __future__ import annotations

from nagref._tables import aligned

HEADER = ("name", "n", "value")
ROWS = [("pytorch", "12", "0.5"), ("x", "3", "")]


def test_line_rule() -> None:
    assert aligned(HEADER, ROWS) == [
        "name     n   value",
        "------------------",
        "pytorch  12  0.5",
        "x        3",
    ]


def test_columns_rule() -> None:
    assert aligned(HEADER, ROWS, rule="columns") == [
        "name     n   value",
        "-------  --  -----",
        "pytorch  12  0.5",
        "x        3",
    ]


def test_every_column_starts_where_its_header_does() -> None:
    header = ("convention", "variant", "max ulp")
    rows = [("a", "a long variant", "1"), ("keras", "jax", "123456789")]
    lines = aligned(header, rows)
    starts = [0, lines[0].index("variant"), lines[0].index("max ulp")]
    for line, row in zip(lines[2:], rows, strict=True):
        assert [line[s:].split("  ")[0] for s in starts] == list(row)
    widths = [len(run) for run in aligned(header, rows, rule="columns")[1].split("  ")]
    assert widths == [len("convention"), len("a long variant"), len("123456789")]


def test_only_a_header() -> None:
    assert aligned(("a", "bb"), []) == ["a  bb", "-----"]
    assert aligned(("a", "bb"), [], rule="columns") == ["a  bb", "-  --"]


def test_trailing_spaces_are_dropped_but_wide_headers_count() -> None:
    lines = aligned(("wide header", "b"), [("x", "")])
    assert lines == ["wide header  b", "--------------", "x"]
    assert not any(line.endswith(" ") for line in lines)
