"""Reward.score_with_costs: rewards and constraint costs together, for trainers."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fitted import build_fitted

import specc
from specc.errors import DataError

SPEC = """\
policy "costs" version "0.1.0"

proposition a { question = "A?" }
proposition b { question = "B?" }
proposition c { question = "C?" }
proposition d { question = "D?" }

derived ab = a and not b

response_type first "First" {
  ideal        when ab
  less_good    when a and b
  unacceptable otherwise
}

response_type second {
  ideal        when not c
  unacceptable otherwise
}

constraint everywhere {
  cost = ab or (c and not a) or (a and d) or (d and not d)
  limit = 2%
}

constraint second_only {
  cost = c or (b and d and not c)
  limit = 0.05
  applies_to = [second]
}
"""

#: The cost expressions again, as Python over one truth assignment (not via specc).
COSTS: dict[str, Callable[[dict[str, bool]], bool]] = {
    "everywhere": lambda v: (
        (v["a"] and not v["b"])
        or (v["c"] and not v["a"])
        or (v["a"] and v["d"])
        or (v["d"] and not v["d"])
    ),
    "second_only": lambda v: v["c"] or (v["b"] and v["d"] and not v["c"]),
}
PROPS = ("a", "b", "c", "d")


def _rows(n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for i in range(n):
        truth = {p: rng.random() < 0.5 for p in PROPS}
        if i % 2 == 0:
            rt = "First"
            label = (
                "ideal"
                if truth["a"] and not truth["b"]
                else "less_good"
                if truth["a"]
                else "unacceptable"
            )
        else:
            rt = "second"
            label = "unacceptable" if truth["c"] else "ideal"
        rows.append(
            {
                "id": f"r{i}",
                "prompt": f"prompt {i // 4}",
                "completion": f"completion {i}",
                "response_type": rt,
                "completion_label": label,
                "propositions": {
                    p: round(rng.uniform(0.7, 0.99) if t else rng.uniform(0.01, 0.3), 4)
                    for p, t in truth.items()
                },
            }
        )
    return rows


def _brute_force(expr: Callable[[dict[str, bool]], bool], probs: dict[str, float]) -> float:
    total = 0.0
    for values in itertools.product((False, True), repeat=len(PROPS)):
        v = dict(zip(PROPS, values, strict=True))
        weight = 1.0
        for p in PROPS:
            weight *= probs[p] if v[p] else 1.0 - probs[p]
        total += weight * expr(v)
    return total


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fitted(tmp_path_factory.mktemp("costs"), SPEC, _rows(80, seed=0))


def test_costs_are_exact_expected_values_and_zero_outside_applies_to(artifact: Path) -> None:
    reward = specc.load(artifact, grader="labels")
    rows = _rows(40, seed=5)
    batch = reward.score_with_costs(rows)
    assert batch.constraints == ("everywhere", "second_only")
    assert batch.limits.tolist() == [0.02, 0.05]
    assert batch.costs.shape == (40, 2) and batch.applies.shape == (40, 2)
    assert np.array_equal(batch.rewards, reward(rows))
    for i, row in enumerate(rows):
        probs = row["propositions"]
        assert isinstance(probs, dict)
        assert batch.costs[i, 0] == pytest.approx(
            _brute_force(COSTS["everywhere"], probs), abs=1e-12
        )
        assert batch.applies[i, 0]
        if row["response_type"] == "second":
            expected = _brute_force(COSTS["second_only"], probs)
            assert batch.applies[i, 1]
            assert batch.costs[i, 1] == pytest.approx(expected, abs=1e-12)
        else:
            # Outside applies_to: zero, although c is likely and would make it true.
            assert not batch.applies[i, 1]
            assert batch.costs[i, 1] == 0.0
    assert np.array_equal(batch.cost("second_only"), batch.costs[:, 1])
    assert batch.limit("everywhere") == 0.02
    assert [r.id for r in batch.rows] == [r["id"] for r in rows]


def test_costs_on_zero_one_labels_follow_the_boolean_rules(artifact: Path) -> None:
    reward = specc.load(artifact, grader="labels")
    rows = []
    for values in itertools.product((False, True), repeat=len(PROPS)):
        v = dict(zip(PROPS, values, strict=True))
        rows.append(
            {"prompt": "p", "completion": "c", "response_type": "second", "propositions": v}
        )
    batch = reward.score_with_costs(rows)
    for i, row in enumerate(rows):
        v = row["propositions"]
        assert isinstance(v, dict)
        assert batch.costs[i].tolist() == [
            float(COSTS["everywhere"](v)),
            float(COSTS["second_only"](v)),
        ]


def test_one_row_empty_batch_and_unknown_names(artifact: Path) -> None:
    reward = specc.load(artifact, grader="labels")
    one = reward.score_with_costs(_rows(1, seed=1)[0])
    assert one.rewards.shape == (1,) and one.costs.shape == (1, 2)
    empty = reward.score_features_with_costs([])
    assert empty.rewards.shape == (0,) and empty.costs.shape == (0, 2)
    with pytest.raises(KeyError, match="did you mean 'everywhere'"):
        one.cost("everywher")
    assert [c.name for c in reward.constraints] == ["everywhere", "second_only"]
    assert reward.constraints[1].applies_to == ("second",)


def test_costs_follow_applies_to_and_a_missing_cost_is_refused(artifact: Path) -> None:
    reward = specc.load(artifact, grader="labels")
    feats = reward.features(_rows(2, seed=3))
    assert feats[0].response_type == "first"
    feats[0].costs["second_only"] = 0.9  # a stray value outside applies_to is not used
    costs, applies = reward.costs(feats)
    assert costs[0, 1] == 0.0 and not applies[0, 1]
    feats[1].costs.pop("second_only")
    with pytest.raises(DataError, match="no cost for constraint 'second_only'"):
        reward.costs(feats)
