"""The ``rules`` backend: deterministic extractors over the completion text, 0 or 1.

An extractor is the ``extractor`` dict of a rules proposition in the manifest:

* ``{"kind": "regex", "pattern": P}``: 1 when ``re.search(P, completion)`` finds a match;
* ``{"kind": "keywords", "words": [...]}``: 1 when any word occurs, case-insensitive,
  on word boundaries (``"sorry"`` matches ``"Sorry!"``, not ``"sorrynt"``);
* ``{"kind": "length", "op": "<", "value": 400, "unit": "words"}``: compares the
  completion's length in whitespace-separated words or in characters.

>>> Extractor.from_spec({"kind": "keywords", "words": ["sorry"]})("I'm SORRY.")
1.0
>>> Extractor.from_spec({"kind": "length", "op": "<", "value": 3, "unit": "words"})("a b c")
0.0
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from specc.errors import UsageError

_OPS: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


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
        kind = spec.get("kind")
        try:
            if kind == "regex":
                pattern = re.compile(str(spec["pattern"]))
                return cls("regex", lambda text: pattern.search(text) is not None)
            if kind == "keywords":
                words = [str(w) for w in spec["words"]]
                if not words:
                    return cls("keywords", lambda text: False)
                alternatives = "|".join(re.escape(w) for w in words)
                found = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
                return cls("keywords", lambda text: found.search(text) is not None)
            if kind == "length":
                compare = _OPS[str(spec["op"])]
                value = int(spec["value"])
                unit = spec.get("unit", "words")
                if unit == "words":
                    return cls("length", lambda text: compare(len(text.split()), value))
                if unit == "chars":
                    return cls("length", lambda text: compare(len(text), value))
                raise UsageError(
                    f"proposition {name!r}: unknown length unit {unit!r} (words or chars)"
                )
        except (KeyError, TypeError, ValueError, re.error) as exc:
            raise UsageError(
                f"proposition {name!r}: invalid {kind} extractor in the manifest ({exc}); "
                "recompile the spec"
            ) from None
        raise UsageError(
            f"proposition {name!r}: unknown extractor kind {kind!r} in the manifest; "
            "recompile the spec with this version of specc"
        )


def compile_extractors(propositions: Mapping[str, Mapping[str, Any]]) -> dict[str, Extractor]:
    """``{name: extractor dict}`` to ``{name: Extractor}``."""
    return {name: Extractor.from_spec(spec, name) for name, spec in propositions.items()}
