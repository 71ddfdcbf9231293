"""A naive reference for the fitting tests: every pair of the dataset in plain Python."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def oracle_pairs(group: Sequence[object], rank: Sequence[int]) -> list[tuple[int, int]]:
    """All (better, worse): same prompt, strictly better tier — a double loop."""
    n = len(group)
    return [
        (i, j) for i in range(n) for j in range(n) if group[i] == group[j] and rank[i] < rank[j]
    ]


def oracle_reward(w: Sequence[float], x: np.ndarray, i: int, base: Sequence[float] | None) -> float:
    total = sum(float(x[i, k]) * float(w[k]) for k in range(len(w)))
    return total + (float(base[i]) if base is not None else 0.0)


def oracle_loss(
    w: Sequence[float],
    x: np.ndarray,
    group: Sequence[object],
    rank: Sequence[int],
    margins: Sequence[float],
    base: Sequence[float] | None = None,
) -> float:
    """Mean hinge loss over all same-prompt pairs of different tiers."""
    total, count = 0.0, 0
    for i, j in oracle_pairs(group, rank):
        ri = oracle_reward(w, x, i, base)
        rj = oracle_reward(w, x, j, base)
        total += max(0.0, margins[rank[i]] + rj - ri)
        count += 1
    return total / count


def oracle_fit(
    x: np.ndarray,
    group: Sequence[object],
    rank: Sequence[int],
    margins: Sequence[float],
    *,
    optimizer: str,
    steps: int,
    lr: float,
    weight_decay: float,
    base: Sequence[float] | None = None,
) -> np.ndarray:
    """The same optimiser driven by autograd through the naive pair list."""
    import torch

    pairs = oracle_pairs(group, rank)
    a = torch.tensor([p[0] for p in pairs])
    b = torch.tensor([p[1] for p in pairs])
    xt = torch.tensor(np.asarray(x), dtype=torch.float64)
    m = torch.tensor([margins[rank[i]] for i, _ in pairs], dtype=torch.float64)
    offset = torch.tensor(np.asarray(base), dtype=torch.float64) if base is not None else None
    w = torch.zeros(xt.shape[1], dtype=torch.float64, requires_grad=True)

    def loss_fn() -> torch.Tensor:
        r = xt @ w
        if offset is not None:
            r = r + offset
        return torch.relu(m + r[b] - r[a]).mean()

    if optimizer == "adamw":
        opt = torch.optim.AdamW([w], lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            opt.zero_grad()
            loss_fn().backward()  # type: ignore[no-untyped-call]
            opt.step()
    else:
        lbfgs = torch.optim.LBFGS(
            [w],
            lr=1.0,
            max_iter=steps,
            max_eval=steps * 5 // 4 + 1,
            tolerance_grad=1e-9,
            tolerance_change=1e-9,
            history_size=20,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            lbfgs.zero_grad()
            loss = loss_fn() + 0.5 * weight_decay * (w * w).sum()
            loss.backward()  # type: ignore[no-untyped-call]
            return loss

        lbfgs.step(closure)  # type: ignore[no-untyped-call]
    return w.detach().numpy().copy()
