"""The reward behind ``specc serve`` and the OpenRLHF reward file: rows in, rewards out.

:class:`RewardEngine` wraps a :class:`specc.reward.Reward`. It checks each row before
it is queued (so one bad request cannot fail a batch), grades batches of rows
(synchronously: the server runs it on a worker thread), and builds the replies.

>>> engine = RewardEngine.load("out/safety", "rules")         # doctest: +SKIP
>>> [s.reward for s in engine.grade(rows)]                   # doctest: +SKIP
[1.73, -0.41]

The numbers equal ``specc.load(artifact, grader)(rows)`` on the same rows.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.errors import DataError, UsageError
from specc.grade.base import Answers, LabelsGrader, RulesGrader
from specc.serve.protocol import RequestError

if TYPE_CHECKING:
    from specc.artifact import Artifact, ResponseTypeEntry
    from specc.grade.data import Row
    from specc.reward import Reward


class GraderFailure(Exception):
    """The grader failed on a batch (a server down, a model error): HTTP 502."""


@dataclass(frozen=True)
class Scored:
    """One graded completion."""

    reward: float  # what the trainer should use (shaped when constraints act)
    raw: float  # the fitted RBR reward
    costs: dict[str, float]  # every constraint; 0 where it does not apply
    response_type: str
    tiers: dict[str, float]  # P(tier) for each tier of the row's response type


class RewardEngine:
    """A loaded reward that grades batches of checked rows."""

    def __init__(self, reward: Reward):
        self.reward = reward
        self.artifact: Artifact = reward.artifact
        manifest = self.artifact.manifest
        self.constraints = tuple(c.name for c in manifest.constraints)
        self.tier_names = tuple(t.name for t in manifest.tiers)
        self._applies = {c.name: frozenset(c.applies_to) for c in manifest.constraints}
        self._llm = {p.name for p in manifest.propositions if p.kind == "llm"}
        self._lock = threading.Lock()
        self.completions = 0

    @classmethod
    def load(cls, artifact: str | Path, grader: str, **grader_options: Any) -> RewardEngine:
        """Load the artifact and its weights; the grader answers with the artifact's
        yes/no words (like ``specc grade``)."""
        from specc.artifact import load_artifact
        from specc.reward import load

        art = load_artifact(artifact)
        g = art.manifest.grader
        grader_options.setdefault("answers", Answers(yes=tuple(g.yes), no=tuple(g.no)))
        return cls(load(art, grader=grader, **grader_options))

    # ----------------------------------------------------------------- checks

    @property
    def grader_source(self) -> str:
        return self.reward.grader.source

    def warm_up(self) -> None:
        """Load a lazily loaded model now, so the first request does not wait for it."""
        grader = self.reward.grader
        if not isinstance(grader, (LabelsGrader, RulesGrader)):
            _ = grader.batch_size, grader.identity
            getattr(grader, "tokenizer", None)  # loads an hf model; no-op elsewhere

    def resolve(self, row: Row) -> ResponseTypeEntry:
        """The row's response type, or a 422 that says what is wrong with the row."""
        try:
            rt = self.artifact.response_type(row.response_type)
        except KeyError as exc:
            raise RequestError(422, f"{row.where}: {exc.args[0]}") from None
        if rt.name not in self.reward.weights.response_types:
            raise RequestError(
                422, f"{row.where}: response type {rt.name!r} has no fitted weights in this reward"
            )
        if row.completion_label is not None and row.completion_label not in rt.tiers:
            raise RequestError(
                422,
                f"{row.where}: completion_label {row.completion_label!r} is not a tier of "
                f"{rt.name!r} ({', '.join(rt.tiers)})",
            )
        grader = self.reward.grader
        llm = [p for p in rt.propositions if p in self._llm]
        if isinstance(grader, RulesGrader) and llm:
            raise RequestError(
                422,
                f"{row.where}: response type {rt.name!r} needs LLM-graded propositions "
                f"({', '.join(llm)}), but this server grades with rules only",
            )
        if isinstance(grader, LabelsGrader):
            missing = [p for p in llm if p not in (row.propositions or {})]
            if missing:
                raise RequestError(
                    422,
                    f"{row.where}: this server grades with labels, and the row has no "
                    f"'propositions' value for {', '.join(missing)}",
                )
        return rt

    # ---------------------------------------------------------------- grading

    def grade(self, rows: Sequence[Row]) -> list[Scored]:
        """Grade checked rows (one batch). Raises :class:`DataError` for a row the
        checks could not foresee and :class:`GraderFailure` when the grader fails."""
        from specc.grade import extract_features

        try:
            feats = extract_features(
                self.artifact, list(rows), self.reward.grader, self.reward.cache
            )
            raw = self.reward.score(feats)
        except (DataError, UsageError):
            raise
        except Exception as exc:  # the grader's own failure, whatever its kind
            raise GraderFailure(f"the grader failed: {type(exc).__name__}: {exc}") from exc
        out = []
        for feat, r in zip(feats, raw, strict=True):
            value = float(r)
            if not math.isfinite(value):
                raise GraderFailure(f"the reward of {feat.response_type!r} is {value}")
            out.append(
                Scored(
                    reward=value,
                    raw=value,
                    costs={c: feat.costs.get(c, 0.0) for c in self.constraints},
                    response_type=feat.response_type,
                    tiers=dict(feat.classes),
                )
            )
        with self._lock:
            self.completions += len(out)
        return out

    def grade_groups(self, groups: Sequence[Sequence[Row]]) -> list[list[Scored] | Exception]:
        """Grade several requests' rows as one batch; when the batch fails because of
        a row, grade each request alone so that only the bad one fails."""
        flat = [row for group in groups for row in group]
        try:
            scored = self.grade(flat)
        except (DataError, UsageError) as exc:
            if len(groups) == 1:
                return [exc]
            return [self._alone(group) for group in groups]
        except GraderFailure as exc:
            return [exc for _ in groups]
        out: list[list[Scored] | Exception] = []
        start = 0
        for group in groups:
            out.append(scored[start : start + len(group)])
            start += len(group)
        return out

    def _alone(self, group: Sequence[Row]) -> list[Scored] | Exception:
        try:
            return self.grade(group)
        except (DataError, UsageError, GraderFailure) as exc:
            return exc

    # ---------------------------------------------------------------- replies

    @property
    def log_keys(self) -> tuple[str, ...]:
        """The keys of OpenRLHF's ``extra_logs``: the same for every sample (OpenRLHF
        stacks them across samples)."""
        return (
            "rbr/raw_reward",
            *(f"rbr/tier/{t}" for t in self.tier_names),
            *(f"rbr/cost/{c}" for c in self.constraints),
        )

    def openrlhf_reply(self, scored: Sequence[Scored]) -> dict[str, Any]:
        """``{"rewards": [...], "scores": [...], "extra_logs": {key: [...]}}``: one
        value per query, like OpenRLHF's own ``serve_rm``."""
        rewards = [s.reward for s in scored]
        logs: dict[str, list[float]] = {"rbr/raw_reward": [s.raw for s in scored]}
        for t in self.tier_names:
            logs[f"rbr/tier/{t}"] = [s.tiers.get(t, 0.0) for s in scored]
        for c in self.constraints:
            logs[f"rbr/cost/{c}"] = [s.costs[c] for s in scored]
        return {"rewards": rewards, "scores": rewards, "extra_logs": logs}

    def score_reply(self, scored: Sequence[Scored]) -> dict[str, Any]:
        """The ``/score`` reply: parallel lists, one entry per row."""
        return {
            "rewards": [s.reward for s in scored],
            "raw_rewards": [s.raw for s in scored],
            "costs": {c: [s.costs[c] for s in scored] for c in self.constraints},
            "response_types": [s.response_type for s in scored],
            "tiers": [s.tiers for s in scored],
        }

    def describe(self) -> dict[str, Any]:
        """What ``GET /health`` shows."""
        m = self.artifact.manifest
        return {
            "policy": m.name,
            "version": m.version,
            "spec_hash": m.spec_hash,
            "grader": self.grader_source,
            "response_types": sorted(self.reward.weights.response_types),
            "constraints": list(self.constraints),
        }
