"""The pairwise hinge objective and its gradient, in numpy, in O(pairs) per evaluation.

For pairs ``(a, b)`` with ``a`` of a better tier, ``R = X w (+ base)`` and the better
tier's margin ``m_a``, a pair is *active* when ``m_a + R[b] - R[a] > 0``. With
``cw[i]`` / ``cb[i]`` the number of active pairs in which row ``i`` is the worse /
better one and ``c = cw - cb``::

    loss = mean over pairs of relu(m_a + R[b] - R[a]) = (c . R + cb . m) / P
    grad = X^T c / P

so one evaluation is a matrix-vector product, two gathers of ``R`` per pair, a
comparison, two counts (``bincount``) and a second product over the rows: never a
``pairs x features`` intermediate. Pairs are processed in chunks whose rows lie in
a narrow range (pairs sorted by row, as :mod:`specc.fit.pairs` builds them), so the
temporaries stay small and the counts are local.

Precision: the rewards and the active set are computed in the dtype of ``x``
(float32 for fits from a features file, see docs/fitting.md); the loss and the
gradient are accumulated in float64 from the integer counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from specc.errors import DataError
from specc.fit.pairs import make_pairs

FloatArray = npt.NDArray[np.float64]
Floats = npt.NDArray[np.floating[Any]]
IntArray = npt.NDArray[np.int64]
Index = npt.NDArray[np.signedinteger[Any]]

#: Pairs processed together in one evaluation step (about 1 MB of indices).
CHUNK_PAIRS = 1 << 17
#: Rows per step of the gradient's ``X^T c`` (a fixed order: the sum is reproducible).
CHUNK_ROWS = 1 << 16


def pairwise_hinge_loss(
    weights: npt.ArrayLike,
    features: npt.ArrayLike,
    group: npt.ArrayLike,
    tier_rank: npt.ArrayLike,
    tier_margins: npt.ArrayLike,
    base_reward: npt.ArrayLike | None = None,
) -> float:
    """Mean hinge loss over all same-prompt pairs for given weights (no weight decay),
    in float64.

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
    slack = margins + rewards[pairs.worse] - rewards[pairs.better]
    return float(np.maximum(slack, 0.0).sum() / len(pairs))


@dataclass(frozen=True)
class Chunk:
    """Pairs ``p0:p1``, which touch only rows ``lo:hi``. When the pairs are sorted by
    their better row, ``runs`` holds where each better row's run starts (within the
    chunk) and ``rows`` which row it is: the better side is then a ``repeat`` and its
    counts a ``reduceat``, cheaper than a gather and a ``bincount``."""

    p0: int
    p1: int
    lo: int
    hi: int
    runs: npt.NDArray[np.int32] | None = None
    rows: Index | None = None


def chunk_bounds(better: Index, worse: Index, size: int = CHUNK_PAIRS) -> list[Chunk]:
    """The pairs in chunks of ``size`` (see :class:`Chunk`)."""
    n_pairs = int(better.shape[0])
    if n_pairs == 0:
        return []
    cuts = np.arange(0, n_pairs, size)
    lo = np.minimum(np.minimum.reduceat(better, cuts), np.minimum.reduceat(worse, cuts))
    hi = np.maximum(np.maximum.reduceat(better, cuts), np.maximum.reduceat(worse, cuts)) + 1
    ends = np.append(cuts[1:], n_pairs)
    by_better = bool(n_pairs < 2 or (better[1:] >= better[:-1]).all())
    chunks = []
    bounds = zip(cuts.tolist(), ends.tolist(), lo.tolist(), hi.tolist(), strict=True)
    for p0, p1, low, high in bounds:
        if by_better:
            part = better[p0:p1]
            runs = np.flatnonzero(part[1:] != part[:-1]).astype(np.int32) + 1
            runs = np.concatenate((np.zeros(1, dtype=np.int32), runs))
            chunks.append(Chunk(p0, p1, low, high, runs, part[runs]))
        else:
            chunks.append(Chunk(p0, p1, low, high))
    return chunks


def matvec_t(x: Floats, c: npt.NDArray[Any], rows: int | None = None) -> FloatArray:
    """``x[:rows].T @ c`` accumulated in float64 over fixed chunks of rows, in the
    dtype of ``x`` within a chunk (einsum: no BLAS threads, so the same bits on every
    machine)."""
    n = x.shape[0] if rows is None else rows
    out = np.zeros(x.shape[1], dtype=np.float64)
    for r0 in range(0, n, CHUNK_ROWS):
        r1 = min(n, r0 + CHUNK_ROWS)
        out += np.einsum("i,ij->j", c[r0:r1].astype(x.dtype), x[r0:r1])
    return out


def matvec(x: Floats, w: npt.NDArray[Any]) -> Floats:
    """``x @ w`` in the dtype of ``x`` (einsum: the same bits whatever the thread count)."""
    out: Floats = np.einsum("ij,j->i", x, w.astype(x.dtype))
    return out


class FitOverflow(DataError):
    """The objective became non-finite during a fit."""


def blame_feature(weights: FloatArray, x: Floats) -> int:
    """The index of the feature whose term ``|w_j| * max |x_j|`` over the rows ``x``
    is largest (a weight that is not finite counts as infinite): the likely cause of
    an overflow."""
    col_absmax = np.abs(x).max(axis=0).astype(np.float64) if x.shape[0] else np.zeros(x.shape[1])
    with np.errstate(over="ignore", invalid="ignore"):
        size = np.abs(weights) * col_absmax
    size = np.where(np.isfinite(size), size, np.inf)
    return int(np.argmax(size)) if size.shape[0] else 0


