"""The figures of ``specc eval``: per proposition, pooled, and per tier, with notes.

For every matched row, each proposition its prediction holds and its gold row labels
is one pair (P(yes), label). Tier accuracy compares, per row, the most probable
predicted tier (``classes``; a tie goes to the better tier) with the tier the rules
give the gold labels; rows whose gold labels lack a proposition those rules read are
left out of it, and counted.

>>> report = evaluate_pairs(artifact, match(gold, preds, artifact, "f.jsonl"))  # doctest: +SKIP
>>> report.to_json()["tiers"]["accuracy"]                                       # doctest: +SKIP
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from specc.artifact import Artifact
from specc.errors import DataError
from specc.evaluate.gold import SHOWN_IDS, Matched
from specc.evaluate.metrics import BinaryMetrics, binary_metrics

if TYPE_CHECKING:
    from specc.calibrate import Calibration, Sample
    from specc.evaluate.fewshot import FewShotResult

__all__ = ["EvalReport", "TierTable", "evaluate_pairs"]


@dataclass
class TierTable:
    """Confusion matrix of one response type: ``matrix[gold][predicted]``, tiers best first."""

    response_type: str
    tiers: tuple[str, ...]
    matrix: list[list[int]]

    @property
    def n(self) -> int:
        return sum(map(sum, self.matrix))

    @property
    def correct(self) -> int:
        return sum(self.matrix[i][i] for i in range(len(self.tiers)))

    def to_json(self) -> dict[str, Any]:
        return {
            "tiers": list(self.tiers),
            "matrix": [list(row) for row in self.matrix],
            "n": self.n,
            "accuracy": self.correct / self.n if self.n else None,
        }


@dataclass
class EvalReport:
    """Everything ``specc eval`` reports (see :meth:`to_json` for the JSON form)."""

    source: str
    rows: Matched
    propositions: dict[str, BinaryMetrics]
    overall: BinaryMetrics
    tiers: list[TierTable]
    tier_skipped: int
    samples: dict[str, list[Sample]]  # proposition -> (row id, P(yes), label)
    notes: list[str] = field(default_factory=list)
    few_shot: FewShotResult | None = None
    calibration: Calibration | None = None

    @property
    def tier_accuracy(self) -> float | None:
        n = sum(t.n for t in self.tiers)
        return sum(t.correct for t in self.tiers) / n if n else None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows.to_json(),
            "propositions": {name: m.to_json() for name, m in self.propositions.items()},
            "overall": self.overall.to_json(),
            "tiers": {
                "accuracy": self.tier_accuracy,
                "n": sum(t.n for t in self.tiers),
                "skipped": self.tier_skipped,
                "confusion": {t.response_type: t.to_json() for t in self.tiers},
            },
            "few_shot": None if self.few_shot is None else self.few_shot.to_json(),
            "calibration": None if self.calibration is None else self.calibration.to_json(),
            "notes": list(self.notes),
        }


def _tier_inputs(artifact: Artifact, response_type: str, tiers: tuple[str, ...]) -> set[str]:
    """The propositions the tier rules of a response type read."""
    rules = artifact.rules
    return {name for t in tiers for name in rules.support(f"tier:{response_type}:{t}")}


def _predicted_tier(classes: dict[str, float], tiers: tuple[str, ...]) -> str:
    best = max(classes.get(t, 0.0) for t in tiers)
    return next(t for t in tiers if classes.get(t, 0.0) == best)


def evaluate_pairs(artifact: Artifact, matched: Matched, source: str) -> EvalReport:
    """Compute every figure for matched gold rows and predictions."""
    import numpy as np

    samples: dict[str, list[Sample]] = defaultdict(list)
    unlabelled: dict[str, int] = defaultdict(int)
    types = {rt.name: rt for rt in artifact.manifest.response_types}
    tables = {
        name: TierTable(name, rt.tiers, [[0] * len(rt.tiers) for _ in rt.tiers])
        for name, rt in types.items()
    }
    skipped = 0
    inputs: dict[str, set[str]] = {}
    for row, pred in matched.pairs:
        labels = row.propositions or {}
        for name, p in pred.propositions.items():
            if name in labels:
                samples[name].append((row.id, p, labels[name]))
            else:
                unlabelled[name] += 1
        rt = types[pred.response_type]
        if rt.name not in inputs:
            inputs[rt.name] = _tier_inputs(artifact, rt.name, rt.tiers)
        needed = inputs[rt.name]
        if not all(name in labels for name in needed):
            skipped += 1
            continue
        gold_tier = artifact.rules.tier_of(rt.name, {n: labels[n] == 1.0 for n in needed})
        table = tables[rt.name]
        if gold_tier is None:  # pragma: no cover - a compiled spec's tiers are exhaustive
            raise DataError(f"no tier holds for the gold labels of row {row.id!r}", row.where)
        g = rt.tiers.index(gold_tier)
        table.matrix[g][rt.tiers.index(_predicted_tier(pred.classes, rt.tiers))] += 1
    if not samples:
        raise DataError(
            "no prediction has a gold label to compare with",
            source,
            "the gold rows' 'propositions' must name the artifact's propositions",
        )
    order = [p.name for p in artifact.manifest.propositions if p.name in samples]
    metrics = {}
    for name in order:
        probs = np.array([s[1] for s in samples[name]], dtype=np.float64)
        labels_ = np.array([s[2] for s in samples[name]], dtype=np.float64)
        metrics[name] = binary_metrics(probs, labels_)
    every = [s for name in order for s in samples[name]]
    overall = binary_metrics(np.array([s[1] for s in every]), np.array([s[2] for s in every]))
    notes = _notes(matched, metrics, unlabelled, skipped)
    known = {p.name for p in artifact.manifest.propositions}
    strangers = sorted({n for row, _ in matched.pairs for n in row.propositions or {}} - known)
    if strangers:
        notes.append(
            f"gold labels of propositions the artifact does not have are ignored: "
            f"{', '.join(strangers)}"
        )
    return EvalReport(
        source=source,
        rows=matched,
        propositions=metrics,
        overall=overall,
        tiers=[t for t in tables.values() if t.n],
        tier_skipped=skipped,
        samples={name: samples[name] for name in order},
        notes=notes,
    )


def _ids(ids: tuple[str, ...]) -> str:
    shown = ", ".join(repr(i) for i in ids[:SHOWN_IDS])
    return shown + (", ..." if len(ids) > SHOWN_IDS else "")


def _notes(
    matched: Matched,
    metrics: dict[str, BinaryMetrics],
    unlabelled: dict[str, int],
    skipped: int,
) -> list[str]:
    notes = []
    for name, m in metrics.items():
        if m.precision is None:
            notes.append(
                f"precision of {name!r} is undefined (null): no prediction of its {m.n} rows "
                "is yes (P(yes) >= 0.5)"
            )
        if m.recall is None:
            notes.append(
                f"recall of {name!r} is undefined (null): none of its {m.n} gold labels is yes"
            )
    if matched.missing:
        notes.append(
            f"{len(matched.missing)} gold row(s) have no prediction and are left out: "
            + _ids(matched.missing)
        )
    if matched.unknown:
        notes.append(
            f"{len(matched.unknown)} prediction(s) have no gold row and are left out: "
            + _ids(matched.unknown)
        )
    for name, count in unlabelled.items():
        notes.append(f"{count} prediction(s) of {name!r} have no gold label and are left out")
    if skipped:
        notes.append(
            f"{skipped} row(s) are left out of tier accuracy: their gold labels lack a "
            "proposition their response type's tier rules read"
        )
    return notes


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_report(report: EvalReport) -> str:
    """The report as text tables (what ``specc eval`` prints without ``--json``)."""
    from specc.fit.report import format_table

    r = report.rows
    lines = [
        f"{report.source}: {r.matched_count} of {r.gold_rows} gold rows matched "
        f"({len(r.missing)} without a prediction, {len(r.unknown)} predictions without a "
        "gold row)",
        "",
    ]
    headers = ["proposition", "n", "yes", "accuracy", "precision", "recall", "f1", "brier", "ece"]
    rows = [
        [
            name,
            str(m.n),
            str(m.positives),
            _num(m.accuracy),
            _num(m.precision),
            _num(m.recall),
            _num(m.f1),
            _num(m.brier),
            _num(m.ece),
        ]
        for name, m in [*report.propositions.items(), ("(all pairs)", report.overall)]
    ]
    lines += [format_table(headers, rows), ""]
    n = sum(t.n for t in report.tiers)
    lines.append(f"tier accuracy: {_num(report.tier_accuracy)} over {n} rows")
    for t in report.tiers:
        acc = _num(t.correct / t.n if t.n else None)
        lines.append(
            f"\n{t.response_type}: {t.correct}/{t.n} ({acc}); rows gold, columns predicted"
        )
        cells = [
            [tier, *(str(c) for c in row)] for tier, row in zip(t.tiers, t.matrix, strict=True)
        ]
        lines.append(format_table(["gold \\ predicted", *t.tiers], cells))
    if report.few_shot is not None:
        fs = report.few_shot
        lines += [
            "",
            f"few-shot check ({fs.grader}): {len(fs.misses)} of {fs.checked} examples of "
            f"{fs.propositions} propositions answered against their label",
        ]
        for m in fs.misses:
            text = m.completion if len(m.completion) <= 60 else m.completion[:57] + "..."
            lines.append(
                f"  {m.proposition} example {m.index} ({'yes' if m.answer else 'no'}): "
                f"P(yes) = {m.p_yes:.3f}  {text!r}"
            )
    if report.calibration is not None:
        cal = report.calibration
        lines += [
            "",
            f"calibration (temperature, {cal.holdout:.0%} of rows held out, seed {cal.seed}):",
        ]
        rows = [
            [
                name,
                f"{f.temperature:.3f}",
                str(f.n_fit),
                str(f.n_holdout),
                _num(f.ece_before),
                _num(f.ece_after),
                _num(f.brier_before),
                _num(f.brier_after),
            ]
            for name, f in cal.fits.items()
        ]
        headers = ["proposition", "T", "fit", "held out", "ece before", "ece after"]
        lines.append(format_table([*headers, "brier before", "brier after"], rows))
        for name, why in cal.skipped.items():
            lines.append(f"  {name}: not calibrated: {why}")
    if report.notes:
        lines += ["", "notes:", *(f"  {note}" for note in report.notes)]
    return "\n".join(lines)
