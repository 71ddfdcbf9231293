"""The fitted reward: :func:`load` an artifact and score conversations.

>>> reward = specc.load("out/safety")                                  # doctest: +SKIP
>>> reward([{"prompt": "...", "completion": "...", "response_type": "Comply",
...          "propositions": {...}}])                                   # doctest: +SKIP
array([1.73])
>>> reward.explain(row).table()                                        # doctest: +SKIP

Inside a trainer, :class:`RewardModule` scores feature tensors of mixed response
types in one batched call; :meth:`Reward.module` builds it from the fitted weights.
:meth:`Reward.score_with_costs` gives the rewards together with each constraint's
cost, for Safe RLHF training (``specc.safe``):

>>> batch = reward.score_with_costs(rows)                               # doctest: +SKIP
>>> batch.rewards, batch.costs, batch.constraints, batch.limits        # doctest: +SKIP
(array([1.73, -0.4]), array([[0.01, 0.], [0.9, 0.]]), ('toxic', 'lecture'), array([0.02, 0.05]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from specc.artifact import Artifact, ConstraintEntry, load_artifact
from specc.errors import DataError, did_you_mean
from specc.weights import Weights, load_weights_for

if TYPE_CHECKING:
    from specc.grade import AnyGrader, FeatureRow, GradeCache

__all__ = ["Explanation", "Reward", "RewardModule", "ScoredBatch", "load"]


class RewardModule(nn.Module):
    """``R = W[type] . x + base`` for a batch of rows of any response types.

    ``features`` is ``[n, D]`` where ``D`` is the widest layout (narrower layouts are
    zero-padded on the right), ``type_index`` ``[n]`` indexes ``response_types``.
    The weights are buffers, not parameters: the reward is fixed during RL."""

    weight: torch.Tensor
    use_base: torch.Tensor

    def __init__(self, weights: Weights, response_types: Sequence[str]):
        super().__init__()
        self.response_types = tuple(response_types)
        self.feature_names = tuple(weights.get(t).feature_names for t in self.response_types)
        width = max((len(f) for f in self.feature_names), default=0)
        matrix = torch.zeros(len(self.response_types), width, dtype=torch.float64)
        use_base = torch.zeros(len(self.response_types), dtype=torch.float64)
        for i, name in enumerate(self.response_types):
            tw = weights.get(name)
            matrix[i, : len(tw.weights)] = torch.from_numpy(np.asarray(tw.weights, np.float64))
            use_base[i] = float(tw.base_reward)
        self.register_buffer("weight", matrix)
        self.register_buffer("use_base", use_base)

    def forward(
        self,
        features: torch.Tensor,
        type_index: torch.Tensor,
        base_reward: torch.Tensor | None = None,
    ) -> torch.Tensor:
        w = self.weight.to(features.dtype)[type_index]
        out = (features[:, : w.shape[1]] * w[:, : features.shape[1]]).sum(-1)
        if base_reward is not None:
            out = out + base_reward.to(out.dtype) * self.use_base.to(out.dtype)[type_index]
        return out

    def pack(self, rows: Sequence[FeatureRow]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Feature rows to ``(features, type_index, base_reward)`` tensors."""
        index = {t: i for i, t in enumerate(self.response_types)}
        width = int(self.weight.shape[1])
        x = torch.zeros(len(rows), width, dtype=torch.float64)
        types = torch.empty(len(rows), dtype=torch.long)
        base = torch.zeros(len(rows), dtype=torch.float64)
        for i, row in enumerate(rows):
            t = index.get(row.response_type)
            if t is None:
                raise DataError(f"no fitted weights for response type {row.response_type!r}")
            x[i, : len(row.features)] = torch.tensor(row.features, dtype=torch.float64)
            types[i] = t
            base[i] = row.base_reward or 0.0
        return x, types, base


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float
    weight: float

    @property
    def contribution(self) -> float:
        return self.value * self.weight


