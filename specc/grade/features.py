"""Rows to feature rows: grade each row's propositions, then derive and classify.

For each row, only the propositions its response type needs
(``ResponseTypeEntry.propositions``) are graded: by the proposition's declared
extractor if it has one, else by the chosen grader (an LLM backend, or the row's
own labels). Derived propositions, tier classes and costs come from
``artifact.rules`` (exact weighted model counting over the base probabilities).

An output line::

    {"id": "line-1", "prompt_id": "3f2a...", "response_type": "hard_refuse",
     "completion_label": "ideal", "base_reward": null,
     "propositions": {"apology": 0.93, ...}, "derived": {...}, "classes": {"ideal": 0.8, ...},
     "costs": {...}, "features": [0.93, ..., 0.8, ...],
     "sources": {"apology": "hf:grader-7b", "too_long": "rules"}}

>>> rows = read_rows("train.jsonl")                                    # doctest: +SKIP
>>> feats = extract_features(load_artifact("out/a"), rows, make_grader("labels"))  # doctest: +SKIP
>>> write_features("features.jsonl", feats)                           # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from specc.artifact import Artifact, ResponseTypeEntry
from specc.calibrate import CALIBRATED, calibration_for
from specc.errors import DataError, UsageError, did_you_mean
from specc.files import Staging
from specc.grade.base import (
    Answers,
    AnyGrader,
    Grader,
    GraderError,
    LabelsGrader,
    RulesGrader,
)
from specc.grade.cache import GradeCache, cache_key
from specc.grade.data import Row
from specc.grade.progress import Progress
from specc.grade.rules import Extractor
from specc.jsonl import dumps_line

#: Rows graded together: each proposition's prompts for these rows form one job.
ROW_CHUNK = 512


@dataclass
class FeatureRow:
    """One graded row (see the module docstring for the JSON form)."""

    id: str
    prompt_id: str
    response_type: str
    completion_label: str | None
    base_reward: float | None
    propositions: dict[str, float]
    derived: dict[str, float]
    classes: dict[str, float]
    features: list[float]
    sources: dict[str, str]
    costs: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Any, where: str) -> FeatureRow:
        """A row from its JSON form; a missing field, a value that is not a finite
        number where one belongs, or a label that is not a string is a
        :class:`DataError` at ``where``."""
        if not isinstance(obj, dict):
            raise DataError("a feature row must be a JSON object", where)

        def number(value: Any, what: str) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DataError(f"{what} must be a number, not {value!r}", where)
            if not math.isfinite(value):
                raise DataError(f"{what} is {value} (not a finite number)", where)
            return float(value)

        def numbers(values: Any, what: str) -> dict[str, float]:
            if not isinstance(values, dict):
                raise DataError(f"'{what}' must be an object of numbers", where)
            return {str(k): number(v, f"{what}[{k!r}]") for k, v in values.items()}

        try:
            ident, prompt_id, response_type = obj["id"], obj["prompt_id"], obj["response_type"]
            label = obj.get("completion_label")
            if label is not None and not isinstance(label, str):
                raise DataError(f"completion_label must be a string, not {label!r}", where)
            base = obj.get("base_reward")
            values = obj["features"]
            if not isinstance(values, list):
                raise DataError("'features' must be a list of numbers", where)
            row = cls(
                id=str(ident),
                prompt_id=str(prompt_id),
                response_type=str(response_type),
                completion_label=label,
                base_reward=None if base is None else number(base, "base_reward"),
                propositions=numbers(obj["propositions"], "propositions"),
                derived=numbers(obj.get("derived", {}), "derived"),
                classes=numbers(obj["classes"], "classes"),
                features=[number(v, f"features[{i}]") for i, v in enumerate(values)],
                sources={str(k): str(v) for k, v in obj.get("sources", {}).items()},
                costs=numbers(obj.get("costs", {}), "costs"),
            )
        except KeyError as exc:
            raise DataError(
                f"feature row without field {exc}",
                where,
                "feature files are written by `specc grade`; regenerate it",
            ) from None
        except (AttributeError, TypeError, ValueError) as exc:
            raise DataError(f"malformed feature row ({exc})", where) from None
        return row


@dataclass
class GradeStats:
    """What one :func:`extract_features` call did."""

    rows: int = 0
    llm_prompts: int = 0  # (row, proposition) pairs graded by the LLM grader
    cache_hits: int = 0  # ... of which answered from the cache
    computed: int = 0  # distinct prompts sent to the grader
    rules: int = 0  # values from extractors
    labels: int = 0  # values from the rows' labels


def _resolve(artifact: Artifact, row: Row) -> ResponseTypeEntry:
    try:
        rt = artifact.response_type(row.response_type)
    except KeyError as exc:
        raise DataError(str(exc.args[0]), row.where) from None
    if row.completion_label is not None and row.completion_label not in rt.tiers:
        hint = did_you_mean(row.completion_label, rt.tiers)
        raise DataError(
            f"completion_label {row.completion_label!r} is not a tier of response type "
            f"{rt.name!r} ({', '.join(rt.tiers)})",
            row.where,
            hint,
        )
    return rt


def check_rows(artifact: Artifact, rows: Sequence[Row]) -> list[ResponseTypeEntry]:
    """Each row's response type; a :class:`DataError` (file:line, did-you-mean) for an
    unknown response type or a completion label that is not one of its tiers."""
    return [_resolve(artifact, row) for row in rows]


def _plan(
    artifact: Artifact, rows: Sequence[Row], grader: AnyGrader
) -> tuple[list[ResponseTypeEntry], dict[str, Extractor]]:
    """Resolve response types, compile extractors, check the grader fits."""
    types = check_rows(artifact, rows)
    needed: dict[str, str] = {}  # proposition -> a response type that needs it
    for rt in types:
        for name in rt.propositions:
            needed.setdefault(name, rt.name)
    extractors: dict[str, Extractor] = {}
    for name, rt_name in needed.items():
        entry = artifact.proposition(name)
        if entry.kind == "rules":
            if entry.extractor is None:
                raise UsageError(
                    f"{artifact.path}: proposition {name!r} is a rules proposition without "
                    "an extractor; recompile the spec"
                )
            extractors[name] = Extractor.from_spec(entry.extractor, name)
        elif isinstance(grader, RulesGrader):
            raise UsageError(
                f"proposition {name!r} (needed by response type {rt_name!r}) is answered "
                "by an LLM, but --grader rules runs only extractors; use hf:MODEL, "
                "openai:URL#MODEL or labels"
            )
    return types, extractors


def _label(row: Row, name: str) -> float:
    if row.propositions is None:
        raise DataError(
            f"no 'propositions' labels, but --grader labels needs proposition {name!r}",
            row.where,
            "add the labels to the row, or grade with hf:MODEL or openai:URL#MODEL",
        )
    if name not in row.propositions:
        hint = did_you_mean(name, row.propositions)
        raise DataError(
            f"no label for proposition {name!r} (--grader labels)",
            row.where,
            hint or "add it to the row's 'propositions', or grade with an LLM grader",
        )
    return row.propositions[name]


class PropositionGrader:
    """An LLM grader answering an artifact's propositions for rows, through the grade
    cache: what :func:`extract_features` and ``specc eval``'s few-shot check share.

    ``grader`` is switched to the artifact's answer words (:attr:`grader`). Fresh
    grades are committed to ``cache`` every ``commit_every`` prompts (default 4 x the
    grader's batch size); ``stats`` and ``progress``, when given, are kept up to date.

    >>> job = PropositionGrader(artifact, grader, cache)      # doctest: +SKIP
    >>> job.grade("apology", rows)                            # doctest: +SKIP
    [0.93, 0.04]
    """

    def __init__(
        self,
        artifact: Artifact,
        grader: Grader,
        cache: GradeCache | None = None,
        *,
        stats: GradeStats | None = None,
        progress: Progress | None = None,
        commit_every: int | None = None,
    ):
        self.artifact = artifact
        self.grader = grader.with_answers(Answers.of(artifact))
        self.cache = cache
        self.stats = stats if stats is not None else GradeStats()
        self.progress = progress
        self.commit_every = commit_every or 4 * self.grader.batch_size
        self.answers_key = self.grader.answers.key()
        self.identity = self.grader.identity

    def grade(self, name: str, rows: Sequence[Row]) -> list[float]:
        """P(yes) of proposition ``name`` for each of ``rows``."""
        prompts = [
            self.artifact.render_prompt(name, row.conversation_text, row.completion) for row in rows
        ]
        keys = [cache_key(self.identity, self.answers_key, p) for p in prompts]
        known = self.cache.get_many(keys) if self.cache is not None else {}
        self.stats.llm_prompts += len(rows)
        self.stats.cache_hits += sum(1 for k in keys if k in known)
        by_key = dict(zip(keys, prompts, strict=True))
        todo = sorted((k for k in by_key if k not in known), key=lambda k: len(by_key[k]))
        hits = len(rows) - sum(1 for k in keys if k not in known)
        if self.progress is not None and hits:
            self.progress.advance(hits)
        prefix = self.artifact.prompt_prefix(name)
        first_row: dict[str, Row] = {}  # the first row with each prompt, to name it in errors
        for key, row in zip(keys, rows, strict=True):
            first_row.setdefault(key, row)
        for i in range(0, len(todo), self.commit_every):
            part = todo[i : i + self.commit_every]
            try:
                values = self.grader.grade([by_key[k] for k in part], prefix=prefix)
            except GraderError as exc:
                index = exc.prompt_index
                failed = first_row[part[index]] if index is not None else None
                where = f"{failed.where} (id {failed.id!r}), " if failed is not None else ""
                raise GraderError(
                    f"{where}proposition {name!r}: {exc}", prompt_index=None
                ) from None
            fresh = {k: float(v) for k, v in zip(part, values, strict=True)}
            for k, v in fresh.items():
                if not (math.isfinite(v) and 0.0 <= v <= 1.0):
                    row = first_row[k]
                    raise GraderError(
                        f"{row.where} (id {row.id!r}), proposition {name!r}: the grader "
                        f"returned P(yes)={v}, not a probability"
                    )
            if self.cache is not None:
                self.cache.put_many(fresh)
            known.update(fresh)
            self.stats.computed += len(part)
            if self.progress is not None:
                self.progress.advance(sum(1 for k in keys if k in fresh))
        return [known[k] for k in keys]


def _derive(
    artifact: Artifact,
    rt: ResponseTypeEntry,
    rows: list[Row],
    values: list[dict[str, float]],
    sources: list[dict[str, str]],
) -> list[FeatureRow]:
    """Derived, class and cost probabilities of rows of one response type."""
    import numpy as np

    graded = set(rt.propositions)
    probs = {
        name: np.array([v[name] for v in values], dtype=np.float64) for name in rt.propositions
    }
    rules = artifact.rules
    derived_names = [d.name for d in artifact.manifest.derived if set(d.propositions) <= graded]
    cost_names = [
        c.name
        for c in artifact.manifest.constraints
        if rt.name in c.applies_to and set(c.propositions) <= graded
    ]
    roots = [f"derived:{n}" for n in derived_names] + [f"cost:{n}" for n in cost_names]
    evaluated = rules.evaluate_many(roots, probs) if roots else {}
    tiers = np.asarray(rules.tier_probabilities(rt.name, probs), dtype=np.float64)
    if tiers.shape != (len(rows), len(rt.tiers)):
        raise UsageError(
            f"{artifact.path}: rules.json gives {tiers.shape} tier probabilities for "
            f"{rt.name!r}, expected {(len(rows), len(rt.tiers))}; recompile the spec"
        )
    out = []
    for i, row in enumerate(rows):
        derived = {n: float(evaluated[f"derived:{n}"][i]) for n in derived_names}
        costs = {n: float(evaluated[f"cost:{n}"][i]) for n in cost_names}
        classes = {t: float(tiers[i, j]) for j, t in enumerate(rt.tiers)}
        features = []
        for feat in rt.features:
            kind, _, key = feat.partition(":")
            table = {"prop": values[i], "derived": derived, "class": classes}.get(kind)
            if table is None or key not in table:
                raise UsageError(
                    f"{artifact.path}: feature {feat!r} of response type {rt.name!r} cannot "
                    "be computed from its propositions; recompile the spec"
                )
            features.append(table[key])
        out.append(
            FeatureRow(
                id=row.id,
                prompt_id=row.prompt_id(rt.name),
                response_type=rt.name,
                completion_label=row.completion_label,
                base_reward=row.base_reward,
                propositions={n: values[i][n] for n in rt.propositions},
                derived=derived,
                classes=classes,
                features=features,
                sources={n: sources[i][n] for n in rt.propositions},
                costs=costs,
            )
        )
    return out


def extract_features(
    artifact: Artifact,
    rows: Sequence[Row],
    grader: AnyGrader,
    cache: GradeCache | None = None,
    progress: Progress | None = None,
    *,
    commit_every: int | None = None,
    stats: GradeStats | None = None,
    calibrate: bool = True,
) -> list[FeatureRow]:
    """Grade ``rows`` and compute their features, in input order.

    ``cache`` stores every LLM grade (committed each ``commit_every`` prompts,
    default 4 x the grader's batch size); ``stats``, when given, is filled in. With
    ``calibrate``, the artifact's calibration (``specc.calibrate``), when it was fitted
    for this grader, turns the raw P(yes) (what the cache keeps) into calibrated ones,
    marked in ``sources``."""
    stats = stats if stats is not None else GradeStats()
    types, extractors = _plan(artifact, rows, grader)
    job = (  # None: labels and rules need no LLM
        PropositionGrader(
            artifact, grader, cache, stats=stats, progress=progress, commit_every=commit_every
        )
        if not isinstance(grader, (LabelsGrader, RulesGrader))
        else None
    )
    llm_props = {
        i: [n for n in rt.propositions if n not in extractors] for i, rt in enumerate(types)
    }
    total = sum(len(v) for v in llm_props.values()) if job is not None else 0
    if progress is not None:
        progress.start(total or len(rows), len(rows), "prompts" if total else "rows")
    calibration = (
        calibration_for(artifact, job.grader.source, job.grader.identity)
        if calibrate and job is not None
        else None
    )
    values: list[dict[str, float]] = [{} for _ in rows]
    sources: list[dict[str, str]] = [{} for _ in rows]
    for start in range(0, len(rows), ROW_CHUNK):
        chunk = range(start, min(start + ROW_CHUNK, len(rows)))
        for i in chunk:
            row, rt = rows[i], types[i]
            for name in rt.propositions:
                if name in extractors:
                    values[i][name] = extractors[name](row.completion)
                    sources[i][name] = "rules"
                    stats.rules += 1
                elif isinstance(grader, LabelsGrader):
                    values[i][name] = _label(row, name)
                    sources[i][name] = "labels"
                    stats.labels += 1
        if job is not None:
            wanted: dict[str, list[int]] = defaultdict(list)
            for i in chunk:
                for name in llm_props[i]:
                    wanted[name].append(i)
            for name in (p.name for p in artifact.manifest.propositions):
                idx = wanted.get(name)
                if not idx:
                    continue
                calibrated = calibration is not None and name in calibration.fits
                for i, v in zip(idx, job.grade(name, [rows[i] for i in idx]), strict=True):
                    values[i][name] = calibration.apply(name, v) if calibration else v
                    sources[i][name] = job.grader.source + (CALIBRATED if calibrated else "")
        elif progress is not None:
            progress.advance(len(chunk))
    groups: dict[str, list[int]] = defaultdict(list)
    for i, rt in enumerate(types):
        groups[rt.name].append(i)
    result: list[FeatureRow | None] = [None] * len(rows)
    for idx in groups.values():
        rt = types[idx[0]]
        done = _derive(
            artifact,
            rt,
            [rows[i] for i in idx],
            [values[i] for i in idx],
            [sources[i] for i in idx],
        )
        for i, feat in zip(idx, done, strict=True):
            result[i] = feat
    stats.rows += len(rows)
    if progress is not None:
        progress.finish()
    return [r for r in result if r is not None]


# --------------------------------------------------------------------------- files


def write_features(path: str | Path, rows: Sequence[FeatureRow]) -> None:
    """Write feature rows as JSONL, atomically (:mod:`specc.files`): a temp file in the
    same folder is fsynced, then renamed over ``path``, with the umask's mode. A crash
    or a full disk leaves the old file."""
    with Staging() as stage, stage.open(path) as f:
        for row in rows:
            f.write(dumps_line(row.to_json()).encode())


def read_features(path: str | Path) -> list[FeatureRow]:
    """Read a feature file written by :func:`write_features` through the bounded
    :mod:`specc.jsonl` reader (lines split on ``\\n`` only; errors name file:line).
    ``specc fit`` reads the file with :func:`specc.fit.read.read_feature_table` instead,
    straight into arrays."""
    from specc.jsonl import iter_jsonl

    out = [FeatureRow.from_json(obj, where) for _, where, obj in iter_jsonl(path, "feature file")]
    if not out:
        raise DataError("no feature rows: the file is empty", str(path))
    return out
