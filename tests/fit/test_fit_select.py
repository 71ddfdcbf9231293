"""The default fit: L-BFGS with the weight decay chosen by validation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from specc.fit import FitResult, FitSettings, fit_response_type
from specc.fit.pairs import SELECT_TRAIN, SELECT_VALID, VALID, SelectPlan, split_layout
from specc.fit.settings import WEIGHT_DECAY_GRID

TIERS = ["ideal", "less_good", "unacceptable"]


def paper_like(
    seed: int, prompts: int = 120, per: int = 17, d: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities that follow the tier, and a base reward that is N(0, 1) noise."""
    rng = np.random.default_rng(seed)
    n = prompts * per
    group = np.repeat(np.arange(prompts), per)
    rank = rng.integers(0, 3, n)
    direction = rng.choice([1.0, -1.0, 0.0], size=d)
    logits = 2.0 * direction * (1 - rank)[:, None] + rng.normal(0, 1.5, (n, d))
    return 1 / (1 + np.exp(-logits)), group, rank, rng.normal(size=n)


def fit(seed: int, **settings: Any) -> FitResult:
    x, group, rank, base = paper_like(seed)
    return fit_response_type(
        x,
        group,
        rank,
        base_reward=base,
        tier_names=TIERS,
        feature_names=[f"prop:p{j}" for j in range(x.shape[1])],
        settings=FitSettings(base_reward=True, valid_fraction=0.2, **settings),
        seed=seed,
    )


def test_the_default_chooses_a_weight_decay_and_records_the_path() -> None:
    result = fit(0)
    sel = result.selection
    assert sel is not None
    assert [c.weight_decay for c in sel.candidates] == sorted(WEIGHT_DECAY_GRID, reverse=True)
    assert result.weight_decay == sel.chosen
    best = max(c.correct for c in sel.candidates)
    chosen = next(c for c in sel.candidates if c.weight_decay == sel.chosen)
    assert chosen.correct == best
    data = result.to_json()
    assert data["settings"]["weight_decay"] is None
    assert data["weight_decay"] == sel.chosen
    assert len(data["weight_decay_selection"]["candidates"]) == len(WEIGHT_DECAY_GRID)
    assert result.summary()["weight_decay_chosen_by"] == "validation"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_with_a_noisy_base_reward_the_choice_ranks_better_than_a_fixed_0_01(seed: int) -> None:
    """The reason for the default: an L2 term of 0.01 lets the base reward reorder
    held-out pairs; the chosen weight decay does at least as well."""
    chosen = fit(seed)
    fixed = fit(seed, weight_decay=0.01)
    assert chosen.valid is not None and fixed.valid is not None
    assert chosen.valid.pair_accuracy >= fixed.valid.pair_accuracy


def test_the_selection_never_touches_validation_prompts() -> None:
    _, group, rank, _ = paper_like(3)
    layout = split_layout(group, rank, 120, 3, 0.2, 3, SelectPlan(500, 0.25))
    order = layout.order
    fit0, fit1 = layout.rows(SELECT_TRAIN)
    score0, score1 = layout.rows(SELECT_VALID)
    valid0, _ = layout.rows(VALID)
    assert fit0 == 0 and fit1 > 0 and score1 > score0 and valid0 >= score1
    assert not layout.is_valid_row[order[:valid0]].any()
    assert layout.is_valid_row[order[valid0:]].all()
    # at most about max_rows rows for the selection, a quarter of its prompts scored
    assert score1 <= 500 + 17
    fitted = set(group[order[fit0:fit1]].tolist())
    scored = set(group[order[score0:score1]].tolist())
    assert not fitted & scored
    assert len(scored) == round(0.25 * (len(fitted) + len(scored)))


def test_subsampled_selection_and_its_determinism() -> None:
    a = fit(4, select_max_rows=400)
    b = fit(4, select_max_rows=400)
    assert a.selection is not None
    assert a.selection.fit_rows + a.selection.score_rows <= 400 + 17
    assert a.weights.tobytes() == b.weights.tobytes()


def test_too_few_prompts_fall_back_with_a_warning() -> None:
    x, group, rank, _ = paper_like(5, prompts=8)
    result = fit_response_type(
        x,
        group,
        rank,
        tier_names=TIERS,
        feature_names=[f"prop:p{j}" for j in range(x.shape[1])],
        settings=FitSettings(valid_fraction=0.0),
    )
    assert result.selection is None and result.weight_decay == 1e-3
    assert any("too few training prompts" in w for w in result.warnings)
    adamw = fit_response_type(
        x,
        group,
        rank,
        tier_names=TIERS,
        feature_names=[f"prop:p{j}" for j in range(x.shape[1])],
        settings=FitSettings(optimizer="adamw", steps=3, valid_fraction=0.0),
    )
    assert adamw.selection is None and adamw.weight_decay == 0.01 and not adamw.warnings
