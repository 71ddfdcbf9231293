"""Extractor patterns: RE2 only, refusals with reasons, keywords without lookaround."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specc.patterns import MAX_PATTERN_CHARS, PatternError, compile_pattern, keyword_pattern


@pytest.mark.parametrize(
    ("pattern", "why", "hint"),
    [
        (r"(\w+) \1", "backreferences", "repeated text"),
        (r"(?P<w>a)(?P=w)", "backreferences", "repeated text"),
        (r"sorry(?=!)", "lookahead", "surrounding text"),
        (r"sorry(?!!)", "negative lookahead", "surrounding text"),
        (r"(?<=I'm )sorry", "lookbehind", "surrounding text"),
        (r"(?<!not )sorry", "negative lookbehind", "surrounding text"),
        (r"a*+b", "possessive", "write * alone"),
        (r"(?>a+)b", "atomic groups", "plain group"),
        (r"sorry\Z", r"no \Z", r"\z"),
        (r"(a)?(?(1)b|c)", "conditional", "alternatives"),
        (r"(?x) a b", "does not support", "flags are i, m, s and U"),
        ("a{1001}", "too large", "up to 1000"),
        (r"\pL{1000}", "8 MiB", "simplify"),
        ("(hotline", "missing closing )", "RE2 syntax"),
        ("\ud800", "surrogate", "the character itself"),
        ("a" * (MAX_PATTERN_CHARS + 1), "the limit is", "split"),
    ],
)
def test_patterns_re2_cannot_take_are_refused_with_a_reason(
    pattern: str, why: str, hint: str
) -> None:
    """Python's re accepts most of these; specc must refuse them, never fall back."""
    with pytest.raises(PatternError, match=re.escape(why)) as exc:
        compile_pattern(pattern)
    assert hint in exc.value.hint


def test_search_is_linear_on_a_catastrophic_pattern() -> None:
    pattern = compile_pattern("^(a+)+$")
    assert not pattern.search("a" * 100_000 + "!")
    assert pattern.search("a" * 100_000)


def test_lone_surrogates_in_text_do_not_crash() -> None:
    assert compile_pattern("x").search("\udc80x")
    assert keyword_pattern(["x"]).search("\udc80x")  # a surrogate is not a word character


def _word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _reference(words: list[str], text: str) -> bool:
    """The old meaning, spelt out: some word occurs case-insensitively with no word
    character (Unicode letter, digit, ``_``) touching it on either side."""
    for w in words:
        for i in range(len(text) - len(w) + 1):
            piece = text[i : i + len(w)]
            if all(a.lower() == b.lower() for a, b in zip(piece, w, strict=True)):
                before = i == 0 or not _word_char(text[i - 1])
                after = i + len(w) == len(text) or not _word_char(text[i + len(w)])
                if before and after:
                    return True
    return False


# Letters with one-to-one case pairs, digits of other scripts, a combining mark (not a
# word character), punctuation and spaces: where the old lookaround regex and RE2's
# Unicode classes must agree.
_ALPHABET = "aAbBsS0_9 -'!.\néÉжЖ中٣²\u0301+"


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.text(_ALPHABET, max_size=4), max_size=4),
    text=st.text(_ALPHABET, max_size=24),
)
def test_keywords_match_the_reference(words: list[str], text: str) -> None:
    assert keyword_pattern(words).search(text) == _reference(words, text)


@pytest.mark.parametrize(
    ("words", "text", "want"),
    [
        (["sorry"], "I'm SORRY.", True),
        (["sorry"], "sorrynt", False),
        (["sorry"], "unsorry", False),
        (["a", "ab"], "ab", True),  # the longer alternative at the same place
        (["c++"], "abc++", False),
        (["c++"], "c++.", True),
        (["école"], "L'ÉCOLE", True),
        (["école"], "écoles", False),
        (["x"], "٣x", False),  # an Arabic-Indic digit is a word character
        (["x"], "\u0301x", True),  # a combining mark is not
    ],
)
def test_keyword_examples(words: list[str], text: str, want: bool) -> None:
    assert keyword_pattern(words).search(text) is want


@given(st.text(max_size=20))
def test_keyword_sizes_are_counted_as_re2_quotes_them(word: str) -> None:
    from specc.patterns import _quote, _quoted_len

    try:
        expected = len(_quote(word))
    except UnicodeEncodeError:
        return  # lone surrogates are refused before counting
    assert _quoted_len(word) == expected
