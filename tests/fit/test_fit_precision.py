"""float32 features keep fits accurate; overflow names its feature; the same bits on
every thread count."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from specc.errors import DataError
from specc.fit import FitSettings, fit_response_type, pairwise_hinge_loss
from specc.fit.objective import FitOverflow, HingeObjective
from specc.fit.pairs import make_pairs

TIERS = ["ideal", "less_good", "unacceptable"]


def data(seed: int, prompts: int = 60, per: int = 10, d: int = 6) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n = prompts * per
    group = np.repeat(np.arange(prompts), per)
    rank = rng.integers(0, 3, n)
    direction = rng.normal(size=d)
    logits = np.outer(1 - rank, direction) + rng.normal(0, 1.2, (n, d))
    return 1 / (1 + np.exp(-logits)), group, rank, rng.normal(size=n)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weight_decay", [None, 1e-2])
def test_float32_fits_as_well_as_float64(seed: int, weight_decay: float | None) -> None:
    x, group, rank, base = data(seed)
    names = [f"prop:p{j}" for j in range(x.shape[1])]
    fits = {
        precision: fit_response_type(
            x,
            group,
            rank,
            base_reward=base,
            tier_names=TIERS,
            feature_names=names,
            settings=FitSettings(base_reward=True, weight_decay=weight_decay, precision=precision),
            seed=seed,
        )
        for precision in ("float32", "float64")
    }
    f32, f64 = fits["float32"], fits["float64"]
    assert f32.weight_decay == f64.weight_decay
    assert abs(f32.train.pair_accuracy - f64.train.pair_accuracy) <= 0.002
    assert f32.valid is not None and f64.valid is not None
    assert abs(f32.valid.pair_accuracy - f64.valid.pair_accuracy) <= 0.002
    # float32 reaches the float64 objective's minimum, measured in float64
    train = ~f64.is_valid
    wd = f64.weight_decay

    def objective(w: np.ndarray) -> float:
        loss = pairwise_hinge_loss(w, x[train], group[train], rank[train], [1.0] * 3, base[train])
        return loss + 0.5 * wd * float(w @ w)

    assert objective(f32.weights) <= objective(f64.weights) + 1e-4
    if weight_decay is not None:  # strongly convex enough: the same weights
        np.testing.assert_allclose(f32.weights, f64.weights, rtol=2e-3, atol=2e-3)


def test_an_overflowing_evaluation_names_the_feature() -> None:
    x, group, rank, _ = data(0, d=3)
    pairs = make_pairs(group, rank)
    objective = HingeObjective(
        x.astype(np.float32),
        None,
        np.ones(len(x)),
        pairs.better,
        pairs.worse,
        feature_names=["prop:a", "prop:b", "prop:c"],
    )
    with pytest.raises(FitOverflow, match=r"through feature 'prop:b': its weight reached 1e\+39"):
        objective(np.array([1.0, 1e39, -2.0]))
    assert issubclass(FitOverflow, DataError)  # exit 1, not an internal error


def test_the_same_weights_on_every_thread_count() -> None:
    code = (
        "import sys, numpy as np\n"
        "from specc.fit import FitSettings, fit_response_type\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.uniform(size=(60000, 20)).astype(np.float32)\n"
        "g, r = np.arange(60000) // 15, rng.integers(0, 3, 60000)\n"
        "res = fit_response_type(x, g, r, tier_names=['a', 'b', 'c'],\n"
        "    feature_names=[f'p{j}' for j in range(20)], settings=FitSettings(steps=20))\n"
        "sys.stdout.write(res.weights.tobytes().hex())\n"
    )
    outputs = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_sorted_and_shuffled_pairs_evaluate_alike() -> None:
    """Pairs sorted by their better row take the run-length path; any order works."""
    x, group, rank, base = data(4)
    order = np.lexsort((rank, group))
    x, group, rank, base = x[order], group[order], rank[order], base[order]
    pairs = make_pairs(group, rank)  # rows sorted by (prompt, tier): pairs sorted too
    assert (np.diff(pairs.better) >= 0).all()
    shuffle = np.random.default_rng(0).permutation(len(pairs))
    margin = np.array([1.0, 0.5, 0.25])[rank]
    w = np.random.default_rng(1).normal(size=x.shape[1])
    runs = HingeObjective(x, base, margin, pairs.better, pairs.worse, chunk_pairs=64)
    loose = HingeObjective(
        x, base, margin, pairs.better[shuffle], pairs.worse[shuffle], chunk_pairs=64
    )
    assert runs._chunks[0].runs is not None and loose._chunks[0].runs is None
    (f1, g1), (f2, g2) = runs(w), loose(w)
    assert f1 == pytest.approx(f2, rel=1e-6)
    np.testing.assert_allclose(g1, g2, rtol=1e-6, atol=1e-9)


def test_a_non_finite_result_is_refused_naming_the_feature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from specc.fit import fitter
    from specc.fit.optimize import OptimResult

    def broken(f: object, d: int, settings: FitSettings, x0: object = None) -> OptimResult:
        return OptimResult(np.array([0.5, np.inf, 0.0]), 1, 1)

    monkeypatch.setattr(fitter, "minimise", broken)
    x, group, rank, _ = data(0, d=3)
    with pytest.raises(FitOverflow, match=r"through feature 'prop:b' \(weight inf\)"):
        fit_response_type(
            x,
            group,
            rank,
            tier_names=TIERS,
            feature_names=["prop:a", "prop:b", "prop:c"],
            settings=FitSettings(weight_decay=0.01),
        )
