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
from typing import Any

import numpy as np
import numpy.typing as npt

from specc.errors import DataError
from specc.fit.data import Floats, Locate, check_input, resolve_margins
from specc.fit.metrics import (
    PairMetrics,
    Polarity,
    SignWarning,
    TierStats,
    centre_on_ideal_codes,
    expected_polarity,
    pair_metrics,
    sign_warnings,
    tier_stats,
)
from specc.fit.objective import FitOverflow, HingeObjective, blame_feature, matvec
from specc.fit.optimize import minimise
from specc.fit.pairs import (
    SELECT_TRAIN,
    SELECT_VALID,
    Index,
    SelectPlan,
    SplitLayout,
    split_layout,
)
from specc.fit.select import PairScorer, Selection, select_weight_decay
from specc.fit.settings import SELECT_MIN_PROMPTS, FitSettings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Rows gathered or scored together (bounds the temporaries).
CHUNK_ROWS = 1 << 16


@dataclass(frozen=True)
class FitResult:
    """A fitted reward ``R(x) = weights . x (+ base_reward)`` and how good it is.

    Per-row arrays (``rewards``, ``centred``, ``tier_rank``, ``is_valid``) are in the
    order of the input rows. ``weight_decay`` is the one used (chosen by
    ``selection`` when the settings leave it to validation)."""

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
    weight_decay: float = 0.0
    selection: Selection | None = None
    #: per feature, the sign the spec's rules expect of its weight (None: no opinion)
    polarity: tuple[Polarity | None, ...] = ()
    #: the base reward alone, scored like the fitted reward (when the fit adds it)
    base_train: PairMetrics | None = None
    base_valid: PairMetrics | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(self.rewards.shape[0])

    def weight_dict(self) -> dict[str, float]:
        return dict(zip(self.feature_names, self.weights.tolist(), strict=True))

    def weights_chart(self) -> list[dict[str, Any]]:
        """Each weight with the sign the rules expect of it and whether it has it."""
        out = []
        for i, (name, weight) in enumerate(self.weight_dict().items()):
            expected = self.polarity[i] if i < len(self.polarity) else None
            agrees = None if expected is None else (weight >= 0) == (expected == "good")
            out.append({"feature": name, "weight": weight, "expected": expected, "agrees": agrees})
        return out

    def summary(self) -> dict[str, Any]:
        """The compact metrics kept next to the weights (``weights.json``)."""
        return {
            "rows": self.n_rows,
            "prompts": self.n_prompts,
            "weight_decay": self.weight_decay,
            "weight_decay_chosen_by": "validation" if self.selection else "settings",
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
            "weight_decay": self.weight_decay,
            "weight_decay_selection": self.selection.to_json() if self.selection else None,
            "seed": self.seed,
            "train": self.train.to_json(self.tier_names),
            "valid": self.valid.to_json(self.tier_names) if self.valid else None,
            "base_reward_alone": (
                {
                    "train": self.base_train.to_json(self.tier_names),
                    "valid": self.base_valid.to_json(self.tier_names) if self.base_valid else None,
                }
                if self.base_train is not None
                else None
            ),
            "weights_chart": self.weights_chart(),
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


def gather_rows(x: Floats, rows: Index, dtype: type[np.floating[Any]]) -> Floats:
    """``x[rows]`` as a contiguous ``dtype`` array, converted chunk by chunk (no
    full-size temporary of another dtype)."""
    out: Floats = np.empty((rows.shape[0], x.shape[1]), dtype=dtype)
    for r0 in range(0, rows.shape[0], CHUNK_ROWS):
        part = rows[r0 : r0 + CHUNK_ROWS]
        if x.dtype == dtype:  # np.take into the output: no temporary, twice as fast
            np.take(x, part, axis=0, out=out[r0 : r0 + CHUNK_ROWS])
        else:
            out[r0 : r0 + CHUNK_ROWS] = x[part]
    return out


def rewards_of(x: Floats, weights: FloatArray, base: FloatArray | None) -> FloatArray:
    """``x @ w (+ base)`` in float64, computed chunk by chunk in the dtype of ``x``."""
    out = np.empty(x.shape[0], dtype=np.float64)
    for r0 in range(0, x.shape[0], CHUNK_ROWS):
        out[r0 : r0 + CHUNK_ROWS] = matvec(x[r0 : r0 + CHUNK_ROWS], weights)
    if base is not None:
        out += base
    return out


def _selection_usable(layout: SplitLayout) -> bool:
    """Whether the selection blocks hold pairs to fit and to score."""
    fit0, fit1 = layout.pairs(SELECT_TRAIN)
    score0, score1 = layout.pairs(SELECT_VALID)
    return fit1 > fit0 and score1 > score0


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

    ``features`` (n, d) in the layout ``feature_names`` (float32 or float64 arrays are
    not copied); ``group`` (n,) the prompt of each row (any sortable ids);
    ``tier_rank`` (n,) the row's tier, 0 = best, indexing ``tier_names``;
    ``tier_margins`` per tier, None/NaN entries (or None for all) fall back to
    ``settings.margin``; ``base_reward`` (n,) is used when ``settings.base_reward`` is
    set and required then. Prompts are split into train and validation by
    ``settings.valid_fraction`` and ``seed``; the same inputs and seed give the same
    weights bit for bit. ``locate(i)`` names row ``i`` in error messages. Raises
    :class:`~specc.errors.DataError` for bad input, and for a fit that overflows
    (naming the feature).
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

    plan = (
        SelectPlan(settings.select_max_rows, settings.select_fraction)
        if settings.selects_weight_decay
        else None
    )
    layout = split_layout(
        data.group,
        data.tier_rank,
        data.n_groups,
        len(tier_names),
        settings.valid_fraction,
        seed,
        plan,
    )
    if layout.n_pairs == 0:
        raise DataError(
            f"{label} has no pairs to fit: every prompt has a single completion or "
            "completions of one tier only",
            hint="give each prompt completions of at least two different tiers",
        )
    dtype = np.float32 if settings.precision == "float32" else np.float64
    n_train, p_train = layout.n_train_rows, layout.n_train_pairs
    train_rows = layout.order[:n_train]
    xs = gather_rows(data.features, train_rows, dtype)
    base: Floats | None = (
        data.base_reward[train_rows].astype(dtype) if data.base_reward is not None else None
    )
    row_margin = margins[data.tier_rank[train_rows]]
    better, worse = layout.better[:p_train], layout.worse[:p_train]
    t2 = time.perf_counter()

    selection = None
    warnings = list(data.warnings)
    weight_decay = settings.fixed_weight_decay()
    if plan is not None:
        if layout.train_prompts_with_pairs >= SELECT_MIN_PROMPTS and _selection_usable(layout):
            fit_end = layout.rows(SELECT_TRAIN)[1]
            fit_pairs = layout.pairs(SELECT_TRAIN)[1]
            r0, r1 = layout.rows(SELECT_VALID)
            q0, q1 = layout.pairs(SELECT_VALID)
            selection = select_weight_decay(
                HingeObjective(
                    xs[:fit_end],
                    base[:fit_end] if base is not None else None,
                    row_margin[:fit_end],
                    better[:fit_pairs],
                    worse[:fit_pairs],
                    feature_names=feature_names,
                ),
                PairScorer(
                    xs[r0:r1],
                    base[r0:r1] if base is not None else None,
                    row_margin[r0:r1],
                    better[q0:q1] - r0,
                    worse[q0:q1] - r0,
                ),
                settings,
            )
            weight_decay = selection.chosen
        else:
            warnings.append(
                f"{label}: too few training prompts with pairs to choose the weight decay "
                f"by validation; using {weight_decay:g}"
            )
    t3 = time.perf_counter()

    hinge = HingeObjective(
        xs,
        base,
        row_margin,
        better,
        worse,
        l2=weight_decay if settings.optimizer == "lbfgs" else 0.0,
        feature_names=feature_names,
    )
    opt = minimise(
        hinge,
        xs.shape[1],
        settings.replace(weight_decay=weight_decay),
        x0=selection.weights if selection is not None else None,
    )
    del hinge, xs, base, row_margin  # frees the optimiser's buffers before the metrics
    t4 = time.perf_counter()

    rewards = rewards_of(data.features, opt.weights, data.base_reward)
    if not (np.isfinite(opt.weights).all() and np.isfinite(rewards).all()):
        # The training rows, gathered again only now that the blame needs them.
        j = blame_feature(opt.weights, gather_rows(data.features, train_rows, dtype))
        raise FitOverflow(
            f"{label}: the fit gave a reward that is not a finite number, through "
            f"feature {feature_names[j]!r} (weight {opt.weights[j]:.3g}); nothing was saved",
            hint="check that feature's values, or set weight_decay above 0",
        )
    rank = data.tier_rank[layout.order]

    def metrics(values: FloatArray) -> tuple[PairMetrics, PairMetrics | None]:
        ordered = values[layout.order]
        train = pair_metrics(ordered, rank, better, worse, margins)
        if not layout.n_valid_pairs:
            return train, None
        valid_pairs = (layout.better[p_train:], layout.worse[p_train:])
        return train, pair_metrics(ordered, rank, *valid_pairs, margins)

    train, valid = metrics(rewards)
    base_train = base_valid = None
    if data.base_reward is not None:
        base_train, base_valid = metrics(data.base_reward)
    centred = centre_on_ideal_codes(rewards, data.group, data.n_groups, data.tier_rank)
    if settings.valid_fraction > 0 and valid is None:
        warnings.append(f"{label}: too few prompts with pairs to hold any out for validation")
    signs = sign_warnings(opt.weights, feature_names, feature_polarity or {})
    n_valid_prompts = int(
        (np.bincount(data.group[layout.is_valid_row], minlength=data.n_groups) > 0).sum()
    )
    objective = train.hinge_loss
    if settings.optimizer == "lbfgs":
        objective += 0.5 * weight_decay * float(opt.weights @ opt.weights)
    t5 = time.perf_counter()
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
        weight_decay=weight_decay,
        selection=selection,
        polarity=tuple(expected_polarity(feature_polarity or {}, n) for n in feature_names),
        base_train=base_train,
        base_valid=base_valid,
        timings={
            "check": t1 - t0,
            "pairs": t2 - t1,
            "select": t3 - t2,
            "optimise": t4 - t3,
            "metrics": t5 - t4,
            "total": time.perf_counter() - t0,
        },
    )
