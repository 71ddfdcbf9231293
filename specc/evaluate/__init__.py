"""``specc eval``: a grader measured against human gold labels.

Predictions come from grading the gold rows now (``--grader``, through the grade
cache, exactly as ``specc grade`` would) or from an earlier ``specc grade`` output
(``--predictions``), matched to the gold rows by ``id``. The pieces:
:mod:`~specc.evaluate.gold` (reading, matching), :mod:`~specc.evaluate.metrics` (the
figures), :mod:`~specc.evaluate.report` (per proposition, pooled, tiers, text),
:mod:`~specc.evaluate.fewshot` (the propositions' own examples),
:mod:`~specc.evaluate.plot` (the PNG), and :mod:`specc.calibrate` (``--calibrate``).

>>> report = run_eval("out/safety", "gold.jsonl", grader_spec="hf:models/grader")  # doctest: +SKIP
>>> report.propositions["apology"].accuracy                   # doctest: +SKIP
0.93
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from specc.artifact import Artifact, load_artifact
from specc.calibrate import CALIBRATED, calibration_path, fit_calibration, identity_digest
from specc.errors import DataError, UsageError
from specc.evaluate.gold import match, read_gold
from specc.evaluate.report import EvalReport, evaluate_pairs, format_report
from specc.grade.base import Answers, Grader, LabelsGrader, RulesGrader
from specc.grade.data import Row
from specc.grade.features import FeatureRow

if TYPE_CHECKING:
    from specc.evaluate.fewshot import FewShotResult

__all__ = ["EvalOptions", "EvalReport", "format_report", "run_eval"]

_NOT_LLM = ("rules", "labels")


@dataclass(frozen=True)
class EvalOptions:
    """How ``specc eval`` grades (with ``--grader``) and what else it does."""

    limit: int | None = None
    cache_path: str | Path | None = None
    batch_size: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    concurrency: int = 8
    timeout: float = 60.0
    top_logprobs: int = 20
    progress: bool = True
    few_shot: bool = True
    calibrate: bool = False
    holdout: float = 0.3
    seed: int = 0
    plot: str | Path | None = None
    force: bool = False


def _check_outputs(artifact: Artifact, options: EvalOptions) -> None:
    """Refuse, before any grading, outputs that exist without --force."""
    if options.calibrate and not 0.0 < options.holdout < 1.0:
        raise UsageError(f"--holdout must be between 0 and 1 (exclusive), not {options.holdout}")
    if options.limit is not None and options.limit < 1:
        raise UsageError(f"--limit must be 1 or more, not {options.limit}")
    if options.force:
        return
    if options.plot is not None and Path(options.plot).exists():
        raise UsageError(f"{options.plot}: exists; pass --force to replace it")
    if options.calibrate and calibration_path(artifact.path).exists():
        raise UsageError(
            f"{calibration_path(artifact.path)}: the artifact is calibrated already; pass "
            "--force to replace it"
        )


def _grade(
    artifact: Artifact, gold: list[Row], grader_spec: str, gold_path: str | Path, o: EvalOptions
) -> tuple[list[FeatureRow], list[FeatureRow], FewShotResult | None, Grader | None]:
    """Grade the gold rows: as grading would (calibrated), raw, and the grader."""
    from specc.evaluate.fewshot import few_shot_check
    from specc.grade.cache import GradeCache, default_cache_path
    from specc.grade.features import extract_features
    from specc.grade.graders import close_grader, make_grader, notices
    from specc.grade.progress import ProgressBar

    grader = make_grader(
        grader_spec,
        answers=Answers.of(artifact),
        device=o.device,
        dtype=o.dtype,
        batch_size=o.batch_size,
        concurrency=o.concurrency,
        timeout=o.timeout,
        top_logprobs=o.top_logprobs,
        notify=notices(not o.progress),
    )
    llm = None if isinstance(grader, (LabelsGrader, RulesGrader)) else grader
    if o.calibrate and llm is None:
        raise UsageError(
            f"--calibrate needs a model's P(yes), not --grader {grader_spec}; grade with "
            "hf:PATH or openai:URL#MODEL, or pass --predictions"
        )
    cache = GradeCache(o.cache_path or default_cache_path(gold_path)) if llm else None
    try:
        bar = ProgressBar() if o.progress else None
        feats = extract_features(artifact, gold, grader, cache=cache, progress=bar)
        raw = feats
        if o.calibrate and any(CALIBRATED in s for f in feats for s in f.sources.values()):
            raw = extract_features(artifact, gold, grader, cache=cache, calibrate=False)
        few_shot = few_shot_check(artifact, llm, cache) if llm is not None and o.few_shot else None
    finally:
        if cache is not None:
            cache.close()
        close_grader(grader)
    return feats, raw, few_shot, llm


def _llm_source(report: EvalReport, feats: list[FeatureRow], flag: str) -> str:
    """The one LLM source of the predictions (refusing calibrated or mixed ones)."""
    found = {s for f in feats for name, s in f.sources.items() if name in report.samples} - set(
        _NOT_LLM
    )
    if any(s.endswith(CALIBRATED) for s in found):
        raise DataError(
            "these predictions were calibrated when they were graded; --calibrate needs the "
            "grader's raw P(yes)",
            flag,
            "use --grader (the grade cache keeps raw values), or regrade the file before "
            "calibrating",
        )
    if len(found) != 1:
        raise DataError(
            "--calibrate needs predictions from one model"
            + (f", not {sorted(found)}" if found else "; these have no LLM-graded values"),
            flag,
        )
    return found.pop()


def run_eval(
    artifact_dir: str | Path,
    gold_path: str | Path,
    *,
    grader_spec: str | None = None,
    predictions: str | Path | None = None,
    options: EvalOptions | None = None,
) -> EvalReport:
    """Evaluate, and with the options also check few-shot examples, calibrate and plot."""
    from specc.grade.features import read_features

    o = options or EvalOptions()
    if (grader_spec is None) == (predictions is None):
        raise UsageError("give exactly one of --grader G and --predictions FEATURES.jsonl")
    artifact = load_artifact(artifact_dir)
    _check_outputs(artifact, o)
    gold = read_gold(gold_path, artifact, limit=o.limit)
    identity = None
    few_shot = None
    if grader_spec is not None:
        feats, raw, few_shot, llm = _grade(artifact, gold, grader_spec, gold_path, o)
        source = f"--grader {grader_spec}"
        if llm is not None:
            identity = identity_digest(llm.identity)
    else:
        assert predictions is not None
        feats = raw = read_features(predictions)
        source = str(predictions)
    report = evaluate_pairs(artifact, match(gold, feats, artifact, source), source)
    calibrated = sorted({n for f in feats for n, s in f.sources.items() if s.endswith(CALIBRATED)})
    if calibrated:
        report.notes.append(
            f"P(yes) of {', '.join(calibrated)} are calibrated (the artifact's calibration/)"
        )
    report.few_shot = few_shot
    if grader_spec is not None and few_shot is None and o.few_shot:
        report.notes.append("few-shot check skipped: --grader labels/rules is not a model")
    if o.calibrate:
        raw_report = (
            report
            if raw is feats
            else evaluate_pairs(artifact, match(gold, raw, artifact, source), source)
        )
        grader_source = _llm_source(raw_report, raw, source)
        llm_props = {
            name
            for f in raw
            for name, s in f.sources.items()
            if s == grader_source and name in raw_report.samples
        }
        calibration = fit_calibration(
            {name: raw_report.samples[name] for name in sorted(llm_props)},
            spec_hash=artifact.spec_hash,
            grader_source=grader_source,
            grader_identity=identity,
            holdout=o.holdout,
            seed=o.seed,
        )
        from specc.calibrate import save_calibration

        save_calibration(artifact, calibration, replace=o.force)
        report.calibration = calibration
    if o.plot is not None:
        from specc.evaluate.plot import plot_report

        plot_report(report, o.plot, replace=o.force)
    return report
