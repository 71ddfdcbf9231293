"""Ordered pairs of completions of the same prompt, built without enumerating the
dataset's pairs.

Rows are sorted by (prompt, tier). In that order the completions of a worse tier than
row ``p`` within its prompt are one contiguous run ``[lo[p], end[p])``, so the pairs are
``better = repeat(p, end - lo)`` and ``worse = lo[p] + 0, 1, 2, ...`` — a handful of
vectorised numpy calls, no Python loop over prompts.

>>> import numpy as np
>>> p = make_pairs(np.array([7, 7, 7, 9, 9]), np.array([0, 1, 1, 2, 0]))
>>> list(zip(p.better.tolist(), p.worse.tolist()))
[(0, 1), (0, 2), (4, 3)]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Pairs:
    """Row indices of ordered pairs: ``better[k]`` is of a better tier than ``worse[k]``
    and both are completions of the same prompt."""

    better: IntArray
    worse: IntArray

    def __len__(self) -> int:
        return int(self.better.shape[0])


def sorted_pairs(sorted_key: IntArray, n_tiers: int) -> tuple[IntArray, IntArray, IntArray]:
    """Pairs among rows already sorted by ``key = group * n_tiers + rank``.

    Returns ``(better, worse, counts)`` as positions in the sorted order, with
    ``counts[p]`` the number of pairs in which position ``p`` is the better one. The
    pairs come sorted by ``better``, then ``worse``.
    """
    sorted_group = sorted_key // n_tiers
    group_end = np.searchsorted(sorted_group, sorted_group, side="right")
    first_worse = np.searchsorted(sorted_key, sorted_key, side="right")
    counts = (group_end - first_worse).astype(np.int64)
    n_pairs = int(counts.sum())
    n = sorted_key.shape[0]
    better = np.repeat(np.arange(n, dtype=np.int64), counts)
    # worse = first_worse[p] + (index of the pair within p's run)
    run_start = np.cumsum(counts) - counts
    worse = np.arange(n_pairs, dtype=np.int64)
    worse -= np.repeat(run_start - first_worse, counts)
    return better, worse, counts


def group_codes(group: npt.ArrayLike) -> tuple[IntArray, int]:
    """Dense codes ``0..G-1`` for any sortable prompt ids, and ``G``."""
    g = np.asarray(group)
    if g.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), 0
    _, codes = np.unique(g, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64, copy=False)
    return codes, int(codes.max()) + 1


def make_pairs(group: npt.ArrayLike, tier_rank: npt.ArrayLike) -> Pairs:
    """All ordered pairs (better tier, worse tier) of completions of the same prompt,
    as row indices into the inputs. ``tier_rank`` 0 is the best tier."""
    codes, _ = group_codes(group)
    rank = np.asarray(tier_rank, dtype=np.int64).reshape(-1)
    if rank.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Pairs(empty, empty.copy())
    n_tiers = int(rank.max()) + 1
    key = codes * n_tiers + rank
    order = np.argsort(key, kind="stable")
    better, worse, _ = sorted_pairs(key[order], n_tiers)
    return Pairs(order[better], order[worse])


def pairs_per_group(codes: IntArray, rank: IntArray, n_groups: int, n_tiers: int) -> IntArray:
    """How many pairs each prompt gives: ``sum over tiers a < b of n_a * n_b``."""
    counts = np.bincount(codes * n_tiers + rank, minlength=n_groups * n_tiers)
    counts = counts.reshape(n_groups, n_tiers)
    worse_than = counts[:, ::-1].cumsum(axis=1)[:, ::-1]  # rows of tier >= t
    worse_than = np.concatenate([worse_than[:, 1:], np.zeros((n_groups, 1), np.int64)], 1)
    out: IntArray = (counts * worse_than).sum(axis=1).astype(np.int64)
    return out


def split_groups(group_has_pairs: BoolArray, valid_fraction: float, seed: int) -> BoolArray:
    """Hold out ``round(valid_fraction * G')`` of the ``G'`` prompts that give pairs
    (never all of them), chosen by ``numpy.random.default_rng(seed)``. Returns a
    per-prompt ``is_valid`` flag."""
    candidates = np.flatnonzero(group_has_pairs)
    is_valid = np.zeros(group_has_pairs.shape[0], dtype=bool)
    n_valid = min(round(valid_fraction * candidates.shape[0]), candidates.shape[0] - 1)
    if n_valid > 0:
        rng = np.random.default_rng(seed)
        is_valid[rng.permutation(candidates)[:n_valid]] = True
    return is_valid


@dataclass(frozen=True)
class SplitLayout:
    """Rows sorted by (split, prompt, tier), train first, with their pairs.

    ``order[p]`` is the input row at sorted position ``p``. Train rows are the
    positions ``[0, n_train_rows)`` and train pairs the first ``n_train_pairs`` pairs,
    so the optimiser works on contiguous prefixes (views, no copies)."""

    order: IntArray
    better: IntArray  # sorted positions
    worse: IntArray
    n_train_rows: int
    n_train_pairs: int
    is_valid_row: BoolArray  # per input row

    @property
    def n_pairs(self) -> int:
        return int(self.better.shape[0])

    @property
    def n_valid_pairs(self) -> int:
        return self.n_pairs - self.n_train_pairs


def split_layout(
    codes: IntArray,
    rank: IntArray,
    n_groups: int,
    n_tiers: int,
    valid_fraction: float,
    seed: int,
) -> SplitLayout:
    """Split prompts into train/valid and build the pairs of both (see SplitLayout)."""
    has_pairs = pairs_per_group(codes, rank, n_groups, n_tiers) > 0
    is_valid_group = split_groups(has_pairs, valid_fraction, seed)
    is_valid_row = is_valid_group[codes]
    key = (is_valid_row.astype(np.int64) * n_groups + codes) * n_tiers + rank
    order = np.argsort(key, kind="stable")
    better, worse, counts = sorted_pairs(key[order], n_tiers)
    n_train_rows = int(codes.shape[0] - is_valid_row.sum())
    n_train_pairs = int(counts[:n_train_rows].sum())
    return SplitLayout(order, better, worse, n_train_rows, n_train_pairs, is_valid_row)
