"""Fidelity: loss, gradient and fitted weights against the naive all-pairs oracle."""

from __future__ import annotations

import numpy as np
import pytest

from specc.fit import FitSettings, fit_response_type, pairwise_hinge_loss
from specc.fit.objective import HingeObjective
from specc.fit.pairs import make_pairs

from .oracle import oracle_fit, oracle_loss, oracle_pairs

TIERS = ["ideal", "ok", "poor", "bad"]


def make_data(
    seed: int, prompts: int = 12, per: int = 6, d: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = prompts * per
    group = np.repeat(rng.permutation(prompts) * 10 + 3, per)  # arbitrary ids
    rank = rng.integers(0, len(TIERS), n)
    effect = rng.normal(size=(len(TIERS), d))
    x = effect[rank] + rng.normal(size=(n, d))
    base = rng.normal(size=n)
    return x, group, rank, base


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_matches_oracle_for_given_weights(seed: int) -> None:
    x, group, rank, base = make_data(seed)
    rng = np.random.default_rng(100 + seed)
    margins = [1.0, 0.5, 0.25, 2.0]
    for use_base in (False, True):
        w = np.asarray(rng.normal(size=x.shape[1]), dtype=np.float64)
        b = base if use_base else None
        ours = pairwise_hinge_loss(w, x, group, rank, margins, b)
        b_list = b.tolist() if b is not None else None
        expected = oracle_loss(w.tolist(), x, group.tolist(), rank.tolist(), margins, b_list)
        assert expected > 0
        assert abs(ours - expected) < 1e-6
        assert ours == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_objective_value_and_gradient_match_autograd() -> None:
    torch = pytest.importorskip("torch")
    x, group, rank, base = make_data(3)
    margins = np.array([1.0, 0.5, 0.25, 2.0])
    pairs = make_pairs(group, rank)
    obj = HingeObjective(x, base, margins[rank], pairs.better, pairs.worse, l2=0.3)
    w = torch.tensor(np.random.default_rng(5).normal(size=x.shape[1]), dtype=torch.float64)
    loss, grad = obj(w.numpy())

    ref = oracle_pairs(group.tolist(), rank.tolist())
    a = torch.tensor([p[0] for p in ref])
    b = torch.tensor([p[1] for p in ref])
    wt = w.clone().requires_grad_(True)
    r = torch.tensor(x) @ wt + torch.tensor(base)
    m = torch.tensor(margins[rank])[a]
    ref_loss = torch.relu(m + r[b] - r[a]).mean() + 0.15 * (wt * wt).sum()
    ref_loss.backward()
    assert loss == pytest.approx(float(ref_loss.detach()), rel=1e-12)
    assert wt.grad is not None
    np.testing.assert_allclose(grad, wt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("use_base", [False, True])
def test_adamw_weights_match_oracle(use_base: bool) -> None:
    pytest.importorskip("torch")
    x, group, rank, base = make_data(4)
    margins = [1.0, 0.5, 0.5, 1.0]
    settings = FitSettings(
        optimizer="adamw",
        lr=1e-2,
        steps=150,
        weight_decay=0.05,
        base_reward=use_base,
        valid_fraction=0.25,
        precision="float64",
    )
    result = fit_response_type(
        x,
        group,
        rank,
        tier_names=TIERS,
        feature_names=[f"x{i}" for i in range(4)],
        tier_margins=margins,
        base_reward=base,
        settings=settings,
        seed=11,
    )
    assert result.valid is not None and result.valid.n_pairs > 0
    train = ~result.is_valid  # the oracle sees the same prompts
    expected = oracle_fit(
        x[train],
        group[train].tolist(),
        rank[train].tolist(),
        margins,
        optimizer="adamw",
        steps=150,
        lr=1e-2,
        weight_decay=0.05,
        base=base[train].tolist() if use_base else None,
    )
    np.testing.assert_allclose(result.weights, expected, rtol=0, atol=1e-8)
    oracle_train_loss = oracle_loss(
        result.weights.tolist(),
        x[train],
        group[train].tolist(),
        rank[train].tolist(),
        margins,
        base[train].tolist() if use_base else None,
    )
    assert abs(result.train.hinge_loss - oracle_train_loss) < 1e-9


def test_lbfgs_weights_match_oracle() -> None:
    pytest.importorskip("torch")
    x, group, rank, _ = make_data(5, prompts=20)
    margins = [1.0, 1.0, 1.0, 1.0]
    settings = FitSettings(
        optimizer="lbfgs", steps=200, weight_decay=0.1, valid_fraction=0.0, precision="float64"
    )
    result = fit_response_type(
        x,
        group,
        rank,
        tier_names=TIERS,
        feature_names=[f"x{i}" for i in range(4)],
        settings=settings,
    )
    expected = oracle_fit(
        x,
        group.tolist(),
        rank.tolist(),
        margins,
        optimizer="lbfgs",
        steps=200,
        lr=1.0,
        weight_decay=0.1,
    )
    # Strongly convex (L2 term): both reach the same minimiser.
    np.testing.assert_allclose(result.weights, expected, rtol=0, atol=1e-5)

    def objective(w: np.ndarray) -> float:
        loss = oracle_loss(w.tolist(), x, group.tolist(), rank.tolist(), margins)
        return loss + 0.05 * float(w @ w)

    assert objective(result.weights) <= objective(expected) + 1e-9