@dataclass(frozen=True)
class Explanation:
    """Why one completion got its reward."""

    id: str
    response_type: str
    contributions: tuple[Contribution, ...]
    tiers: dict[str, float]
    base_reward: float | None
    total: float
    costs: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "response_type": self.response_type,
            "features": [
                {
                    "feature": c.feature,
                    "value": c.value,
                    "weight": c.weight,
                    "contribution": c.contribution,
                }
                for c in self.contributions
            ],
            "tiers": self.tiers,
            "base_reward": self.base_reward,
            "costs": self.costs,
            "total": self.total,
        }

    def table(self) -> str:
        """A plain-text table, largest contributions first."""
        rows = sorted(self.contributions, key=lambda c: -abs(c.contribution))
        width = max([len(c.feature) for c in rows] + [len("feature")])
        lines = [
            f"{self.id} ({self.response_type})",
            f"  {'feature':<{width}}  {'value':>8}  {'weight':>9}  {'contribution':>12}",
        ]
        for c in rows:
            lines.append(
                f"  {c.feature:<{width}}  {c.value:8.4f}  {c.weight:9.4f}  {c.contribution:12.4f}"
            )
        if self.base_reward is not None:
            lines.append(f"  {'base reward':<{width}}  {'':>8}  {'':>9}  {self.base_reward:12.4f}")
        lines.append(f"  {'total':<{width}}  {'':>8}  {'':>9}  {self.total:12.4f}")
        best = max(self.tiers, key=self.tiers.__getitem__) if self.tiers else None
        tiers = ", ".join(f"{t}={p:.3f}" for t, p in self.tiers.items())
        lines.append(f"  tiers: {tiers}" + (f"  (most likely: {best})" if best else ""))
        if self.costs:
            lines.append("  costs: " + ", ".join(f"{k}={v:.3f}" for k, v in self.costs.items()))
        return "\n".join(lines)


@dataclass(frozen=True)
class ScoredBatch:
    """Rewards and constraint costs of a batch of rows, for a trainer.

    ``costs[i, j]`` is the expected cost of row ``i`` under constraint
    ``constraints[j]`` (the probability that its cost expression holds, exact under
    independent propositions); it is 0 where ``applies[i, j]`` is false, that is where
    the row's response type is outside the constraint's ``applies_to``. ``limits[j]``
    is the constraint's limit; ``rows`` are the graded feature rows (tier
    probabilities in ``rows[i].classes``)."""

    rewards: np.ndarray  # [n] float64
    costs: np.ndarray  # [n, k] float64
    applies: np.ndarray  # [n, k] bool
    constraints: tuple[str, ...]  # k names, the spec's order
    limits: np.ndarray  # [k] float64
    rows: tuple[FeatureRow, ...] = ()

    def cost(self, name: str) -> np.ndarray:
        """The ``[n]`` cost column of constraint ``name``."""
        return np.asarray(self.costs[:, self._index(name)])

    def limit(self, name: str) -> float:
        return float(self.limits[self._index(name)])

    def _index(self, name: str) -> int:
        try:
            return self.constraints.index(name)
        except ValueError:
            hint = did_you_mean(name, self.constraints)
            raise KeyError(
                f"no constraint {name!r}"
                + (f"; {hint}" if hint else f"; the policy has {', '.join(self.constraints)}")
            ) from None


