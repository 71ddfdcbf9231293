"""Fitting one response type's linear reward: :func:`fit_response_type`.

>>> import numpy as np
>>> x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
>>> result = fit_response_type(
...     x, group=np.array([0, 0, 1, 1]), tier_rank=np.array([0, 1, 0, 1]),
...     tier_names=["ideal", "bad"], feature_names=["prop:good", "prop:bad"],
...     settings=FitSettings(optimizer="lbfgs", valid_fraction=0.0))
>>> bool(result.weights[0] > result.weights[1]), result.train.pair_accuracy
(True, 1.0)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from specc.errors import DataError
from specc.fit.data import Locate, check_input, resolve_margins
from specc.fit.metrics import (
    PairMetrics,
    Polarity,
    SignWarning,
    TierStats,
    centre_on_ideal_codes,
    pair_metrics,
    sign_warnings,
    tier_stats,
)
from specc.fit.objective import HingeObjective, with_threads
from specc.fit.optimize import minimise
from specc.fit.pairs import split_layout
from specc.fit.settings import FitSettings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class FitResult:
    """A fitted reward ``R(x) = weights . x (+ base_reward)`` and how good it is.

    Per-row arrays (``rewards``, ``centred``, ``tier_rank``, ``is_valid``) are in the
    order of the input rows."""

    response_type: str
    feature_names: tuple[str, ...]
    tier_names: tuple[str, ...]
    tier_margins: tuple[float, ...]
    weights: FloatArray
    base_reward: bool
    settings: FitSettings
    seed: int
    rewards: FloatArray
    centred: FloatArray
    tier_rank: IntArray
    is_valid: BoolArray
    train: PairMetrics
    valid: PairMetrics | None
    reward_stats: tuple[TierStats, ...]
    centred_stats: tuple[TierStats, ...]
    sign_warnings: tuple[SignWarning, ...]
    warnings: tuple[str, ...]
    n_prompts: int
    n_valid_prompts: int
    iterations: int
    evaluations: int
    objective: float  # final train objective: mean hinge (+ the L2 term for L-BFGS)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(self.rewards.shape[0])

    def weight_dict(self) -> dict[str, float]:
        return dict(zip(self.feature_names, self.weights.tolist(), strict=True))

    def summary(self) -> dict[str, Any]:
        """The compact metrics kept next to the weights (``weights.json``)."""
        return {
            "rows": self.n_rows,
            "prompts": self.n_prompts,
            "train": self.train.to_json(),
            "valid": self.valid.to_json() if self.valid else None,
        }

    def to_json(self) -> dict[str, Any]:
        """Everything but the per-row arrays, JSON-ready."""
        return {
            "response_type": self.response_type,
            "rows": self.n_rows,
            "prompts": self.n_prompts,
            "valid_prompts": self.n_valid_prompts,
            "tiers": list(self.tier_names),
            "tier_margins": dict(zip(self.tier_names, self.tier_margins, strict=True)),
            "weights": self.weight_dict(),
            "base_reward": self.base_reward,
            "settings": self.settings.to_json(),
            "seed": self.seed,
            "train": self.train.to_json(),
            "valid": self.valid.to_json() if self.valid else None,
            "rewards_by_tier": [s.to_json() for s in self.reward_stats],
            "centred_by_tier": [s.to_json() for s in self.centred_stats],
            "sign_warnings": [w.to_json() for w in self.sign_warnings],
            "warnings": list(self.warnings),
            "optimizer": {
                "name": self.settings.optimizer,
                "iterations": self.iterations,
                "evaluations": self.evaluations,
                "objective": self.objective,
            },
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }


def fit_response_type(
    features: npt.ArrayLike,
    group: npt.ArrayLike,
    tier_rank: npt.ArrayLike,
    *,
    tier_names: Sequence[str],
    feature_names: Sequence[str],
    tier_margins: Sequence[float | None] | npt.ArrayLike | None = None,
    base_reward: npt.ArrayLike | None = None,
    settings: FitSettings | None = None,
    seed: int = 0,
    feature_polarity: Mapping[str, Polarity | None] | None = None,
    response_type: str = "",
    locate: Locate | None = None,
) -> FitResult:
    """Fit ``R(x) = w . x (+ base_reward)`` for one response type.

    ``features`` (n, d) in the layout ``feature_names``; ``group`` (n,) the prompt of
    each row (any sortable ids); ``tier_rank`` (n,) the row's tier, 0 = best, indexing
    ``tier_names``; ``tier_margins`` per tier, None/NaN entries (or None for all) fall
    back to ``settings.margin``; ``base_reward`` (n,) is used when
    ``settings.base_reward`` is set and required then. Prompts are split into train and
    validation by ``settings.valid_fraction`` and ``seed``; the same inputs and seed give
    the same weights bit for bit. ``locate(i)`` names row ``i`` in error messages.
    Raises :class:`~specc.errors.DataError` for bad input.
    """
    settings = settings or FitSettings()
    label = f"response type {response_type!r}" if response_type else "this response type"
    t0 = time.perf_counter()
    if settings.base_reward and base_reward is None:
        raise DataError(
            f"{label} fits with base_reward but the rows carry no base reward",
            hint="add each completion's base reward-model score, or set "
            "base_reward = false in the spec",
        )
    data = check_input(
        features,
        group,
        tier_rank,
        base_reward if settings.base_reward else None,
        tier_names=tier_names,
        feature_names=feature_names,
        locate=locate,
        response_type=response_type,
    )
    if data.features.shape[1] == 0:
        raise DataError(f"{label} has no features to fit")
    margins = resolve_margins(tier_margins, len(tier_names), settings.margin)
    t1 = time.perf_counter()

    layout = split_layout(
        data.group,
        data.tier_rank,
        data.n_groups,
        len(tier_names),
        settings.valid_fraction,
        seed,
    )
    if layout.n_pairs == 0:
        raise DataError(
            f"{label} has no pairs to fit: every prompt has a single completion or "
            "completions of one tier only",
            hint="give each prompt completions of at least two different tiers",
        )
    order = layout.order
    x = data.features[order]
    rank = data.tier_rank[order]
    base = data.base_reward[order] if data.base_reward is not None else None
    n_train, p_train = layout.n_train_rows, layout.n_train_pairs
    t2 = time.perf_counter()

    hinge = HingeObjective(
        x[:n_train],
        base[:n_train] if base is not None else None,
        margins[rank[:n_train]],
        layout.better[:p_train],
        layout.worse[:p_train],
        l2=settings.weight_decay if settings.optimizer == "lbfgs" else 0.0,
    )
    opt = with_threads(settings.threads, partial(minimise, hinge, x.shape[1], settings))
    del hinge  # frees the optimiser's pair buffers before the metrics
    t3 = time.perf_counter()

    sorted_rewards = x @ opt.weights
    if base is not None:
        sorted_rewards += base
    train = pair_metrics(
        sorted_rewards, rank, layout.better[:p_train], layout.worse[:p_train], margins
    )
    valid = (
        pair_metrics(sorted_rewards, rank, layout.better[p_train:], layout.worse[p_train:], margins)
        if layout.n_valid_pairs
        else None
    )
    rewards = np.empty_like(sorted_rewards)
    rewards[order] = sorted_rewards
    centred = centre_on_ideal_codes(rewards, data.group, data.n_groups, data.tier_rank)
    warnings = list(data.warnings)
    if settings.valid_fraction > 0 and valid is None:
        warnings.append(f"{label}: too few prompts with pairs to hold any out for validation")
    signs = sign_warnings(opt.weights, feature_names, feature_polarity or {})
    n_valid_prompts = int(
        (np.bincount(data.group[layout.is_valid_row], minlength=data.n_groups) > 0).sum()
    )
    objective = train.hinge_loss
    if settings.optimizer == "lbfgs":
        objective += 0.5 * settings.weight_decay * float(opt.weights @ opt.weights)
    t4 = time.perf_counter()
    return FitResult(
        response_type=response_type,
        feature_names=tuple(feature_names),
        tier_names=tuple(tier_names),
        tier_margins=tuple(margins.tolist()),
        weights=opt.weights,
        base_reward=settings.base_reward,
        settings=settings,
        seed=seed,
        rewards=rewards,
        centred=centred,
        tier_rank=data.tier_rank,
        is_valid=layout.is_valid_row,
        train=train,
        valid=valid,
        reward_stats=tier_stats(rewards, data.tier_rank, tier_names),
        centred_stats=tier_stats(centred, data.tier_rank, tier_names),
        sign_warnings=signs,
        warnings=tuple(warnings),
        n_prompts=data.n_groups,
        n_valid_prompts=n_valid_prompts,
        iterations=opt.iterations,
        evaluations=opt.evaluations,
        objective=objective,
        timings={
            "check": t1 - t0,
            "pairs": t2 - t1,
            "optimise": t3 - t2,
            "metrics": t4 - t3,
            "total": time.perf_counter() - t0,
        },
    )
