"""The few-shot check: grade each proposition's own examples and list the misses.

A proposition's few-shot examples are in its prompt, with their answers; a grader
that answers one of them against its label (P(yes) >= 0.5 for a ``no`` example, or
below for a ``yes``) does not follow the prompt even where the prompt shows the
answer. The examples come from the artifact's verified ``ir.json``; each is graded exactly
as a data row would be (its turns as the conversation, its completion as the reply,
through the grade cache).

>>> result = few_shot_check(artifact, grader, cache)     # doctest: +SKIP
>>> [(m.proposition, m.index) for m in result.misses]    # doctest: +SKIP
[('apology', 2)]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from specc.artifact import IR_FILE, Artifact
from specc.errors import DataError
from specc.evaluate.metrics import THRESHOLD
from specc.grade.base import Grader
from specc.grade.cache import GradeCache
from specc.grade.data import Row
from specc.grade.features import PropositionGrader

__all__ = ["FewShotMiss", "FewShotResult", "few_shot_check", "few_shot_examples"]


@dataclass(frozen=True)
class FewShotMiss:
    """Example ``index`` (1-based, in prompt order) of ``proposition``, answered wrong."""

    proposition: str
    index: int
    answer: bool
    p_yes: float
    completion: str

    def to_json(self) -> dict[str, Any]:
        return {
            "proposition": self.proposition,
            "example": self.index,
            "label": "yes" if self.answer else "no",
            "p_yes": self.p_yes,
            "completion": self.completion,
        }


@dataclass
class FewShotResult:
    grader: str
    checked: int = 0
    propositions: int = 0
    misses: list[FewShotMiss] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "grader": self.grader,
            "checked": self.checked,
            "propositions": self.propositions,
            "misses": [m.to_json() for m in self.misses],
        }


def few_shot_examples(artifact: Artifact) -> dict[str, list[Row]]:
    """Each LLM-graded proposition's examples as rows, read from ``ir.json``."""
    where = str(artifact.path / IR_FILE)
    try:  # the verified bytes load_artifact read, not the disk again
        data = json.loads(artifact.files[IR_FILE])
        props = {p["name"]: p for p in data["propositions"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read the propositions' examples ({exc})", where) from None
    out: dict[str, list[Row]] = {}
    for entry in artifact.manifest.propositions:
        if entry.kind != "llm" or entry.name not in props:
            continue
        rows = []
        for i, ex in enumerate(props[entry.name].get("examples") or [], start=1):
            try:
                messages = tuple((str(m["role"]), str(m["content"])) for m in ex["conversation"])
                rows.append(
                    Row(
                        id=f"{entry.name} example {i}",
                        where=f"{where}: proposition {entry.name!r}, example {i}",
                        messages=messages,
                        completion=str(ex["completion"]),
                        response_type="",
                        propositions={entry.name: 1.0 if ex["answer"] else 0.0},
                    )
                )
            except (KeyError, TypeError) as exc:
                raise DataError(f"malformed example {i} of {entry.name!r} ({exc})", where) from None
        if rows:
            out[entry.name] = rows
    return out


def few_shot_check(artifact: Artifact, grader: Grader, cache: GradeCache | None) -> FewShotResult:
    """Grade every example with ``grader`` (answer words: the artifact's)."""
    job = PropositionGrader(artifact, grader, cache)
    result = FewShotResult(grader=job.grader.source)
    for name, rows in few_shot_examples(artifact).items():
        result.propositions += 1
        for i, (row, p) in enumerate(zip(rows, job.grade(name, rows), strict=True), start=1):
            result.checked += 1
            answer = (row.propositions or {})[name] == 1.0
            if (p >= THRESHOLD) != answer:
                result.misses.append(FewShotMiss(name, i, answer, p, row.completion))
    return result