class Reward:
    """A compiled policy with fitted weights, ready to score rows.

    Rows are dicts in the data format of ``specc grade`` (``prompt``, ``completion``,
    ``response_type``, optional ``propositions`` and ``base_reward``)."""

    def __init__(
        self,
        artifact: Artifact,
        weights: Weights,
        grader: AnyGrader,
        cache: GradeCache | None = None,
    ):
        self.artifact = artifact
        self.weights = weights
        self.grader = grader
        self.cache = cache
        fitted = [
            rt.name for rt in artifact.manifest.response_types if rt.name in weights.response_types
        ]
        self._module = RewardModule(weights, fitted)

    @property
    def module(self) -> RewardModule:
        """The batched torch module over feature tensors."""
        return self._module

    def features(self, rows: Sequence[Mapping[str, Any]]) -> list[FeatureRow]:
        """Grade rows and build their feature vectors."""
        from specc.grade import extract_features
        from specc.grade.data import parse_row

        parsed = [parse_row(dict(r), f"row {i + 1}", i + 1) for i, r in enumerate(rows)]
        return extract_features(self.artifact, parsed, self.grader, self.cache)

    def score(self, feature_rows: Sequence[FeatureRow]) -> np.ndarray:
        """Rewards for already-graded rows."""
        if not feature_rows:
            return np.zeros(0)
        x, types, base = self._module.pack(feature_rows)
        with torch.no_grad():
            out = self._module(x, types, base)
        return np.asarray(out.numpy(), dtype=np.float64)

    def __call__(self, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> np.ndarray:
        batch = [rows] if isinstance(rows, Mapping) else list(rows)
        return self.score(self.features(batch))

    @property
    def constraints(self) -> tuple[ConstraintEntry, ...]:
        """The policy's constraints (``name``, ``limit``, ``applies_to``, ...), in the
        spec's order: the order of the cost columns."""
        return self.artifact.manifest.constraints

    def costs(self, feature_rows: Sequence[FeatureRow]) -> tuple[np.ndarray, np.ndarray]:
        """``(costs, applies)``, both ``[n, k]`` over :attr:`constraints`: each graded
        row's expected cost per constraint, 0 outside the constraint's ``applies_to``."""
        k = len(self.constraints)
        costs = np.zeros((len(feature_rows), k), dtype=np.float64)
        applies = np.zeros((len(feature_rows), k), dtype=bool)
        for j, c in enumerate(self.constraints):
            covered = set(c.applies_to)
            for i, row in enumerate(feature_rows):
                if row.response_type not in covered:
                    continue
                if c.name not in row.costs:
                    raise DataError(
                        f"row {row.id!r} ({row.response_type}) has no cost for constraint "
                        f"{c.name!r}",
                        hint="the row was graded with another version of the spec; regrade it",
                    )
                costs[i, j] = row.costs[c.name]
                applies[i, j] = True
        return costs, applies

    def score_features_with_costs(self, feature_rows: Sequence[FeatureRow]) -> ScoredBatch:
        """:meth:`score` and :meth:`costs` of already-graded rows, in one batch."""
        costs, applies = self.costs(feature_rows)
        return ScoredBatch(
            rewards=self.score(feature_rows),
            costs=costs,
            applies=applies,
            constraints=tuple(c.name for c in self.constraints),
            limits=np.array([c.limit for c in self.constraints], dtype=np.float64),
            rows=tuple(feature_rows),
        )

    def score_with_costs(
        self, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> ScoredBatch:
        """Grade rows once; their rewards, constraint costs and tier probabilities."""
        batch = [rows] if isinstance(rows, Mapping) else list(rows)
        return self.score_features_with_costs(self.features(batch))

    def explain(self, row: Mapping[str, Any]) -> Explanation:
        """Each feature's value, weight and contribution, the tier probabilities, total."""
        (feat,) = self.features([row])
        tw = self.weights.get(feat.response_type)
        contributions = tuple(
            Contribution(name, float(v), float(w))
            for name, v, w in zip(tw.feature_names, feat.features, tw.weights, strict=True)
        )
        total = float(self.score([feat])[0])
        return Explanation(
            id=feat.id,
            response_type=feat.response_type,
            contributions=contributions,
            tiers=dict(feat.classes),
            base_reward=feat.base_reward if tw.base_reward else None,
            total=total,
            costs=dict(feat.costs),
        )


def load(
    artifact: str | Path | Artifact,
    grader: str | AnyGrader = "labels",
    cache: str | Path | None = None,
    *,
    signing_key: bytes | None = None,
    **grader_options: Any,
) -> Reward:
    """Load an artifact with fitted weights; ``grader`` as for ``specc grade``
    (``labels``, ``rules``, ``hf:PATH``, ``openai:URL#MODEL``) or a grader object.

    The artifact and its weights are verified first (:func:`specc.load_artifact`):
    an edited or corrupted file is a :class:`~specc.errors.DataError` that names it.
    ``signing_key`` defaults to ``$SPECC_SIGNING_KEY``/``$SPECC_SIGNING_KEY_FILE``;
    with a key, unsigned or foreign-signed artifacts and weights are refused."""
    from specc.grade import GradeCache, make_grader

    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact, key=signing_key)
    weights = load_weights_for(art)
    if isinstance(grader, str):
        grader = make_grader(grader, **grader_options)
    return Reward(art, weights, grader, GradeCache(cache) if cache is not None else None)
