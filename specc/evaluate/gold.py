"""Gold rows and predictions, side by side: 0/1 labels checked, rows matched by ``id``.

Gold rows are in the data format ``specc grade`` reads (``specc.grade.data``), their
``propositions`` holding the human labels, which must be 0 or 1 (``true``/``false``).
Predictions are feature rows (``specc grade``'s output, or grading now), matched to
gold rows by ``id``; ids on one side only are counted and reported, not errors.

>>> gold = read_gold("gold.jsonl", artifact)                 # doctest: +SKIP
>>> pairs = match(gold, read_features("features.jsonl"))     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from specc.artifact import Artifact
from specc.errors import DataError
from specc.grade.data import Row, read_rows
from specc.grade.features import FeatureRow, check_rows

__all__ = ["Matched", "match", "read_gold"]

#: How many ids a report lists by name (all are counted).
SHOWN_IDS = 10


def read_gold(path: str | Path, artifact: Artifact, limit: int | None = None) -> list[Row]:
    """Read gold rows, check their response types against the artifact and that every
    label is 0 or 1 (a DataError at ``file:line`` names the first that is not)."""
    rows = read_rows(path, limit=limit)
    check_rows(artifact, rows)
    for row in rows:
        for name, value in (row.propositions or {}).items():
            if value not in (0.0, 1.0):
                raise DataError(
                    f"gold label {name!r} is {value}; gold labels must be true or false (0 or 1)",
                    row.where,
                    "a probability is a prediction: pass the file with --predictions instead",
                )
    if not any(row.propositions for row in rows):
        raise DataError(
            "no row has proposition labels ('propositions')",
            str(path),
            'label each gold row, e.g. "propositions": {"apology": true}',
        )
    return rows


@dataclass(frozen=True)
class Matched:
    """Gold rows with their predictions, and the ids found on one side only."""

    pairs: tuple[tuple[Row, FeatureRow], ...]
    missing: tuple[str, ...]  # gold ids without a prediction
    unknown: tuple[str, ...]  # prediction ids not in the gold file
    gold_rows: int
    prediction_rows: int

    @property
    def matched_count(self) -> int:
        return len(self.pairs)

    def to_json(self) -> dict[str, object]:
        return {
            "gold": self.gold_rows,
            "predictions": self.prediction_rows,
            "matched": len(self.pairs),
            "missing_predictions": len(self.missing),
            "unknown_ids": len(self.unknown),
            "missing_examples": list(self.missing[:SHOWN_IDS]),
            "unknown_examples": list(self.unknown[:SHOWN_IDS]),
        }


def match(
    gold: Sequence[Row], predictions: Sequence[FeatureRow], artifact: Artifact, source: str
) -> Matched:
    """Pair gold rows and predictions by ``id``.

    A prediction whose response type differs from its gold row's, or an id predicted
    twice, is a DataError (the files do not belong together); no pair at all is one
    too."""
    by_id: dict[str, FeatureRow] = {}
    for i, pred in enumerate(predictions, start=1):
        if pred.id in by_id:
            raise DataError(f"id {pred.id!r} is predicted twice", f"{source}:{i}")
        by_id[pred.id] = pred
    pairs: list[tuple[Row, FeatureRow]] = []
    missing: list[str] = []
    for row in gold:
        found = by_id.get(row.id)
        if found is None:
            missing.append(row.id)
            continue
        pred = found
        expected = artifact.response_type(row.response_type).name
        if pred.response_type != expected:
            raise DataError(
                f"the prediction for id {row.id!r} is for response type {pred.response_type!r}, "
                f"the gold row is {expected!r}",
                row.where,
                "were the predictions graded from another data file?",
            )
        pairs.append((row, pred))
    gold_ids = {row.id for row in gold}
    unknown = [pred.id for pred in predictions if pred.id not in gold_ids]
    if not pairs:
        raise DataError(
            f"no prediction matches a gold row by id ({len(predictions)} predictions, "
            f"{len(gold)} gold rows)",
            source,
            "grade the gold file itself (`specc grade ARTIFACT GOLD.jsonl ...`): rows "
            "without an id are matched by line number",
        )
    return Matched(tuple(pairs), tuple(missing), tuple(unknown), len(gold), len(predictions))
