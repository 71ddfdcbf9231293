"""The bounded JSON Lines reader and writer (specc.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from specc.errors import DataError, UsageError
from specc.jsonl import MAX_DEPTH, dumps_line, iter_jsonl, parse_line, read_json_file


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested too deeply"),
        (b'{"id": ' + b"7" * 400 + b"}", "400 digits"),
        (b'{"id": ' + b"7" * 5000 + b"}", "5000 digits"),
        (b'{"id": 9223372036854775808}', "out of range"),
        (b'{"x": 1e999}', "overflows to infinity"),
        (b'{"x": NaN}', "NaN is not a JSON number"),
        (b'{"x": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"a": "\\ud800"}', "lone UTF-16 surrogate"),
        (b'{"a": "\\udfff"}', "lone UTF-16 surrogate"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"a": 1', "invalid JSON"),
        (b'\xef\xbb\xbf{"a": 1}', "byte order mark"),  # was "Expecting value (column 1)"
    ],
)
def test_bad_lines_are_data_errors_at_their_place(raw: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        parse_line(raw, "rows.jsonl:7")
    assert info.value.where == "rows.jsonl:7"


def test_values_inside_the_bounds_parse() -> None:
    assert parse_line(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, "w") is not None
    assert parse_line(b'{"id": 9223372036854775807, "x": 1e308}', "w") == {
        "id": 2**63 - 1,
        "x": 1e308,
    }
    assert parse_line(b'{"a": "\\ud83d\\ude00"}', "w") == {"a": "\U0001f600"}


def test_line_separators_stay_inside_one_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [{"id": "a\u2028b\u2029c", "n": 1}, {"id": "second", "n": 2}]
    path.write_text("".join(dumps_line(r) for r in rows), encoding="utf-8")
    assert "\u2028" not in path.read_text(encoding="utf-8")
    assert [obj for _, _, obj in iter_jsonl(path)] == rows
    # A file written by another tool with raw U+2028 is still one row per line.
    path.write_text(json.dumps(rows[0], ensure_ascii=False) + "\n", encoding="utf-8")
    assert [(n, obj) for n, _, obj in iter_jsonl(path)] == [(1, rows[0])]


def test_blank_lines_are_skipped_and_numbered(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\n', encoding="utf-8")
    assert [(n, where) for n, where, _ in iter_jsonl(path)] == [
        (1, f"{path}:1"),
        (4, f"{path}:4"),
    ]


def test_missing_and_directory_paths_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such"):
        list(iter_jsonl(tmp_path / "absent.jsonl"))
    with pytest.raises(UsageError, match="is a directory"):
        list(iter_jsonl(tmp_path))


def test_overlong_line_is_refused_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import specc.jsonl

    monkeypatch.setattr(specc.jsonl, "MAX_LINE_BYTES", 1024)
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b'{"a": "' + b"x" * 5000 + b'"}\n')
    with pytest.raises(DataError, match="longer than") as info:
        list(iter_jsonl(path))
    assert info.value.where == f"{path}:2"


def test_non_finite_floats_are_never_written() -> None:
    with pytest.raises(ValueError):
        dumps_line({"x": float("nan")})


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_json)
def test_round_trip(value: object) -> None:
    line = dumps_line(value)
    assert line.count("\n") == 1 and line.endswith("\n")
    assert parse_line(line.encode("utf-8"), "w") == value


def test_read_json_file_reads_one_bounded_document(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"a": [1, 2.5]}', encoding="utf-8")
    assert read_json_file(path, "the state", 100) == {"a": [1, 2.5]}
    with pytest.raises(DataError, match=r"state\.json: cannot read the state: .*limit is 5"):
        read_json_file(path, "the state", 5)
    path.write_text('{"n": 1e999}', encoding="utf-8")
    with pytest.raises(DataError, match=r"state\.json: cannot read the state: number 1e999") as e:
        read_json_file(path, "the state", 100)
    assert "hint" not in str(e.value)
    with pytest.raises(DataError, match=r"missing\.json: cannot read the state: .*No such file"):
        read_json_file(tmp_path / "missing.json", "the state", 100)


@pytest.mark.parametrize(
    ("raw", "line_hint", "document_hint"),
    [
        (b'{"a": 1', "each line must be one complete JSON object", "send one complete JSON value"),
        (b"\xff\xfe", "save the file as UTF-8", "encode it as UTF-8"),
        ('\ufeff{"a": 1}'.encode(), "save the file as UTF-8 without a BOM", "drop the byte order"),
    ],
)
def test_a_document_is_not_told_about_lines_or_files(
    raw: bytes, line_hint: str, document_hint: str
) -> None:
    """An HTTP body is one JSON text, not a line of a file: its hints say so."""
    with pytest.raises(DataError) as line:
        parse_line(raw, "d.jsonl:3")
    with pytest.raises(DataError) as document:
        parse_line(raw, "request body", document=True)
    assert line_hint in str(line.value)
    assert document_hint in str(document.value)
    assert "line" not in str(document.value).split("\n", 1)[1]
    assert "file" not in str(document.value)