class HingeObjective:
    """``w -> (objective, gradient)`` over fixed rows and pairs, with preallocated
    per-row buffers; the per-pair temporaries are one chunk's.

    ``x`` (n, d) float32 or float64 (the evaluation's precision; other dtypes become
    float64), ``offset`` (n,) the base reward or None, ``row_margin`` (n,) the margin
    of each row's tier (used when the row is the better one), ``better`` and
    ``worse`` (P,) row indices (fastest sorted by row, as :mod:`specc.fit.pairs` builds
    them), ``l2``: adds ``l2 / 2 * |w|^2``. ``feature_names`` name the culprit when an
    evaluation overflows (:class:`FitOverflow`).
    """

    def __init__(
        self,
        x: npt.ArrayLike,
        offset: npt.ArrayLike | None,
        row_margin: npt.ArrayLike,
        better: npt.ArrayLike,
        worse: npt.ArrayLike,
        l2: float = 0.0,
        *,
        feature_names: Sequence[str] | None = None,
        chunk_pairs: int = CHUNK_PAIRS,
    ):
        xa = np.asarray(x)
        if xa.dtype not in (np.float32, np.float64):
            xa = xa.astype(np.float64)
        self._x: Floats = np.ascontiguousarray(xa)
        dtype = self._x.dtype
        self.n, self.d = self._x.shape
        self._offset = (
            np.ascontiguousarray(offset, dtype=dtype).reshape(self.n)
            if offset is not None
            else None
        )
        self._margin = np.ascontiguousarray(row_margin, dtype=dtype).reshape(self.n)
        self._margin64 = self._margin.astype(np.float64)
        self._better: Index = np.ascontiguousarray(better).reshape(-1)
        self._worse: Index = np.ascontiguousarray(worse).reshape(-1)
        self.n_pairs = int(self._better.shape[0])
        self.l2 = float(l2)
        self.evaluations = 0
        self.feature_names = tuple(feature_names) if feature_names is not None else None
        self._chunks = chunk_bounds(self._better, self._worse, chunk_pairs)
        self._worse_count = np.zeros(self.n, dtype=np.int64)
        self._better_count = np.zeros(self.n, dtype=np.int64)

    def rewards(self, weights: npt.ArrayLike) -> Floats:
        """``x @ w (+ offset)`` in the objective's precision."""
        r = matvec(self._x, np.asarray(weights, dtype=np.float64))
        if self._offset is not None:
            r += self._offset
        return r

    def counts(self, rewards: Floats) -> tuple[IntArray, IntArray]:
        """Per row, the number of active pairs in which it is the worse and the better
        one (buffers reused by the next call)."""
        shifted = rewards - self._margin  # R[a] - m_a
        cw, cb = self._worse_count, self._better_count
        cw.fill(0)
        cb.fill(0)
        better, worse = self._better, self._worse
        for c in self._chunks:
            lo, hi = c.lo, c.hi
            w = worse[c.p0 : c.p1]
            if c.runs is not None and c.rows is not None:
                lengths = np.diff(c.runs, append=np.int32(c.p1 - c.p0))
                active = rewards[w] > np.repeat(shifted[c.rows], lengths)
                cb[c.rows] += np.add.reduceat(active.view(np.int8), c.runs, dtype=np.int64)
            else:
                b = better[c.p0 : c.p1]
                active = rewards[w] > shifted[b]
                cb[lo:hi] += np.bincount(b[active] - lo, minlength=hi - lo)
            cw[lo:hi] += np.bincount(w[active] - lo, minlength=hi - lo)
        return cw, cb

    def __call__(self, weights: FloatArray) -> tuple[float, FloatArray]:
        """The objective and its gradient (float64) at ``weights``."""
        self.evaluations += 1
        w = np.asarray(weights, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            rewards = self.rewards(w)
            cw, cb = self.counts(rewards)
            c = cw - cb
            if self.n_pairs:
                # einsum on float64: an integer-float np.dot is a slow generic loop, and
                # BLAS's threads make a dot slower on a busy machine and its bits vary
                active = float(np.einsum("i,i->", c.astype(np.float64), rewards, dtype=np.float64))
                active += float(np.einsum("i,i->", cb.astype(np.float64), self._margin64))
                loss = active / self.n_pairs
                grad = matvec_t(self._x, c) / self.n_pairs
            else:
                loss, grad = 0.0, np.zeros(self.d)
            if self.l2:
                loss += 0.5 * self.l2 * float(w @ w)
                grad += self.l2 * w
        if not (np.isfinite(loss) and np.isfinite(grad).all() and np.isfinite(rewards).all()):
            raise self.overflow(w)
        return loss, grad

    def overflow(self, weights: FloatArray) -> FitOverflow:
        """The error for an evaluation at ``weights`` that overflowed."""
        names = self.feature_names or tuple(f"column {j}" for j in range(self.d))
        j = blame_feature(weights, self._x)
        return FitOverflow(
            f"the fit overflowed (the reward is not a finite number) through feature "
            f"{names[j]!r}: its weight reached {weights[j]:.3g}",
            hint="check that feature's values, or set weight_decay above 0 in the spec's "
            "reward block so the weights stay bounded",
        )
