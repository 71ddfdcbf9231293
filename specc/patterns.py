"""Extractor patterns, compiled the one way specc compiles them: RE2, linear time.

``match regex`` and ``match keywords`` run over completions from any source, at
check, grade and :func:`specc.load` time, so a pattern must never backtrack: every
pattern goes through :func:`compile_pattern` (RE2 through its low-level binding,
which fails on what RE2 cannot take and never falls back to Python's ``re``), with a
memory bound of :data:`MAX_REGEX_MEMORY`. A pattern RE2 cannot take (backreferences,
lookaround, possessive quantifiers, ``\\Z``, ...) raises :class:`PatternError` saying
why and what to write instead.

>>> compile_pattern(r"(?i)\\bhotline\\b").search("Call the HOTLINE now")
True
>>> keyword_pattern(["sorry"]).search("sorrynt"), keyword_pattern(["sorry"]).search("Sorry!")
(False, True)
>>> compile_pattern(r"(\\w+) \\1")
Traceback (most recent call last):
...
specc.patterns.PatternError: RE2 has no backreferences: \\1
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from specc.errors import SpecccError

__all__ = [
    "MAX_PATTERN_CHARS",
    "MAX_REGEX_MEMORY",
    "Pattern",
    "PatternError",
    "check_keywords",
    "compile_pattern",
    "keyword_pattern",
]

#: Memory RE2 may use for one compiled pattern (its program and DFA caches).
MAX_REGEX_MEMORY = 8 << 20
#: Characters of one pattern (a keyword list counts as the pattern it becomes).
MAX_PATTERN_CHARS = 64 << 10

SYNTAX_HINT = (
    "patterns use RE2 syntax (https://github.com/google/re2/wiki/Syntax); "
    "in a spec string, write each backslash of the pattern as \\\\"
)

# Python's \w for str: a Unicode letter or digit, or "_".
_WORD = r"\pL\pN_"


class PatternError(SpecccError, ValueError):
    """A pattern RE2 cannot compile: ``str(exc)`` says why, ``hint`` what to write."""

    def __init__(self, message: str, hint: str = SYNTAX_HINT):
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True, eq=False)
class Pattern:
    """A compiled pattern; :meth:`search` says whether it occurs anywhere in a text."""

    source: str
    _regexp: Any

    def search(self, text: str) -> bool:
        from re2 import _re2

        data = text.encode("utf-8", "replace")  # a lone surrogate becomes "?"
        spans = self._regexp.Match(_re2.RE2.Anchor.UNANCHORED, data, 0, len(data))
        return bool(spans[0][0] >= 0)


def _re2_module() -> Any:
    try:
        from re2 import _re2
    except ImportError:  # pragma: no cover - a dependency of specc
        raise PatternError(
            "the RE2 engine is not installed", "install specc's dependency: pip install google-re2"
        ) from None
    return _re2


_LOOKAROUND = {"(?=": "lookahead", "(?!": "negative lookahead"}
_LOOKBEHIND = {"(?<=": "lookbehind", "(?<!": "negative lookbehind"}


def _explain(pattern: str, error: str, what: str) -> PatternError:
    """RE2's error in words, with what to write instead."""
    kind, _, arg = error.partition(": ")
    if kind == "invalid escape sequence" and arg[1:2].isdigit():
        return PatternError(
            f"RE2 has no backreferences: {arg}",
            "match the repeated text explicitly, or use `match keywords [...]` for words",
        )
    if kind == "invalid escape sequence" and arg == "\\Z":
        return PatternError("RE2 has no \\Z", "RE2 writes the end of the text as \\z")
    if kind == "invalid perl operator":
        if arg in _LOOKBEHIND or arg in _LOOKAROUND:
            name = _LOOKBEHIND.get(arg) or _LOOKAROUND[arg]
            return PatternError(
                f"RE2 has no {name}: {arg}...)",
                "a search needs no lookaround: match the surrounding text too; for whole "
                "words use `match keywords [...]`",
            )
        if arg == "(?>":
            return PatternError(
                "RE2 has no atomic groups: (?>...)",
                "write a plain group (?:...): RE2 never backtracks, so it is not needed",
            )
        if arg == "(?P" and "(?P=" in pattern:
            return PatternError(
                "RE2 has no backreferences: (?P=name)",
                "match the repeated text explicitly, or use `match keywords [...]` for words",
            )
        if arg == "(?(":
            return PatternError(
                "RE2 has no conditional groups: (?(...)...)", "write the alternatives with |"
            )
        return PatternError(
            f"RE2 does not support {arg}...",
            "RE2's inline flags are i, m, s and U, as in (?i); " + SYNTAX_HINT,
        )
    if kind == "bad repetition operator" and arg.endswith("+") and len(arg) == 2:
        return PatternError(
            f"RE2 has no possessive quantifiers: {arg}",
            f"write {arg[0]} alone: RE2 never backtracks, so it is not needed",
        )
    if kind == "invalid repetition size":
        return PatternError(
            f"invalid regular expression: repetition {arg} is too large or reversed",
            "RE2 allows counts up to 1000 in {n,m}, and nested counts multiply",
        )
    if "too large" in error or "out of memory" in error:
        return PatternError(
            f"{what} needs more than {MAX_REGEX_MEMORY >> 20} MiB compiled",
            "simplify it, or split it into several propositions",
        )
    words = _WORDS.get(kind, kind)
    return PatternError(f"invalid regular expression: {words}" + (f": {arg}" if arg else ""))


