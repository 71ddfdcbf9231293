"""Bad input is a DataError (or UsageError for settings) with a clear message."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from specc.errors import DataError, UsageError
from specc.fit import FitResult, FitSettings, arrays_from_rows, encode_tiers, fit_response_type

TIERS = ["ideal", "less_good", "unacceptable"]
NAMES = ["prop:a", "prop:b"]
FAST = FitSettings(optimizer="adamw", steps=5, weight_decay=0.0, valid_fraction=0.0)


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]])
    return x, np.array([1, 1, 2, 2]), np.array([0, 2, 0, 1])


def fit(x: np.ndarray, group: np.ndarray, rank: np.ndarray, **kw: Any) -> FitResult:
    kw.setdefault("settings", FAST)
    return fit_response_type(x, group, rank, tier_names=TIERS, feature_names=NAMES, **kw)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_feature_names_row_and_feature(bad: float) -> None:
    x, group, rank = data()
    x[2, 1] = bad
    with pytest.raises(DataError) as err:
        fit(x, group, rank, locate=lambda i: f"features.jsonl:{i + 10}")
    assert err.value.where == "features.jsonl:12"
    assert "'prop:b'" in str(err.value) and "not a finite number" in str(err.value)
    with pytest.raises(DataError, match="row 2"):
        fit(x, group, rank)


def test_non_finite_base_reward() -> None:
    x, group, rank = data()
    with pytest.raises(DataError, match=r"row 3: base_reward is nan"):
        fit(
            x,
            group,
            rank,
            base_reward=np.array([0, 0, 0, np.nan]),
            settings=FAST.replace(base_reward=True),
        )
    with pytest.raises(DataError, match="carry no base reward"):
        fit(x, group, rank, settings=FAST.replace(base_reward=True))


def test_empty_input() -> None:
    with pytest.raises(DataError, match="no completions for response type 'Comply'"):
        fit(np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=int), response_type="Comply")
    with pytest.raises(DataError, match="no completions"):
        arrays_from_rows([], tier_names=TIERS, feature_names=NAMES)


def test_unknown_tier_labels_and_ranks() -> None:
    with pytest.raises(DataError) as err:
        encode_tiers(["ideal", "unaceptable"], TIERS, locate=lambda i: f"f.jsonl:{i + 1}")
    assert err.value.where == "f.jsonl:2"
    assert "unknown tier label 'unaceptable'" in str(err.value)
    assert err.value.hint == "did you mean 'unacceptable'?"
    x, group, _ = data()
    with pytest.raises(DataError, match="unknown tier rank 3"):
        fit(x, group, np.array([0, 3, 0, 1]))
    with pytest.raises(DataError, match="must be integers"):
        fit(x, group, np.array([0.0, 1.0, 0.0, 1.0]))


def test_no_pairs_is_an_error_and_few_pairs_warn() -> None:
    x, _, _ = data()
    with pytest.raises(DataError, match="no pairs to fit") as err:
        fit(x, np.array([1, 2, 3, 4]), np.array([0, 1, 2, 0]), response_type="Comply")
    assert "response type 'Comply'" in str(err.value)
    with pytest.raises(DataError, match="no pairs to fit"):
        fit(x, np.array([1, 1, 2, 2]), np.array([0, 0, 1, 1]))
    # three single-completion prompts, one prompt of one tier only, no 'less_good' rows
    x5 = np.vstack([x, [[0.9, 0.1]], [[0.2, 0.2]], [[0.3, 0.3]]])
    result = fit(
        x5,
        np.array([1, 1, 2, 3, 4, 4, 5]),
        np.array([0, 2, 0, 2, 0, 0, 0]),
    )
    assert result.warnings == (
        "this response type: tier 'less_good' has no completions",
        "this response type: no pairs from 3 prompts with a single completion",
        "this response type: no pairs from 1 prompt whose completions are all of one tier",
    )
    assert result.train.n_pairs == 1


def test_shape_mismatches() -> None:
    x, group, rank = data()
    with pytest.raises(DataError, match="2 feature names but the arrays have 3 columns"):
        fit_response_type(np.ones((4, 3)), group, rank, tier_names=TIERS, feature_names=NAMES)
    with pytest.raises(DataError, match="one entry per row"):
        fit(x, group[:3], rank)
    with pytest.raises(DataError, match="2-D"):
        fit(x[0], group, rank)
    with pytest.raises(DataError, match="expected 3 tier margins"):
        fit(x, group, rank, tier_margins=[1.0])


def test_rows_are_checked_with_their_location() -> None:
    rows = [
        {"prompt_id": "p1", "completion_label": "ideal", "features": [0.1, 0.2]},
        {"prompt_id": "p1", "completion_label": "unacceptable", "features": [0.3]},
    ]
    where = lambda i: f"features.jsonl:{i + 1}"  # noqa: E731
    with pytest.raises(DataError, match="expected 2 features") as err:
        arrays_from_rows(rows, tier_names=TIERS, feature_names=NAMES, locate=where)
    assert err.value.where == "features.jsonl:2"
    rows[1]["features"] = [0.3, "x"]
    with pytest.raises(DataError, match="features must be numbers"):
        arrays_from_rows(rows, tier_names=TIERS, feature_names=NAMES, locate=where)
    rows[1]["features"] = [0.3, 0.4]
    with pytest.raises(DataError, match="numeric 'base_reward'"):
        arrays_from_rows(rows, tier_names=TIERS, feature_names=NAMES, base_reward=True)
    rows[1]["completion_label"] = "ideall"
    with pytest.raises(DataError, match="unknown tier label 'ideall'"):
        arrays_from_rows(rows, tier_names=TIERS, feature_names=NAMES)
    del rows[1]["prompt_id"]
    with pytest.raises(DataError, match="no 'prompt_id' field"):
        arrays_from_rows(rows, tier_names=TIERS, feature_names=NAMES)


def test_rows_to_arrays() -> None:
    rows = [
        {"prompt_id": "q", "completion_label": "ideal", "features": [1, 2], "base_reward": 0.5},
        {"prompt_id": "p", "completion_label": "less_good", "features": [3, 4], "base_reward": -1},
        {
            "prompt_id": "q",
            "completion_label": "unacceptable",
            "features": [5, 6],
            "base_reward": 2.0,
        },
    ]
    arrays = arrays_from_rows(rows, tier_names=TIERS, feature_names=NAMES, base_reward=True)
    assert arrays.features.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert arrays.group.tolist() == [0, 1, 0] and arrays.prompt_ids == ("q", "p")
    assert arrays.tier_rank.tolist() == [0, 1, 2]
    assert arrays.base_reward is not None and arrays.base_reward.tolist() == [0.5, -1.0, 2.0]


def test_invalid_settings() -> None:
    with pytest.raises(UsageError, match="valid_fraction must be in"):
        FitSettings(valid_fraction=1.0)
    with pytest.raises(UsageError, match="optimizer must be"):
        FitSettings(optimizer="sgd")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="steps must be at least 1"):
        FitSettings(steps=0)
