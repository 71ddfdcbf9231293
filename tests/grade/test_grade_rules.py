"""Deterministic extractors."""

from __future__ import annotations

import pytest

from specc.errors import UsageError
from specc.grade.rules import Extractor


def ext(**spec: object) -> Extractor:
    return Extractor.from_spec(spec, "p")


def test_regex_searches_anywhere() -> None:
    e = ext(kind="regex", pattern=r"(?i)\bhotline\b|988")
    assert e("Call the HOTLINE now.") == 1.0
    assert e("dial 988") == 1.0
    assert e("hotlines everywhere") == 0.0


def test_keywords_case_insensitive_on_word_boundaries() -> None:
    e = ext(kind="keywords", words=["sorry", "can't help", "c++"])
    assert e("I'm SORRY.") == 1.0
    assert e("Sorry!") == 1.0
    assert e("I can't help with that") == 1.0
    assert e("I like C++ a lot") == 1.0
    assert e("sorrynt") == 0.0
    assert e("unsorry") == 0.0
    assert e("abc++") == 0.0  # "c++" inside a word
    assert ext(kind="keywords", words=[])("anything") == 0.0


@pytest.mark.parametrize(
    ("op", "value", "unit", "text", "want"),
    [
        ("<", 3, "words", "a b", 1.0),
        ("<", 3, "words", "a b c", 0.0),
        ("<=", 3, "words", "a  b\n c", 1.0),
        (">", 5, "chars", "abcdef", 1.0),
        (">=", 7, "chars", "abcdef", 0.0),
        ("==", 0, "words", "   ", 1.0),
    ],
)
def test_length(op: str, value: int, unit: str, text: str, want: float) -> None:
    assert ext(kind="length", op=op, value=value, unit=unit)(text) == want


def test_bad_extractors_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown kind 'vibes'"):
        ext(kind="vibes")
    with pytest.raises(UsageError, match="missing closing"):
        ext(kind="regex", pattern="(")
    with pytest.raises(UsageError, match="unknown length unit"):
        ext(kind="length", op="<", value=3, unit="lines")


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"kind": "regex", "pattern": ["("]}, "not a string"),
        ({"kind": "regex", "pattern": "(a)\\1"}, "backreferences"),
        ({"kind": "regex", "pattern": "x", "flags": "i"}, "exactly the keys"),
        ({"kind": "regex"}, "exactly the keys"),
        ({"kind": "keywords", "words": "sorry"}, "not a list of strings"),
        ({"kind": "keywords", "words": [1, 2]}, "not a list of strings"),
        ({"kind": "keywords", "words": ["x"] * 10_001}, "the limit is 10,000"),
        ({"kind": "length", "op": "!=", "value": 3, "unit": "words"}, "unknown comparison"),
        ({"kind": "length", "op": "<", "value": True, "unit": "words"}, "not a whole number"),
        ({"kind": "length", "op": "<", "value": 1.5, "unit": "words"}, "not a whole number"),
        ({"kind": "length", "op": "<", "value": 10**30, "unit": "words"}, "not a whole number"),
        ({"kind": ["regex"]}, "unknown kind"),
    ],
)
def test_edited_manifest_extractors_are_refused(spec: dict[str, object], why: str) -> None:
    """A manifest may have been edited: each bad shape is a clear error, not a crash."""
    with pytest.raises(UsageError, match=why) as exc:
        Extractor.from_spec(spec, "p")
    assert "proposition 'p'" in str(exc.value) and "recompile" in str(exc.value)


def test_catastrophic_regex_answers_at_once() -> None:
    """``^(a+)+$`` backtracks exponentially in Python's re; RE2 is linear. The loop
    would not finish for 40 characters with a backtracking engine."""
    e = ext(kind="regex", pattern="^(a+)+$")
    for n in range(20, 41):
        assert e("a" * n + "!") == 0.0
        assert e("a" * n) == 1.0
