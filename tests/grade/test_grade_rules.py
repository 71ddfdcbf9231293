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
    with pytest.raises(UsageError, match="unknown extractor kind"):
        ext(kind="vibes")
    with pytest.raises(UsageError, match="invalid regex"):
        ext(kind="regex", pattern="(")
    with pytest.raises(UsageError, match="unknown length unit"):
        ext(kind="length", op="<", value=3, unit="lines")
