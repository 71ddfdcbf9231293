"""specc.safe: Safe RLHF's Lagrange multiplier, alone and on a small constrained problem."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from golden import ROOT

from specc.errors import DataError, UsageError
from specc.safe import MAX_LOG_LAMBDA, LagrangeController, LagrangeSet


def test_one_step_is_sgd_on_the_safe_rlhf_lambda_loss() -> None:
    ctl = LagrangeController(0.1, lambda_init=2.0, lr=0.3)
    costs = [0.0, 0.5, 1.0, 0.25]
    lam = ctl.update(costs)
    # loss = -(mean - limit) * exp(log λ); d loss / d log λ = -(mean - limit) * λ
    grad = -(np.mean(costs) - 0.1) * 2.0
    assert ctl.log_lambda == pytest.approx(math.log(2.0) - 0.3 * grad)
    assert lam == pytest.approx(math.exp(ctl.log_lambda))
    assert lam > 2.0  # violated: λ grows
    assert ctl.lam == lam and ctl.updates == 1


def test_slack_constraint_lowers_lambda_and_lambda_stays_positive() -> None:
    ctl = LagrangeController(0.5, lr=1.0)
    lams = [ctl.update([0.0] * 8) for _ in range(50)]
    assert all(b < a for a, b in itertools.pairwise(lams))
    assert 0.0 < lams[-1] < 0.1


def test_the_window_holds_the_last_costs_only() -> None:
    ctl = LagrangeController(0.0, window=3, lr=1e-9)
    ctl.update([1.0, 1.0, 1.0])
    assert ctl.mean_cost == 1.0
    ctl.update([0.0, 0.0])
    assert ctl.mean_cost == pytest.approx(1 / 3)
    before = ctl.log_lambda
    ctl.update([0.0])
    assert ctl.mean_cost == 0.0
    assert ctl.log_lambda == before  # mean - limit = 0: no move


def test_delay_fills_the_window_without_stepping() -> None:
    ctl = LagrangeController(0.0, delay=2, lr=0.5)
    assert ctl.update([1.0]) == 1.0
    assert ctl.update([1.0]) == 1.0
    assert ctl.mean_cost == 1.0
    assert ctl.update([1.0]) == pytest.approx(math.exp(0.5))


def test_empty_batch_changes_nothing() -> None:
    ctl = LagrangeController(0.0)
    assert ctl.update([]) == 1.0
    assert ctl.updates == 0 and ctl.mean_cost is None


def test_lambda_max_clamps_log_lambda() -> None:
    ctl = LagrangeController(0.0, lambda_init=1.0, lr=10.0, lambda_max=3.0)
    for _ in range(5):
        ctl.update([1.0])
    assert ctl.lam == pytest.approx(3.0)


def test_runaway_lambda_is_capped_not_nan() -> None:
    ctl = LagrangeController(0.0, lr=100.0)
    for _ in range(10):
        ctl.update([1.0])
    assert ctl.log_lambda == MAX_LOG_LAMBDA
    shaped = ctl.shape([5.0, 5.0], [0.0, 1.0])
    assert np.isfinite(shaped).all()
    assert shaped[1] == pytest.approx(-1.0, abs=1e-9)  # r/(1+λ) vanishes, -λc/(1+λ) -> -c


def test_shape_is_r_minus_lambda_c_over_one_plus_lambda() -> None:
    ctl = LagrangeController(0.1, lambda_init=0.25)
    r = np.array([1.0, -2.0, 0.5])
    c = np.array([0.0, 1.0, 0.3])
    assert np.allclose(ctl.shape(r, c), (r - 0.25 * c) / 1.25)
    assert ctl.shape(r.tolist(), c.tolist()).dtype == np.float64


def test_set_combines_sum_lambda_c_over_one_plus_sum_lambda() -> None:
    lag = LagrangeSet(
        {
            "a": LagrangeController(0.1, lambda_init=0.5),
            "b": LagrangeController(0.2, lambda_init=2.0),
        }
    )
    r = np.array([1.0, 0.0, 3.0])
    c = np.array([[0.2, 0.1], [1.0, 0.0], [0.0, 1.0]])
    expected = (r - (0.5 * c[:, 0] + 2.0 * c[:, 1])) / (1 + 0.5 + 2.0)
    assert np.allclose(lag.shape(r, c), expected)
    one = LagrangeSet({"a": LagrangeController(0.1, lambda_init=0.5)})
    assert np.allclose(one.shape(r, c[:, 0]), one.controllers["a"].shape(r, c[:, 0]))


def test_set_update_uses_only_the_completions_each_constraint_covers() -> None:
    lag = LagrangeSet.for_limits({"a": 0.5, "b": 0.5}, lr=1.0)
    costs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    applies = np.array([[True, False], [True, False], [False, False]])
    lams = lag.update(costs, applies)
    assert lag.controllers["a"].mean_cost == 1.0  # the uncovered zero is not averaged in
    assert lams["a"] == pytest.approx(math.exp(0.5))
    assert lag.controllers["b"].updates == 0 and lams["b"] == 1.0  # covered nothing: no step
    assert set(lag.lams) == {"a", "b"} and lag.names == ("a", "b")


def test_state_dict_resumes_exactly_through_json() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.random(16) for _ in range(12)]
    whole = LagrangeController(0.3, lr=0.2, window=20, delay=2)
    first = LagrangeController(0.3, lr=0.2, window=20, delay=2)
    for b in batches:
        whole.update(b)
    for b in batches[:5]:
        first.update(b)
    saved = json.loads(json.dumps(first.state_dict()))
    resumed = LagrangeController(0.3, lr=0.2, window=20, delay=2)
    resumed.load_state_dict(saved)
    for b in batches[5:]:
        resumed.update(b)
    assert resumed.lam == whole.lam and resumed.mean_cost == whole.mean_cost
    assert resumed.updates == whole.updates

    lag = LagrangeSet.for_limits({"a": 0.1, "b": 0.2})
    lag.update(np.array([[1.0, 0.0]]))
    again = LagrangeSet.for_limits({"a": 0.1, "b": 0.2})
    again.load_state_dict(json.loads(json.dumps(lag.state_dict())))
    assert again.lams == lag.lams


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"format": "other"}, "not a Lagrange state"),
        ([], "not a Lagrange state"),
        ({"format": "specc.lagrange/1", "limit": 0.3, "updates": 0}, "without 'log_lambda'"),
        (
            {"format": "specc.lagrange/1", "limit": 0.3, "log_lambda": "x", "updates": 0},
            "log_lambda must be a number",
        ),
        (
            {"format": "specc.lagrange/1", "limit": 0.3, "log_lambda": 0.0, "updates": -1},
            "updates must be an integer",
        ),
        (
            {
                "format": "specc.lagrange/1",
                "limit": 0.3,
                "log_lambda": 0.0,
                "updates": 1,
                "costs": [float("nan")],
            },
            "must be finite",
        ),
        (
            {"format": "specc.lagrange/1", "limit": 0.5, "log_lambda": 0.0, "updates": 0},
            "limit 0.5",
        ),
    ],
)
def test_bad_states_are_refused(state: Any, message: str) -> None:
    with pytest.raises(DataError, match=message):
        LagrangeController(0.3).load_state_dict(state)


def test_set_state_must_name_every_constraint() -> None:
    lag = LagrangeSet.for_limits({"a": 0.1, "b": 0.2})
    with pytest.raises(DataError, match="no multiplier for 'b'"):
        lag.load_state_dict({"a": LagrangeController(0.1).state_dict()})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": float("nan")}, "limit must be finite"),
        ({"limit": float("inf")}, "limit must be finite"),
        ({"limit": "0.1"}, "limit must be a number"),
        ({"limit": True}, "limit must be a number"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"lr": -1.0}, "lr must be > 0"),
        ({"window": 0}, "window must be an integer >= 1"),
        ({"window": 2.5}, "window must be an integer >= 1"),
        ({"delay": -1}, "delay must be an integer >= 0"),
        ({"lambda_init": 0.0}, "lambda_init must be > 0"),
        ({"lambda_max": 0.0}, "lambda_max must be > 0"),
        ({"lambda_init": 5.0, "lambda_max": 2.0}, "above lambda_max"),
    ],
)
def test_bad_arguments_are_usage_errors(kwargs: dict[str, Any], message: str) -> None:
    args = {"limit": 0.1, **kwargs}
    limit = args.pop("limit")
    with pytest.raises(UsageError, match=message):
        LagrangeController(limit, **args)


def test_bad_costs_are_data_errors() -> None:
    ctl = LagrangeController(0.1)
    with pytest.raises(DataError, match=r"costs\[1\] is nan"):
        ctl.update([0.0, float("nan")])
    with pytest.raises(DataError, match="one value per completion"):
        ctl.update([[0.0, 1.0]])
    with pytest.raises(DataError, match="must be numbers"):
        ctl.update(["a"])
    with pytest.raises(DataError, match="2 rewards but 3 costs"):
        ctl.shape([0.0, 1.0], [0.0, 0.0, 0.0])
    with pytest.raises(UsageError, match="limit must be finite"):
        ctl.limit = float("inf")
    lag = LagrangeSet.for_limits({"a": 0.1, "b": 0.2})
    with pytest.raises(DataError, match=r"\[n, 2\] \(columns a, b\)"):
        lag.update(np.zeros((4, 3)))
    with pytest.raises(DataError, match="3 rewards but 4 rows"):
        lag.shape(np.zeros(3), np.zeros((4, 2)))
    with pytest.raises(UsageError, match="not a LagrangeController"):
        LagrangeSet({"a": 0.1})  # type: ignore[dict-item]


# --------------------------------------------------------------------------- a bandit

#: Three arms: the best reward is also the costliest. Under a cost limit of 0.2 the
#: best policy mixes arm 1 (2/3) and arm 2 (1/3): reward 0.8 * 2/3 + 0.3 / 3 = 0.6333.
REWARD = np.array([1.0, 0.8, 0.3])
COST = np.array([0.9, 0.3, 0.0])
LIMIT = 0.2
CONSTRAINED_OPTIMUM = 0.8 * 2 / 3 + 0.3 / 3


def _bandit(seed: int, steps: int, relax_at: int | None = None) -> np.ndarray:
    """REINFORCE on a softmax over the arms with Lagrange-shaped rewards; one row of
    (expected reward, expected cost, λ) per step."""
    rng = np.random.default_rng(seed)
    theta = np.zeros(3)
    ctl = LagrangeController(LIMIT, lr=0.05)
    history = []
    for t in range(steps):
        if t == relax_at:
            ctl.limit = 1.0  # every policy satisfies it now: the constraint is slack
        p = np.exp(theta - theta.max())
        p /= p.sum()
        arms = rng.choice(3, size=64, p=p)
        rewards, costs = REWARD[arms], COST[arms]
        lam = ctl.update(costs)
        shaped = ctl.shape(rewards, costs)
        advantage = shaped - shaped.mean()
        theta += 0.5 * ((np.eye(3)[arms] - p) * advantage[:, None]).mean(axis=0)
        history.append((p @ REWARD, p @ COST, lam))
    return np.array(history)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bandit_settles_at_the_limit_near_the_constrained_optimum(seed: int) -> None:
    history = _bandit(seed, 3000)
    reward, cost, lam = history[-1000:].mean(axis=0)
    assert cost == pytest.approx(LIMIT, abs=0.015)
    assert reward == pytest.approx(CONSTRAINED_OPTIMUM, abs=0.02)
    assert reward < 0.7  # far from the unconstrained best arm's 1.0
    assert lam > 0.5  # the constraint binds


def test_lambda_falls_once_the_constraint_goes_slack() -> None:
    history = _bandit(0, 4000, relax_at=3000)
    lam = history[:, 2]
    assert np.all(np.diff(lam[3000:]) < 0)
    assert lam[-1] < 0.05 * lam[2999]
    assert history[-500:, 0].mean() > CONSTRAINED_OPTIMUM + 0.1  # reward rises


def test_specc_safe_imports_no_torch() -> None:
    probe = "import specc.safe, sys; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout.split()
    assert not {m.split(".")[0] for m in out} & {"torch", "transformers", "trl", "verl"}
