"""The pairwise hinge objective and its gradient, computed in O(pairs).

For pairs ``(a, b)`` with ``a`` of a better tier, ``R = X w (+ base)`` and the better
tier's margin ``m_a``::

    loss = mean over pairs of relu(m_a + R[b] - R[a])
    grad = X^T c / P,  c[i] = #active pairs where i is worse - #active where i is better

so one evaluation is two matrix-vector products, two gathers of ``R`` at the pair
ends, a clamp and two scatter-adds: no ``pairs x features`` intermediate. Everything
is float64 (see docs/fitting.md for why).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from specc.fit.pairs import make_pairs

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def pair_slack(
    rewards: FloatArray, better: IntArray, worse: IntArray, pair_margin: FloatArray
) -> FloatArray:
    """``m_a + R[b] - R[a]`` for each pair: the pair's hinge loss before the relu."""
    out: FloatArray = pair_margin + rewards[worse] - rewards[better]
    return out


def pairwise_hinge_loss(
    weights: npt.ArrayLike,
    features: npt.ArrayLike,
    group: npt.ArrayLike,
    tier_rank: npt.ArrayLike,
    tier_margins: npt.ArrayLike,
    base_reward: npt.ArrayLike | None = None,
) -> float:
    """Mean hinge loss over all same-prompt pairs for given weights (no weight decay).

    >>> pairwise_hinge_loss([1.0], [[2.0], [0.5]], [0, 0], [0, 1], [1.0, 1.0])
    0.0
    """
    x = np.asarray(features, dtype=np.float64)
    rewards = x @ np.asarray(weights, dtype=np.float64)
    if base_reward is not None:
        rewards = rewards + np.asarray(base_reward, dtype=np.float64)
    rank = np.asarray(tier_rank, dtype=np.int64)
    pairs = make_pairs(group, rank)
    if len(pairs) == 0:
        return 0.0
    margins = np.asarray(tier_margins, dtype=np.float64)[rank[pairs.better]]
    slack = pair_slack(rewards, pairs.better, pairs.worse, margins)
    return float(np.maximum(slack, 0.0).sum() / len(pairs))


T = TypeVar("T")


def with_threads(threads: int, run: Callable[[], T]) -> T:
    """Run ``run()`` with ``threads`` torch threads, restoring the count afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return run()
    finally:
        torch.set_num_threads(previous)


class HingeObjective:
    """``w -> (objective, gradient)`` over fixed rows and pairs, with preallocated
    buffers so that repeated evaluations allocate nothing of the pairs' size.

    ``x`` (n, d), ``offset`` (n,) the base reward or None, ``row_margin`` (n,) the
    margin of each row's tier (used when the row is the better one), ``better`` and
    ``worse`` (P,) row indices, ``l2``: adds ``l2 / 2 * |w|^2``.
    """

    def __init__(
        self,
        x: FloatArray,
        offset: FloatArray | None,
        row_margin: FloatArray,
        better: IntArray,
        worse: IntArray,
        l2: float = 0.0,
    ):
        import torch

        self.n, self.d = x.shape
        self.n_pairs = int(better.shape[0])
        self.l2 = float(l2)
        self.evaluations = 0
        self._x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
        self._offset = (
            torch.from_numpy(np.ascontiguousarray(offset, dtype=np.float64))
            if offset is not None
            else None
        )
        self._margin = torch.from_numpy(np.ascontiguousarray(row_margin, dtype=np.float64))
        self._better = torch.from_numpy(np.ascontiguousarray(better, dtype=np.int64))
        self._worse = torch.from_numpy(np.ascontiguousarray(worse, dtype=np.int64))
        f64 = torch.float64
        self._rewards = torch.empty(self.n, dtype=f64)
        self._shifted = torch.empty(self.n, dtype=f64)
        self._counts = torch.empty(self.n, dtype=f64)
        self._slack = torch.empty(self.n_pairs, dtype=f64)
        self._tmp = torch.empty(self.n_pairs, dtype=f64)

    def __call__(self, weights: FloatArray) -> tuple[float, FloatArray]:
        """The objective and its gradient (float64 numpy) at ``weights``."""
        import torch

        self.evaluations += 1
        w = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float64))
        rewards, slack, tmp, counts = self._rewards, self._slack, self._tmp, self._counts
        torch.mv(self._x, w, out=rewards)
        if self._offset is not None:
            rewards.add_(self._offset)
        torch.sub(rewards, self._margin, out=self._shifted)  # R[a] - m_a
        torch.index_select(rewards, 0, self._worse, out=slack)
        torch.index_select(self._shifted, 0, self._better, out=tmp)
        slack.sub_(tmp).clamp_(min=0.0)
        loss = float(slack.sum()) / self.n_pairs
        torch.sign(slack, out=tmp)  # 1 where the pair is active, else 0
        counts.zero_()
        counts.index_add_(0, self._worse, tmp)
        counts.index_add_(0, self._better, tmp, alpha=-1.0)
        grad = torch.mv(self._x.T, counts).div_(self.n_pairs)
        if self.l2:
            loss += 0.5 * self.l2 * float(w.dot(w))
            grad.add_(w, alpha=self.l2)
        out: FloatArray = grad.numpy()
        return loss, out
