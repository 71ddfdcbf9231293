"""The LALR tables shipped with specc (``specc/parser_tables.json``) follow the grammar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golden import FIXTURES, ROOT

from specc import parser

REGENERATE = "the grammar changed: run `python -m specc.parser --write-tables` and commit it"


def test_the_shipped_tables_are_those_of_the_grammar() -> None:
    shipped = json.loads(parser.TABLES_PATH.read_text(encoding="utf-8"))
    assert shipped["format"] == parser.TABLES_FORMAT
    assert shipped["grammar_sha256"] == parser._grammar_sha256(parser.grammar_text()), REGENERATE
    assert shipped["options"] == parser._PARSER_OPTIONS, REGENERATE
    if shipped["lark"] != parser.lark.__version__:
        pytest.skip(f"tables made with lark {shipped['lark']}, this is {parser.lark.__version__}")
    assert parser._load_tables(parser.grammar_text()) is not None, REGENERATE


def _sources() -> list[Path]:
    files = sorted((ROOT / "policies").rglob("*.rbr")) + sorted(FIXTURES.rglob("*.rbr"))
    assert len(files) > 10
    return files


def _flat(tree: object) -> list[object]:
    """A tree as a flat list, walked without recursion (some fixtures nest deeply)."""
    out: list[object] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, parser.Tree):
            out.append((node.data, len(node.children), getattr(node.meta, "line", None)))
            stack.extend(reversed(node.children))
        else:
            out.append(repr(node))
    return out


def test_a_parser_from_the_tables_parses_like_one_built_from_the_grammar() -> None:
    if json.loads(parser.TABLES_PATH.read_text(encoding="utf-8"))["lark"] != (
        parser.lark.__version__
    ):
        pytest.skip("tables made with another lark version")
    loaded = parser._load_tables(parser.grammar_text())
    assert loaded is not None, REGENERATE
    built = parser.lark.Lark(parser.grammar_text(), **parser._PARSER_OPTIONS)
    parsed = 0
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        try:
            expected = built.parse(text)
        except parser.UnexpectedInput as exc:
            with pytest.raises(type(exc)):
                loaded.parse(text)
            continue
        assert _flat(loaded.parse(text)) == _flat(expected), path
        parsed += 1
    assert parsed > 5


def test_missing_corrupt_or_foreign_tables_fall_back_to_the_grammar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grammar = parser.grammar_text()
    build = parser._parser.__wrapped__
    good = json.loads(parser.TABLES_PATH.read_text(encoding="utf-8"))
    cases = {
        "missing.json": None,
        "garbage.json": "{not json",
        "other-grammar.json": json.dumps({**good, "grammar_sha256": "0" * 64}),
        "other-lark.json": json.dumps({**good, "lark": "0.0.1"}),
        "broken-data.json": json.dumps({**good, "data": {"parser": 3}}),
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text, encoding="utf-8")
        monkeypatch.setattr(parser, "TABLES_PATH", path)
        assert parser._load_tables(grammar) is None, name
        monkeypatch.setattr(parser, "_parser", build)
        source, diags = parser.parse_source('policy "p" version "1"\n', "p.rbr")
        assert source.header is not None and source.header.name == "p" and not diags


def test_the_parser_writes_no_cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    parser._parser.__wrapped__()
    assert not list(tmp_path.iterdir())