#: RE2's error messages in plainer words.
_WORDS = {
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "unexpected )": "unmatched )",
    "trailing \\": "trailing backslash",
    "missing argument to repetition operator": "nothing to repeat before",
}


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Pattern:
    """Compile a ``match regex`` pattern with RE2; raises :class:`PatternError`."""
    return _compile(pattern, pattern, "the pattern")


def _compile(pattern: str, shown: str, what: str) -> Pattern:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(
            f"{what} is {len(pattern):,} characters as a pattern; the limit is "
            f"{MAX_PATTERN_CHARS:,}",
            "split it into several propositions",
        )
    try:
        data = pattern.encode("utf-8")
    except UnicodeEncodeError:
        raise PatternError(
            "the pattern contains a lone UTF-16 surrogate (\\uD800-\\uDFFF)",
            "write the character itself, or its \\U0001XXXX escape",
        ) from None
    re2 = _re2_module()
    options = re2.RE2.Options()
    options.max_mem = MAX_REGEX_MEMORY
    options.log_errors = False  # RE2 would print to stderr
    options.never_capture = True  # a search only needs yes or no
    regexp = re2.RE2(data, options)
    if not regexp.ok():
        raise _explain(pattern, regexp.error().decode("utf-8", "replace"), what)
    return Pattern(shown, regexp)


def _quote(word: str) -> str:
    return str(_re2_module().RE2.QuoteMeta(word.encode("utf-8")).decode("utf-8"))


def _quoted_len(word: str) -> int:
    """``len(_quote(word))`` without loading RE2: QuoteMeta keeps ASCII letters,
    digits, ``_`` and non-ASCII characters, writes NUL as ``\\x00`` and puts a
    backslash before every other ASCII character."""
    return sum(
        1 if not c.isascii() or c.isalnum() or c == "_" else 4 if c == "\0" else 2 for c in word
    )


@functools.lru_cache(maxsize=1024)
def _keywords(words: tuple[str, ...]) -> Pattern:
    alternatives = "|".join(_quote(w) for w in words)
    # RE2 has no lookaround; a search only needs to know that a match exists, so the
    # characters on either side are consumed instead: start of text or a non-word
    # character, the word, then a non-word character or the end of the text.
    pattern = f"(?:^|[^{_WORD}])(?i:{alternatives})(?:[^{_WORD}]|$)"
    return _compile(pattern, f"keywords {list(words)!r}", "the keyword list")


def check_keywords(words: Iterable[str]) -> None:
    """What :func:`keyword_pattern` would refuse, found without compiling (RE2 takes
    milliseconds to build the Unicode word classes; ``specc check`` has thousands of
    keyword lists to vet). Raises :class:`PatternError`."""
    size = 0
    for w in words:
        try:
            w.encode("utf-8")
            size += _quoted_len(w) + 1
        except UnicodeEncodeError:
            raise PatternError(
                f"the keyword {w!r} contains a lone UTF-16 surrogate",
                "write the character itself, or its \\U0001XXXX escape",
            ) from None
    if size + len(_WORD) * 2 + 24 > MAX_PATTERN_CHARS:
        raise PatternError(
            f"the keyword list is {size:,} characters as a pattern; the limit is "
            f"{MAX_PATTERN_CHARS:,}",
            "split it into several propositions",
        )


def keyword_pattern(words: Iterable[str]) -> Pattern:
    """Case-insensitive whole-word search for any of ``words``: a match may not touch
    a Unicode letter, digit or ``_`` on either side (``"sorry"`` matches ``"Sorry!"``,
    not ``"sorrynt"``). Raises :class:`PatternError` for a list RE2 cannot take."""
    words = tuple(words)
    check_keywords(words)
    if not words:
        return _compile(_NOTHING, "keywords []", "the keyword list")
    return _keywords(words)


_NOTHING = r"[^\x00-\x{10FFFF}]"  # no character is outside every character
