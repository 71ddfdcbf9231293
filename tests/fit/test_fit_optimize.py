"""The numpy AdamW and L-BFGS follow torch.optim's step for step."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from specc.fit import FitSettings
from specc.fit.objective import HingeObjective
from specc.fit.optimize import run_adamw, run_lbfgs
from specc.fit.pairs import make_pairs

Evaluate = Callable[[np.ndarray], tuple[float, np.ndarray]]


def hinge(seed: int, l2: float) -> tuple[HingeObjective, int]:
    rng = np.random.default_rng(seed)
    n, d = 300, 5
    group = rng.integers(0, 40, n)
    rank = rng.integers(0, 3, n)
    x = rng.normal(size=(n, d)) - 0.7 * rank[:, None] * rng.normal(size=d)
    pairs = make_pairs(group, rank)
    margins = np.array([1.0, 0.5, 0.5])[rank]
    return HingeObjective(x, None, margins, pairs.better, pairs.worse, l2=l2), d


def rosenbrock(w: np.ndarray) -> tuple[float, np.ndarray]:
    """A smooth, curved valley: exercises bracketing and zooming of the line search."""
    a, b = w[:-1], w[1:]
    f = float(np.sum(100.0 * (b - a**2) ** 2 + (1 - a) ** 2))
    g = np.zeros_like(w)
    g[:-1] += -400.0 * a * (b - a**2) - 2 * (1 - a)
    g[1:] += 200.0 * (b - a**2)
    return f, g


def torch_lbfgs(f: Evaluate, d: int, steps: int, tol: float) -> tuple[np.ndarray, int]:
    w = torch.zeros(d, dtype=torch.float64)
    opt = torch.optim.LBFGS(
        [w],
        lr=1.0,
        max_iter=steps,
        max_eval=steps * 5 // 4 + 1,
        tolerance_grad=tol,
        tolerance_change=tol,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        loss, grad = f(w.numpy().copy())
        w.grad = torch.from_numpy(grad.copy())
        return torch.tensor(loss, dtype=torch.float64)

    opt.step(closure)  # type: ignore[no-untyped-call]
    return w.numpy().copy(), int(opt.state[w]["func_evals"])


@pytest.mark.parametrize("steps", [5, 40, 200])
def test_lbfgs_follows_torch_on_a_smooth_valley(steps: int) -> None:
    settings = FitSettings(optimizer="lbfgs", steps=steps, tolerance=1e-12)
    ours = run_lbfgs(rosenbrock, 6, settings)
    expected, evals = torch_lbfgs(rosenbrock, 6, steps, 1e-12)
    assert ours.evaluations == evals
    np.testing.assert_allclose(ours.weights, expected, rtol=1e-9, atol=1e-12)
    if steps == 200:
        np.testing.assert_allclose(ours.weights, np.ones(6), atol=1e-6)  # the minimum


@pytest.mark.parametrize("seed", [0, 1])
def test_lbfgs_follows_torch_on_the_hinge(seed: int) -> None:
    objective, d = hinge(seed, l2=0.05)
    settings = FitSettings(optimizer="lbfgs", steps=100)
    ours = run_lbfgs(objective, d, settings)
    expected, evals = torch_lbfgs(objective, d, 100, settings.tolerance)
    assert ours.evaluations == evals
    np.testing.assert_allclose(ours.weights, expected, rtol=1e-9, atol=1e-12)


def test_adamw_follows_torch() -> None:
    objective, d = hinge(2, l2=0.0)
    settings = FitSettings(optimizer="adamw", steps=300, lr=0.02, weight_decay=0.1)
    ours = run_adamw(objective, d, settings)
    w = torch.zeros(d, dtype=torch.float64)
    opt = torch.optim.AdamW([w], lr=0.02, weight_decay=0.1)
    for _ in range(300):
        w.grad = torch.from_numpy(objective(w.numpy().copy())[1].copy())
        opt.step()
    np.testing.assert_allclose(ours.weights, w.numpy(), rtol=1e-12, atol=1e-14)
    assert ours.iterations == 300 and ours.evaluations == 301
    assert ours.history[-1] < ours.history[0]


def test_lbfgs_stops_at_once_when_the_gradient_is_zero() -> None:
    result = run_lbfgs(lambda w: (0.0, np.zeros_like(w)), 3, FitSettings(optimizer="lbfgs"))
    assert result.iterations == 0 and result.evaluations == 1
    assert not result.weights.any()


def test_a_fit_imports_no_torch() -> None:
    """Fitting is numpy only: torch's import alone is seconds."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from specc.fit import FitSettings, fit_response_type\n"
        "x = np.random.default_rng(0).uniform(size=(40, 2))\n"
        "g, r = np.repeat(np.arange(10), 4), np.tile([0, 1, 2, 1], 10)\n"
        "for opt in ('adamw', 'lbfgs'):\n"
        "    fit_response_type(x, g, r, tier_names=['a', 'b', 'c'], feature_names=['p', 'q'],\n"
        "                      settings=FitSettings(optimizer=opt, steps=5))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
