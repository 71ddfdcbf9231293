"""The label audit: ``completion_label`` against the tier the rules imply.

``specc fit`` and ``specc build`` learn from each row's ``completion_label``. When
every proposition of a row is 0 or 1 (gold labels, extractors), the rules give its
tier exactly, and a label that says otherwise is a labelling mistake or a rule that
does not say what the author meant: either way the fit would learn from a
contradiction. The audit lists such rows (file:line, id, label, implied tier);
by default it is a warning, ``--strict-labels`` makes it an error (exit 1, nothing
fitted).

Rows with probabilities (an LLM grader's answers) are not audited: a grader's doubt
is not a contradiction, and how well a grader agrees with people is what
``specc eval`` measures. The audit counts them.

>>> audit = audit_labels(rows, lambda i: f"data.jsonl:{i + 1}")   # doctest: +SKIP
>>> audit.disagreements[0].implied                                 # doctest: +SKIP
'disallowed'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["EPS", "AuditedRow", "Disagreement", "LabelAudit", "audit_labels", "is_certain"]

#: How many disagreeing rows a report shows.
SHOWN = 5
#: A probability within this of 0 or 1 counts as 0 or 1.
EPS = 1e-9


@dataclass(frozen=True)
class Disagreement:
    """A row whose label is not the tier its 0/1 propositions imply."""

    where: str  # file:line
    id: str
    response_type: str
    label: str
    implied: str

    def to_json(self) -> dict[str, str]:
        return {
            "where": self.where,
            "id": self.id,
            "response_type": self.response_type,
            "label": self.label,
            "implied": self.implied,
        }


@dataclass
class LabelAudit:
    """What the audit found over a set of feature rows."""

    audited: int = 0  # labelled rows whose propositions are all 0/1
    disagreements: list[Disagreement] = field(default_factory=list)
    not_audited: int = 0  # labelled rows with a probability strictly between 0 and 1
    unlabelled: int = 0  # rows without a completion_label (the rules label them)

    def summary(self) -> str:
        """One line: ``labels: 120 audited, 2 disagree with the rules; ...``."""
        text = (
            f"labels: {self.audited} audited, {len(self.disagreements)} "
            f"{'disagrees' if len(self.disagreements) == 1 else 'disagree'} with the rules"
        )
        if self.not_audited:
            text += (
                f"; {self.not_audited} not audited (their propositions are probabilities, not 0/1)"
            )
        return text

    def examples(self, shown: int = SHOWN) -> list[str]:
        """Lines for the first ``shown`` disagreements, and how many more there are."""
        lines = [
            f"  {d.where}: id {d.id!r} ({d.response_type}) is labelled {d.label!r}, "
            f"but its propositions put it in {d.implied!r}"
            for d in self.disagreements[:shown]
        ]
        rest = len(self.disagreements) - shown
        if rest > 0:
            lines.append(f"  ... and {rest} more")
        return lines

    def to_json(self, shown: int = SHOWN) -> dict[str, Any]:
        return {
            "audited": self.audited,
            "disagreements": len(self.disagreements),
            "examples": [d.to_json() for d in self.disagreements[:shown]],
            "not_audited": self.not_audited,
            "unlabelled": self.unlabelled,
        }


class AuditedRow(Protocol):
    """What the audit reads of a row: a :class:`specc.grade.FeatureRow`, or the few
    fields ``specc fit`` keeps of one (:class:`specc.fit.read.AuditRow`)."""

    @property
    def id(self) -> str: ...

    @property
    def response_type(self) -> str: ...

    @property
    def completion_label(self) -> str | None: ...

    @property
    def propositions(self) -> Mapping[str, float]: ...

    @property
    def classes(self) -> Mapping[str, float]: ...


def is_certain(p: float) -> bool:
    """Whether ``p`` is 0 or 1 (within :data:`EPS`)."""
    return p <= EPS or p >= 1.0 - EPS


def audit_labels(rows: Sequence[AuditedRow], locate: Callable[[int], str]) -> LabelAudit:
    """Compare each labelled row's ``completion_label`` with the tier of its
    ``classes`` (computed from its propositions by the compiled rules).
    ``locate(i)`` names row ``i`` as ``file:line``; it is called only for the rows
    that disagree."""
    audit = LabelAudit()
    for i, row in enumerate(rows):
        label = row.completion_label
        if label is None:
            audit.unlabelled += 1
            continue
        if all(is_certain(p) for p in row.propositions.values()):
            audit.audited += 1
            implied = next((t for t, p in row.classes.items() if p >= 1.0 - EPS), None)
            if implied is not None and implied != label:
                audit.disagreements.append(
                    Disagreement(locate(i), row.id, row.response_type, label, implied)
                )
            continue
        audit.not_audited += 1
    return audit
