"""The ``rules`` backend: deterministic extractors over the completion text, 0 or 1.

An extractor is the ``extractor`` dict of a rules proposition in the manifest:

* ``{"kind": "regex", "pattern": P}``: 1 when the RE2 pattern P occurs in the completion;
* ``{"kind": "keywords", "words": [...]}``: 1 when any word occurs, case-insensitive,
  on word boundaries (``"sorry"`` matches ``"Sorry!"``, not ``"sorrynt"``);
* ``{"kind": "length", "op": "<", "value": 400, "unit": "words"}``: compares the
  completion's length in whitespace-separated words or in characters.

Patterns compile through :mod:`specc.patterns` (RE2, linear time), as at check time.
The dict comes from a manifest, which may have been edited: anything but the shapes
above is refused with an error that names the proposition and says to recompile.

>>> Extractor.from_spec({"kind": "keywords", "words": ["sorry"]})("I'm SORRY.")
1.0
>>> Extractor.from_spec({"kind": "length", "op": "<", "value": 3, "unit": "words"})("a b c")
0.0
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from specc.errors import UsageError
from specc.patterns import PatternError, compile_pattern, keyword_pattern

_OPS: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}

#: The keys of each kind of extractor dict, as the compiler writes them.
_KEYS = {
    "regex": {"kind", "pattern"},
    "keywords": {"kind", "words"},
    "length": {"kind", "op", "value", "unit"},
}
#: Keywords of one extractor.
MAX_KEYWORDS = 10_000


@dataclass(frozen=True)
class Extractor:
    """A compiled extractor; call it on a completion's text to get 0.0 or 1.0."""

    kind: str
    test: Callable[[str], bool]

    def __call__(self, completion: str) -> float:
        return 1.0 if self.test(completion) else 0.0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], name: str = "?") -> Extractor:
        """Compile a manifest ``extractor`` dict; ``name`` is the proposition (for errors)."""

        def bad(why: str) -> UsageError:
            return UsageError(
                f"proposition {name!r}: invalid extractor in the manifest ({why}); "
                "recompile the spec with this version of specc"
            )

        if not isinstance(spec, Mapping):
            raise bad(f"expected an object, found {type(spec).__name__}")
        kind = spec.get("kind")
        if not isinstance(kind, str) or kind not in _KEYS:
            raise bad(f"unknown kind {kind!r}; the kinds are regex, keywords and length")
        if set(spec) != _KEYS[kind]:
            raise bad(f"a {kind} extractor has exactly the keys {sorted(_KEYS[kind])}")
        try:
            if kind == "regex":
                pattern = spec["pattern"]
                if not isinstance(pattern, str):
                    raise bad("the pattern is not a string")
                return cls("regex", compile_pattern(pattern).search)
            if kind == "keywords":
                words = spec["words"]
                if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                    raise bad("words is not a list of strings")
                if len(words) > MAX_KEYWORDS:
                    raise bad(f"{len(words):,} keywords; the limit is {MAX_KEYWORDS:,}")
                return cls("keywords", keyword_pattern(words).search)
        except PatternError as exc:
            raise bad(str(exc)) from None
        op, value, unit = spec["op"], spec["value"], spec["unit"]
        if not isinstance(op, str) or op not in _OPS:
            raise bad(f"unknown comparison {op!r}; use one of {', '.join(_OPS)}")
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**53:
            raise bad(f"the length {value!r} is not a whole number")
        compare = _OPS[op]
        if unit == "words":
            return cls("length", lambda text: compare(len(text.split()), value))
        if unit == "chars":
            return cls("length", lambda text: compare(len(text), value))
        raise bad(f"unknown length unit {unit!r} (words or chars)")


def compile_extractors(propositions: Mapping[str, Mapping[str, Any]]) -> dict[str, Extractor]:
    """``{name: extractor dict}`` to ``{name: Extractor}``."""
    return {name: Extractor.from_spec(spec, name) for name, spec in propositions.items()}
