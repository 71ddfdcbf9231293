"""fit_response_type end to end: determinism, the split, base reward, margins."""

from __future__ import annotations

import numpy as np
import pytest

from specc.fit import FitSettings, fit_response_type, make_pairs

TIERS = ["ideal", "less_good", "unacceptable"]
NAMES = ["prop:helpful", "prop:rude", "prop:noise"]


def synthetic(
    seed: int, prompts: int = 60, per: int = 5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = prompts * per
    group = np.repeat(np.arange(prompts), per)
    rank = rng.integers(0, 3, n)
    x = np.stack(
        [
            (rank == 0) * 0.6 + rng.uniform(0, 0.4, n),  # helpful: marks the best tier
            (rank == 2) * 0.6 + rng.uniform(0, 0.4, n),  # rude: marks the worst tier
            rng.uniform(0, 1, n),
        ],
        axis=1,
    )
    return x, group, rank


@pytest.mark.parametrize("optimizer", ["adamw", "lbfgs"])
def test_same_seed_same_weights_bit_for_bit(optimizer: str) -> None:
    x, group, rank = synthetic(0)
    settings = FitSettings(optimizer=optimizer, steps=100, weight_decay=0.01)  # type: ignore[arg-type]
    runs = [
        fit_response_type(
            x, group, rank, tier_names=TIERS, feature_names=NAMES, settings=settings, seed=3
        )
        for _ in range(2)
    ]
    assert runs[0].weights.tobytes() == runs[1].weights.tobytes()
    assert np.array_equal(runs[0].is_valid, runs[1].is_valid)
    other = fit_response_type(
        x, group, rank, tier_names=TIERS, feature_names=NAMES, settings=settings, seed=4
    )
    assert not np.array_equal(other.is_valid, runs[0].is_valid)


def test_learns_the_ordering_and_signs() -> None:
    x, group, rank = synthetic(1)
    result = fit_response_type(
        x,
        group,
        rank,
        tier_names=TIERS,
        feature_names=NAMES,
        settings=FitSettings(optimizer="lbfgs", weight_decay=0.001),
        seed=0,
        feature_polarity={"helpful": "good", "prop:rude": "bad"},
    )
    helpful, rude, _ = result.weights
    assert helpful > 0 > rude
    assert result.train.pair_accuracy > 0.95
    assert result.valid is not None and result.valid.pair_accuracy > 0.95
    assert result.sign_warnings == ()
    np.testing.assert_allclose(result.rewards, x @ result.weights, atol=1e-5)
    # the polarity flipped: both weights now contradict it
    flipped = fit_response_type(
        x,
        group,
        rank,
        tier_names=TIERS,
        feature_names=NAMES,
        settings=FitSettings(optimizer="lbfgs", weight_decay=0.001),
        seed=0,
        feature_polarity={"helpful": "bad", "prop:rude": "good", "noise": None},
    )
    assert [w.feature for w in flipped.sign_warnings] == ["prop:helpful", "prop:rude"]


def test_validation_holds_out_whole_prompts() -> None:
    x, group, rank = synthetic(2)
    result = fit_response_type(
        x,
        group,
        rank,
        tier_names=TIERS,
        feature_names=NAMES,
        settings=FitSettings(optimizer="lbfgs", valid_fraction=0.3),
        seed=5,
    )
    for g in np.unique(group):
        assert len(set(result.is_valid[group == g].tolist())) == 1
    valid_prompts = np.unique(group[result.is_valid])
    assert result.n_valid_prompts == valid_prompts.shape[0] == 18
    pairs = make_pairs(group, rank)
    in_valid = result.is_valid[pairs.better]
    assert result.valid is not None
    assert result.valid.n_pairs == int(in_valid.sum())
    assert result.train.n_pairs == int((~in_valid).sum())


def test_base_reward_is_added_with_coefficient_one() -> None:
    x, group, rank = synthetic(3)
    base = np.random.default_rng(0).normal(size=rank.shape[0])
    result = fit_response_type(
        x,
        group,
        rank,
        tier_names=TIERS,
        feature_names=NAMES,
        base_reward=base,
        settings=FitSettings(optimizer="lbfgs", base_reward=True),
    )
    # float32 features while optimising: the rewards are float32 sums plus the base
    np.testing.assert_allclose(result.rewards - x @ result.weights, base, atol=1e-5)
    # without the setting, base_reward is not used
    plain = fit_response_type(
        x,
        group,
        rank,
        tier_names=TIERS,
        feature_names=NAMES,
        base_reward=base,
        settings=FitSettings(optimizer="lbfgs"),
    )
    np.testing.assert_allclose(plain.rewards, x @ plain.weights, atol=1e-5)
    assert result.base_reward and not plain.base_reward


def test_tier_margins_fall_back_to_the_default() -> None:
    x, group, rank = synthetic(4)
    result = fit_response_type(
        x,
        group,
        rank,
        tier_names=TIERS,
        feature_names=NAMES,
        tier_margins=[2.0, None, float("nan")],
        settings=FitSettings(optimizer="lbfgs", margin=0.5),
    )
    assert result.tier_margins == (2.0, 0.5, 0.5)
    # a larger ideal margin pushes ideal rewards further from the rest
    small = fit_response_type(
        x,
        group,
        rank,
        tier_names=TIERS,
        feature_names=NAMES,
        settings=FitSettings(optimizer="lbfgs", margin=0.5),
    )
    assert np.abs(result.weights).sum() > np.abs(small.weights).sum()


def test_result_json_has_no_arrays_and_counts_pairs() -> None:
    x, group, rank = synthetic(5)
    result = fit_response_type(
        x,
        group,
        rank,
        tier_names=TIERS,
        feature_names=NAMES,
        settings=FitSettings(optimizer="adamw", steps=20),
        response_type="Comply",
    )
    data = result.to_json()
    assert data["response_type"] == "Comply"
    assert data["train"]["pairs"] + data["valid"]["pairs"] == len(make_pairs(group, rank))
    assert list(data["weights"]) == NAMES
    assert data["optimizer"] == {
        "name": "adamw",
        "iterations": 20,
        "evaluations": 21,
        "objective": result.train.hinge_loss,
    }
    assert {"check", "pairs", "select", "optimise", "metrics", "total"} <= set(data["timings_s"])
    assert data["weight_decay"] == 0.01 and data["weight_decay_selection"] is None


def test_settings_from_the_artifact() -> None:
    from specc.artifact import RewardEntry

    entry = RewardEntry(
        margin=0.5, weight_decay=0.01, steps=30, lr=0.05, optimizer="lbfgs", base_reward=False
    )
    settings = FitSettings.from_reward(entry, valid_fraction=0.2)
    assert (settings.optimizer, settings.steps, settings.lr, settings.margin) == (
        "lbfgs",
        30,
        0.05,
        0.5,
    )
    assert settings.valid_fraction == 0.2 and settings.weight_decay == 0.01
    x, group, rank = synthetic(6)
    result = fit_response_type(
        x, group, rank, tier_names=TIERS, feature_names=NAMES, settings=settings
    )
    assert result.iterations <= 30
    # the reported objective is the L-BFGS objective at the final weights
    l2 = 0.5 * 0.01 * float(result.weights @ result.weights)
    assert result.objective == pytest.approx(result.train.hinge_loss + l2)
