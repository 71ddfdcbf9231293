"""The reward behind ``specc serve`` and the OpenRLHF reward file: rows in, rewards out.

:class:`RewardEngine` wraps a :class:`specc.reward.Reward`. It checks each row before
it is queued (so one bad request cannot fail a batch), grades batches of rows
(synchronously: the server runs it on a worker thread), and builds the replies.

>>> engine = RewardEngine.load("out/safety", "rules")                 # doctest: +SKIP
>>> [s.reward for s in engine.grade([Sample(row) for row in rows])]  # doctest: +SKIP
[1.73, -0.41]

Raw rewards equal ``specc.load(artifact, grader)(rows)`` on the same rows.

With the policy's ``constraint`` blocks the engine owns one
:class:`specc.safe.LagrangeController` per constraint (a :class:`~specc.safe.LagrangeSet`)
and returns Safe-RLHF-shaped rewards ``(r - Σ λᵢ cᵢ) / (1 + Σ λᵢ)``, with the λ in force
when the batch was graded. Every ``LagrangeOptions.every`` observed completions, in the
order they were graded, each multiplier takes one step on the costs of those
completions its constraint applies to; the state is saved after each step when
``state_path`` is set, and restored from it at start.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.errors import DataError, UsageError
from specc.files import write_bytes
from specc.grade.base import Answers, LabelsGrader, RulesGrader
from specc.jsonl import read_json_file
from specc.serve.config import LagrangeOptions
from specc.serve.protocol import RequestError

if TYPE_CHECKING:
    import numpy as np

    from specc.artifact import Artifact, ResponseTypeEntry
    from specc.grade.data import Row
    from specc.reward import Reward
    from specc.safe import LagrangeSet

STATE_FORMAT = "specc.serve.lagrange/1"


class GraderFailure(Exception):
    """The grader failed on a batch (a server down, a model error): HTTP 502."""


@dataclass(frozen=True)
class Sample:
    """A row to grade; ``observe``: its costs count towards the multipliers."""

    row: Row
    observe: bool = True


@dataclass(frozen=True)
class Scored:
    """One graded completion."""

    reward: float  # what the trainer should use (shaped when constraints act)
    raw: float  # the fitted RBR reward
    costs: dict[str, float]  # every constraint; 0 where it does not apply
    response_type: str
    tiers: dict[str, float]  # P(tier) for each tier of the row's response type
    lambdas: dict[str, float]  # the multipliers the reward was shaped with


class RewardEngine:
    """A loaded reward that grades batches of checked rows."""

    def __init__(self, reward: Reward, lagrange: LagrangeOptions | None = None):
        self.reward = reward
        self.artifact: Artifact = reward.artifact
        manifest = self.artifact.manifest
        self.constraints = tuple(c.name for c in manifest.constraints)
        self.tier_names = tuple(t.name for t in manifest.tiers)
        self._llm = {p.name for p in manifest.propositions if p.kind == "llm"}
        self._lock = threading.Lock()
        self.completions = 0
        self.options = lagrange or LagrangeOptions(enabled=False)
        self.lagrange: LagrangeSet | None = None
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # (costs, applies) rows
        if self.options.enabled and self.constraints:
            self._start_lagrange()

    @classmethod
    def load(
        cls,
        artifact: str | Path,
        grader: str,
        lagrange: LagrangeOptions | None = None,
        **grader_options: Any,
    ) -> RewardEngine:
        """Load the artifact and its weights; the grader answers with the artifact's
        yes/no words (like ``specc grade``)."""
        from specc.artifact import load_artifact
        from specc.reward import load

        art = load_artifact(artifact)
        grader_options.setdefault("answers", Answers.of(art))
        return cls(load(art, grader=grader, **grader_options), lagrange)

    # --------------------------------------------------------------- lagrange

    def _start_lagrange(self) -> None:
        from specc.safe import LagrangeSet

        o = self.options
        if o.every < 1:
            raise UsageError(f"--lambda-every must be 1 or more, not {o.every}")
        limits = {c.name: c.limit for c in self.artifact.manifest.constraints}
        self.lagrange = LagrangeSet.for_limits(limits, **o.controller_settings())
        if o.state_path is not None and Path(o.state_path).exists():
            self._load_state(Path(o.state_path))

    def _load_state(self, path: Path) -> None:
        from specc.safe import MAX_STATE_BYTES

        assert self.lagrange is not None
        state = read_json_file(path, "the Lagrange state", MAX_STATE_BYTES)
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise DataError(f"not a specc serve Lagrange state (format {STATE_FORMAT})", str(path))
        if state.get("spec_hash") != self.artifact.spec_hash:
            raise DataError(
                "the Lagrange state was saved for another policy (spec hash "
                f"{str(state.get('spec_hash'))[:12]}, this one {self.artifact.spec_hash[:12]})",
                str(path),
                "start with a new --lambda-state file",
            )
        controllers = state.get("controllers")
        if not isinstance(controllers, dict):
            raise DataError("the Lagrange state has no 'controllers' object", str(path))
        try:
            self.lagrange.load_state_dict(controllers)
        except DataError as exc:
            raise DataError(f"cannot restore the Lagrange state: {exc}", str(path)) from None

    def _save_state(self) -> None:
        if self.lagrange is None or self.options.state_path is None:
            return
        target = Path(self.options.state_path)
        state = {
            "format": STATE_FORMAT,
            "spec_hash": self.artifact.spec_hash,
            "controllers": self.lagrange.state_dict(),
        }
        write_bytes(target, json.dumps(state).encode())

    def _observe(self, costs: np.ndarray, applies: np.ndarray) -> None:
        """Queue observed completions; step the multipliers every ``every`` of them."""
        import numpy as np

        assert self.lagrange is not None
        self._pending.extend(zip(costs, applies, strict=True))
        every = self.options.every
        while len(self._pending) >= every:
            chunk, self._pending = self._pending[:every], self._pending[every:]
            self.lagrange.update(np.stack([c for c, _ in chunk]), np.stack([a for _, a in chunk]))
            self._save_state()

    def lagrange_status(self) -> dict[str, dict[str, float | int | None]]:
        """Each constraint's limit, λ, mean window cost and number of steps."""
        if self.lagrange is None:
            return {}
        with self._lock:
            return {
                name: {
                    "limit": ctl.limit,
                    "lambda": ctl.lam,
                    "mean_cost": ctl.mean_cost,
                    "updates": ctl.updates,
                }
                for name, ctl in self.lagrange.controllers.items()
            }

    # ----------------------------------------------------------------- checks

    @property
    def grader_source(self) -> str:
        return self.reward.grader.source

    def warm_up(self) -> None:
        """Load a lazily loaded model now, so the first request does not wait for it."""
        grader = self.reward.grader
        if not isinstance(grader, (LabelsGrader, RulesGrader)):
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

    def samples(self, rows: Sequence[Row], observe: bool = True) -> list[Sample]:
        """One request's rows, each checked (:meth:`resolve`), ready to queue."""
        for row in rows:
            self.resolve(row)
        return [Sample(row, observe) for row in rows]

    # ---------------------------------------------------------------- grading

    def grade(self, samples: Sequence[Sample]) -> list[Scored]:
        """Grade checked rows (one batch). Raises :class:`DataError` for a row the
        checks could not foresee and :class:`GraderFailure` when the grader fails."""
        import numpy as np

        from specc.grade import extract_features

        rows = [s.row for s in samples]
        try:
            feats = extract_features(self.artifact, rows, self.reward.grader, self.reward.cache)
            batch = self.reward.score_features_with_costs(feats)
        except (DataError, UsageError):
            raise
        except Exception as exc:  # the grader's own failure, whatever its kind
            raise GraderFailure(f"the grader failed: {type(exc).__name__}: {exc}") from exc
        bad = np.flatnonzero(~np.isfinite(batch.rewards))
        if bad.size:
            i = int(bad[0])
            raise GraderFailure(f"the reward of {feats[i].response_type!r} is {batch.rewards[i]}")
        with self._lock:
            shaped = batch.rewards
            lambdas: dict[str, float] = {}
            if self.lagrange is not None:
                lambdas = self.lagrange.lams
                shaped = self.lagrange.shape(batch.rewards, batch.costs)
                seen = np.array([s.observe for s in samples], dtype=bool)
                if seen.any():
                    self._observe(batch.costs[seen], batch.applies[seen])
            self.completions += len(rows)
        return [
            Scored(
                reward=float(shaped[i]),
                raw=float(batch.rewards[i]),
                costs=dict(zip(self.constraints, map(float, batch.costs[i]), strict=True)),
                response_type=feat.response_type,
                tiers=dict(feat.classes),
                lambdas=lambdas,
            )
            for i, feat in enumerate(feats)
        ]

    def grade_groups(self, groups: Sequence[Sequence[Sample]]) -> list[list[Scored] | Exception]:
        """Grade several requests' rows as one batch; when the batch fails because of
        a row, grade each request alone so that only the bad one fails."""
        flat = [s for group in groups for s in group]
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

    def _alone(self, group: Sequence[Sample]) -> list[Scored] | Exception:
        try:
            return self.grade(group)
        except (DataError, UsageError, GraderFailure) as exc:
            return exc

    # ---------------------------------------------------------------- replies

    @property
    def shaping(self) -> bool:
        """Whether rewards are Lagrange-shaped."""
        return self.lagrange is not None

    def openrlhf_reply(self, scored: Sequence[Scored]) -> dict[str, Any]:
        """``{"rewards": [...], "scores": [...], "extra_logs": {key: [...]}}``: one
        value per query, like OpenRLHF's own ``serve_rm``. The ``extra_logs`` keys are
        the same for every sample (OpenRLHF stacks them across samples)."""
        rewards = [s.reward for s in scored]
        logs: dict[str, list[float]] = {"rbr/raw_reward": [s.raw for s in scored]}
        for t in self.tier_names:
            logs[f"rbr/tier/{t}"] = [s.tiers.get(t, 0.0) for s in scored]
        for c in self.constraints:
            logs[f"rbr/cost/{c}"] = [s.costs[c] for s in scored]
        if self.shaping:
            for c in self.constraints:
                logs[f"rbr/lambda/{c}"] = [s.lambdas[c] for s in scored]
        return {"rewards": rewards, "scores": rewards, "extra_logs": logs}

    def score_reply(self, scored: Sequence[Scored]) -> dict[str, Any]:
        """The ``/score`` reply: parallel lists, one entry per row."""
        return {
            "rewards": [s.reward for s in scored],
            "raw_rewards": [s.raw for s in scored],
            "costs": {c: [s.costs[c] for s in scored] for c in self.constraints},
            "response_types": [s.response_type for s in scored],
            "tiers": [s.tiers for s in scored],
            "lambda": scored[0].lambdas if scored else {},
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
            "shaping": self.shaping,
            "lagrange": self.lagrange_status(),
        }
