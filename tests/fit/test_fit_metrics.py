"""Metrics on small examples checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from specc.fit import centre_on_ideal, make_pairs, pair_metrics, sign_warnings, tier_stats

# prompt A: ideal 2.0, ok 2.0, bad 0.5; prompt B: ideal 1.0, bad 1.5, ok 0.2
REWARDS = np.array([2.0, 2.0, 0.5, 1.0, 1.5, 0.2])
GROUP = np.array(["A", "A", "A", "B", "B", "B"])
RANK = np.array([0, 1, 2, 0, 2, 1])
MARGINS = np.array([1.0, 0.5, 0.0])


def test_pair_metrics_by_hand() -> None:
    pairs = make_pairs(GROUP, RANK)
    m = pair_metrics(REWARDS, RANK, pairs.better, pairs.worse, MARGINS)
    # pairs (gap, margin): A (0,1) 0.0/1  (0,2) 1.5/1  (1,2) 1.5/.5
    #                      B (3,4) -.5/1  (3,5) 0.8/1  (5,4) -1.3/.5
    assert m.n_pairs == 6
    assert m.pair_accuracy == pytest.approx(3 / 6)
    assert m.beyond_margin == pytest.approx(2 / 6)
    assert m.hinge_loss == pytest.approx((1.0 + 0 + 0 + 1.5 + 0.2 + 1.8) / 6)
    # ideal pairs: (0,1) tie -> error, (0,2) ok, (3,4) error, (3,5) ok
    assert m.ideal_pairs == 4
    assert m.error_rate == pytest.approx(0.5)


def test_pair_metrics_empty_and_without_ideal_pairs() -> None:
    empty = np.zeros(0, dtype=np.int64)
    m = pair_metrics(REWARDS, RANK, empty, empty, MARGINS)
    assert m.n_pairs == 0 and math.isnan(m.pair_accuracy)
    assert m.to_json()["pair_accuracy"] is None
    # only the (ok, bad) pair of prompt B: no ideal pairs, so no error rate
    m = pair_metrics(REWARDS, RANK, np.array([5]), np.array([4]), MARGINS)
    assert m.ideal_pairs == 0 and math.isnan(m.error_rate)
    assert m.pair_accuracy == 0.0


def test_centre_on_ideal() -> None:
    rewards = np.array([2.0, 2.0, 0.5, 1.0, 1.5, 0.2, 3.0, 5.0, 7.0, 4.0])
    group = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    rank = np.array([0, 1, 2, 0, 2, 1, 1, 2, 0, 0])
    out = centre_on_ideal(rewards, group, rank)
    expected = [0.0, 0.0, -1.5, 0.0, 0.5, -0.8, np.nan, np.nan, 1.5, -1.5]
    np.testing.assert_allclose(out, expected)  # NaN where the prompt has no ideal


def test_tier_stats() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0, np.nan])
    rank = np.array([0, 0, 0, 0, 2, 2])
    stats = tier_stats(values, rank, ["ideal", "ok", "bad"])
    ideal, ok, bad = stats
    assert (ideal.count, ideal.mean, ideal.min, ideal.max) == (4, 2.5, 1.0, 4.0)
    assert ideal.std == pytest.approx(np.sqrt(1.25))
    assert ideal.quantiles[2] == 2.5  # the median
    assert ideal.quantiles[0] == pytest.approx(1.15)  # linear interpolation at 5 %
    assert ok.count == 0 and math.isnan(ok.mean)
    assert ok.to_json()["mean"] is None
    assert (bad.count, bad.mean) == (1, 10.0)  # the NaN is left out
    assert set(ideal.to_json()["quantiles"]) == {"p5", "p25", "p50", "p75", "p95"}


def test_sign_warnings() -> None:
    weights = np.array([-0.5, 0.5, 0.3, -0.2, -1e-9, 0.4])
    names = ["prop:a", "prop:b", "prop:c", "prop:d", "prop:e", "class:ideal"]
    polarity = {
        "a": "good",
        "prop:b": "bad",
        "c": "good",
        "d": None,
        "e": "good",
        "class:ideal": "bad",
    }
    found = sign_warnings(weights, names, polarity)  # type: ignore[arg-type]
    assert [(w.feature, w.expected) for w in found] == [
        ("prop:a", "good"),
        ("prop:b", "bad"),
        ("class:ideal", "bad"),
    ]
    assert "negative" in found[0].message and "positive" in found[1].message
    assert found[0].to_json()["weight"] == -0.5
