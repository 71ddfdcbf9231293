"""Minimising a :class:`~specc.fit.objective.HingeObjective` with torch's optimisers.

The weights start at zero (so a fit is deterministic given its data and split) and the
gradient is supplied by hand, not by autograd.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from specc.fit.objective import HingeObjective
from specc.fit.settings import FitSettings


@dataclass(frozen=True)
class OptimResult:
    weights: npt.NDArray[np.float64]
    iterations: int
    evaluations: int
    #: objective at each evaluation (AdamW: before each step; L-BFGS: every call,
    #: line-search trials included), the last entry the final point's when known
    history: tuple[float, ...] = field(default=())


def run_adamw(objective: HingeObjective, settings: FitSettings) -> OptimResult:
    """Full-batch AdamW: ``steps`` steps, decoupled weight decay, then one last
    evaluation at the final weights."""
    import torch

    w = torch.zeros(objective.d, dtype=torch.float64)
    opt = torch.optim.AdamW([w], lr=settings.lr, weight_decay=settings.weight_decay)
    history = []
    for _ in range(settings.steps):
        loss, grad = objective(w)
        history.append(loss)
        w.grad = grad
        opt.step()
    history.append(objective(w)[0])
    return OptimResult(w.numpy().copy(), settings.steps, objective.evaluations, tuple(history))


def run_lbfgs(objective: HingeObjective, settings: FitSettings) -> OptimResult:
    """L-BFGS with a strong-Wolfe line search; the objective carries the L2 term."""
    import torch

    w = torch.zeros(objective.d, dtype=torch.float64)
    opt = torch.optim.LBFGS(
        [w],
        lr=1.0,
        max_iter=settings.steps,
        max_eval=settings.steps * 5 // 4 + 1,
        tolerance_grad=settings.tolerance,
        tolerance_change=settings.tolerance,
        history_size=settings.lbfgs_history,
        line_search_fn="strong_wolfe",
    )
    history: list[float] = []

    def closure() -> torch.Tensor:
        loss, grad = objective(w)
        history.append(loss)
        w.grad = grad
        return torch.tensor(loss, dtype=torch.float64)

    opt.step(closure)  # type: ignore[no-untyped-call]
    state = opt.state[w]
    return OptimResult(
        w.numpy().copy(), int(state.get("n_iter", 0)), objective.evaluations, tuple(history)
    )


def minimise(objective: HingeObjective, settings: FitSettings) -> OptimResult:
    """Run the configured optimiser with ``settings.threads`` torch threads (the
    process's thread count is restored afterwards)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        if settings.optimizer == "lbfgs":
            return run_lbfgs(objective, settings)
        return run_adamw(objective, settings)
    finally:
        torch.set_num_threads(previous)
