"""specc's one exception hierarchy and its diagnostics.

A :class:`Diagnostic` says where (a :class:`~specc.ir.Span`), what (a stable code and
a message) and what to do (an optional hint). Checks collect diagnostics and raise
them together in a :class:`SpecError`; :func:`render` prints them the way compilers
do::

    policies/minimal.rbr:12:9: error[E101]: unknown proposition 'apolgy'
       12 |   ideal when apolgy
          |              ^^^^^^
       = hint: did you mean 'apology'?
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # annotations only: `import specc` then loads neither pydantic nor the IR
    from specc.ir import Span

Severity = Literal["error", "warning"]

#: Every diagnostic code with a one-line summary (docs/diagnostics.md has examples).
CODES: dict[str, str] = {
    # syntax and files (E0xx)
    "E001": "syntax error",
    "E002": "unterminated string",
    "E003": "invalid character or bytes",
    "E004": "file cannot be read",
    "E005": "imported file not found",
    "E006": "import cycle",
    "E007": "nesting too deep",
    "E008": "invalid string escape",
    "E009": "invalid value for a setting",
    "E010": "unknown setting",
    "E011": "missing policy header",
    "E012": "template error",
    "E013": "unsafe template",
    "E014": "file outside the policy's folder",
    # names (E1xx)
    "E101": "unknown name",
    "E102": "duplicate definition",
    "E103": "cycle among derived propositions",
    "E104": "unknown tier",
    "E105": "unknown response type",
    "E106": "proposition has neither a question nor an extractor",
    "E107": "proposition has both a question and an extractor",
    "E108": "invalid regular expression",
    "E109": "duplicate tier rule",
    # tier logic (E2xx)
    "E201": "tiers overlap",
    "E202": "tiers are not exhaustive",
    "E203": "tier can never hold",
    "E204": "'otherwise' must be the last rule",
    "E205": "rules too large to analyse",
    # tests (E3xx)
    "E301": "the givens of a test contradict each other",
    "E302": "incomplete test",
    "E303": "a completion test expects an answer its response type does not grade",
    "E304": "not a valid test file",
    # warnings
    "W001": "unused proposition",
    "W002": "constraint over propositions that no grader produces",
    "W003": "imported name shadowed",
    "W004": "proposition without few-shot examples",
    "W005": "tier declared but unused by every response type",
    "W006": "item in an imported file is ignored",
}


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span
    hint: str | None = None
    severity: Severity = "error"
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "file": self.span.file,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "hint": self.hint,
            "notes": list(self.notes),
        }


class SpecccError(Exception):
    """Root of every error specc raises on purpose."""


class SpecError(SpecccError):
    """One or more diagnostics about a spec (exit code 1)."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        first = self.diagnostics[0] if self.diagnostics else None
        super().__init__(f"{first.span}: {first.message}" if first else "spec error")


class UsageError(SpecccError):
    """Bad command-line use or unreadable input outside a spec (exit code 2)."""


class DataError(SpecccError):
    """Bad data rows, features or weights (exit code 1). ``where`` is ``file:line``."""

    def __init__(self, message: str, where: str | None = None, hint: str | None = None):
        self.where = where
        self.hint = hint
        text = f"{where}: {message}" if where else message
        if hint:
            text += f"\n  = hint: {hint}"
        super().__init__(text)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """``"did you mean 'apology'?"`` for the closest candidate, or None."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


#: Diagnostics printed by default; the rest are counted in a summary line.
MAX_SHOWN = 50


class SourceLines:
    """Each source text split into lines once, on first use, so that rendering N
    diagnostics over files of total size S costs O(N + S)."""

    def __init__(self, sources: Mapping[str, str]):
        self.sources = sources
        self._lines: dict[str, list[str]] = {}

    def line(self, span: Span) -> str | None:
        lines = self._lines.get(span.file)
        if lines is None:
            text = self.sources.get(span.file)
            if text is None:
                return None
            # Lines as the parser counts them: "\n" ends a line, a "\r" before it is dropped.
            lines = self._lines[span.file] = [ln.removesuffix("\r") for ln in text.split("\n")]
        if 1 <= span.line <= len(lines):
            return lines[span.line - 1]
        return None


def render(
    diag: Diagnostic,
    sources: Mapping[str, str],
    color: bool = False,
    lines: SourceLines | None = None,
) -> str:
    """Render one diagnostic with its source line and a caret under the span.
    Pass one ``lines`` to many calls to split each source only once."""
    red, yellow, bold, blue, reset = (
        ("\x1b[31m", "\x1b[33m", "\x1b[1m", "\x1b[34m", "\x1b[0m") if color else ("",) * 5
    )
    sev_color = red if diag.severity == "error" else yellow
    out = [
        f"{bold}{diag.span}{reset}: {sev_color}{diag.severity}[{diag.code}]{reset}: "
        f"{bold}{diag.message}{reset}"
    ]
    line = (lines or SourceLines(sources)).line(diag.span)
    if line is not None:
        if len(line) > 200:
            line = line[:200] + " ..."
        line = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in line)
        num = str(diag.span.line)
        pad = " " * len(num)
        start = max(diag.span.col, 1)
        if diag.span.end_line == diag.span.line and diag.span.end_col > diag.span.col:
            width = diag.span.end_col - diag.span.col
        else:
            width = max(len(line) - start + 1, 1)
        width = max(1, min(width, max(len(line) - start + 1, 1), 200))
        out.append(f"{blue}{num} |{reset} {line}")
        out.append(f"{blue}{pad} |{reset} {' ' * (start - 1)}{sev_color}{'^' * width}{reset}")
    for note in diag.notes:
        out.append(f"  = note: {note}")
    if diag.hint:
        out.append(f"  = hint: {diag.hint}")
    return "\n".join(out)


def _shown(diagnostics: Sequence[Diagnostic], limit: int) -> list[int]:
    """Which diagnostics to print when there are more than ``limit``: errors first,
    then warnings, each in order; returned in the original order."""
    errors = [i for i, d in enumerate(diagnostics) if d.severity == "error"]
    warnings = [i for i, d in enumerate(diagnostics) if d.severity != "error"]
    return sorted((errors + warnings)[:limit])


def render_all(
    diagnostics: Sequence[Diagnostic],
    sources: Mapping[str, str],
    color: bool = False,
    limit: int | None = MAX_SHOWN,
) -> str:
    """Render diagnostics and a summary. Beyond ``limit`` (None or 0: no limit), the
    rest are counted per code in one line (errors are printed before warnings)."""
    lines = SourceLines(sources)
    shown = list(range(len(diagnostics)))
    if limit and len(diagnostics) > limit:
        shown = _shown(diagnostics, limit)
    parts = [render(diagnostics[i], sources, color, lines) for i in shown]
    if len(shown) < len(diagnostics):
        hidden = Counter(d.code for d in diagnostics)
        hidden.subtract(diagnostics[i].code for i in shown)
        counts = ", ".join(f"{n:,} {code}" for code, n in sorted(hidden.items()) if n)
        rest = len(diagnostics) - len(shown)
        parts.append(f"... and {rest:,} more: {counts} (--max-diagnostics 0 prints all)")
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    summary = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    return "\n\n".join([*parts, summary]) if parts else summary


def to_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diagnostics], indent=2)
