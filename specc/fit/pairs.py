"""Ordered pairs of completions of the same prompt, built without enumerating the
dataset's pairs.

Rows are sorted by (prompt, tier). In that order the completions of a worse tier than
row ``p`` within its prompt are one contiguous run ``[lo[p], end[p])``, so the pairs are
``better = repeat(p, end - lo)`` and ``worse = lo[p] + 0, 1, 2, ...`` — a handful of
vectorised numpy calls per chunk of rows, no Python loop over prompts. Indices are
int32 whenever the rows fit (half the memory of int64, and numpy gathers as fast).

>>> import numpy as np
>>> p = make_pairs(np.array([7, 7, 7, 9, 9]), np.array([0, 1, 1, 2, 0]))
>>> list(zip(p.better.tolist(), p.worse.tolist()))
[(0, 1), (0, 2), (4, 3)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
#: Row positions: int32 when the rows fit, else int64.
Index = npt.NDArray[np.signedinteger[Any]]
BoolArray = npt.NDArray[np.bool_]

#: Rows whose pairs are built together (bounds the int64 temporaries of a build).
BUILD_CHUNK_ROWS = 1 << 16


@dataclass(frozen=True)
class Pairs:
    """Row indices of ordered pairs: ``better[k]`` is of a better tier than ``worse[k]``
    and both are completions of the same prompt."""

    better: IntArray
    worse: IntArray

    def __len__(self) -> int:
        return int(self.better.shape[0])


def index_dtype(n_rows: int) -> type[np.signedinteger[Any]]:
    """int32 when every row position fits in it, else int64."""
    return np.int32 if n_rows < 2**31 else np.int64


def run_ends(sorted_values: npt.NDArray[Any]) -> Index:
    """For each position of a sorted array, the end (exclusive) of its run of equal
    values.

    >>> run_ends(np.array([3, 3, 5, 7, 7, 7])).tolist()
    [2, 2, 3, 6, 6, 6]
    """
    n = int(sorted_values.shape[0])
    dtype = index_dtype(n + 1)
    if n == 0:
        return np.zeros(0, dtype=dtype)
    starts = np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1
    ends = np.append(starts, n).astype(dtype)
    lengths = np.diff(np.concatenate(([0], ends)))
    out: Index = np.repeat(ends, lengths)
    return out


def sorted_pairs(sorted_key: IntArray, n_tiers: int) -> tuple[Index, Index, IntArray]:
    """Pairs among rows already sorted by ``key = group * n_tiers + rank``.

    Returns ``(better, worse, starts)`` as positions in the sorted order: the pairs in
    which position ``p`` is the better one are ``starts[p]:starts[p + 1]``
    (``starts`` has ``n + 1`` entries). The pairs come sorted by ``better``, then
    ``worse``, and are built in chunks of :data:`BUILD_CHUNK_ROWS` rows.
    """
    n = int(sorted_key.shape[0])
    dtype = index_dtype(n)
    group_end = run_ends(sorted_key // n_tiers)
    first_worse = run_ends(sorted_key)
    counts = group_end - first_worse
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    n_pairs = int(starts[-1])
    better = np.empty(n_pairs, dtype=dtype)
    worse = np.empty(n_pairs, dtype=dtype)
    positions = np.arange(n, dtype=dtype)
    # worse[k] = first_worse[p] + (k - starts[p]) for the pair k of better row p
    shift = first_worse - starts[:-1]
    for r0 in range(0, n, BUILD_CHUNK_ROWS):
        r1 = min(n, r0 + BUILD_CHUNK_ROWS)
        p0, p1 = int(starts[r0]), int(starts[r1])
        if p0 == p1:
            continue
        part = np.repeat(positions[r0:r1], counts[r0:r1])
        better[p0:p1] = part
        local = (shift[r0:r1] + p0).astype(dtype)  # for chunk-local k
        np.add(np.arange(p1 - p0, dtype=dtype), local[part - r0], out=worse[p0:p1])
    return better, worse, starts


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
    as int64 row indices into the inputs. ``tier_rank`` 0 is the best tier."""
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


#: The blocks of a :class:`SplitLayout`, in sorted order.
SELECT_TRAIN, SELECT_VALID, REST_TRAIN, VALID = 0, 1, 2, 3
N_BLOCKS = 4


@dataclass(frozen=True)
class SplitLayout:
    """Rows sorted by (block, prompt, tier), with their pairs.

    Prompts fall in four blocks, in this order: ``SELECT_TRAIN`` and ``SELECT_VALID``
    (the training prompts a weight-decay selection fits on and scores on; empty
    without a selection), ``REST_TRAIN`` (the other training prompts) and ``VALID``
    (the held-out prompts). ``order[p]`` is the input row at sorted position ``p``;
    block ``b``'s rows are the positions ``row_bounds[b]:row_bounds[b + 1]`` and its
    pairs ``pair_bounds[b]:pair_bounds[b + 1]``. So the training rows and pairs are
    contiguous prefixes, and so are the selection's, and the optimiser works on views.
    """

    order: Index
    better: Index  # sorted positions
    worse: Index
    row_bounds: tuple[int, ...]  # N_BLOCKS + 1 entries
    pair_bounds: tuple[int, ...]
    is_valid_row: BoolArray  # per input row
    train_prompts_with_pairs: int = 0

    @property
    def n_pairs(self) -> int:
        return int(self.better.shape[0])

    @property
    def n_train_rows(self) -> int:
        return self.row_bounds[VALID]

    @property
    def n_train_pairs(self) -> int:
        return self.pair_bounds[VALID]

    @property
    def n_valid_pairs(self) -> int:
        return self.n_pairs - self.n_train_pairs

    def rows(self, block: int) -> tuple[int, int]:
        return self.row_bounds[block], self.row_bounds[block + 1]

    def pairs(self, block: int) -> tuple[int, int]:
        return self.pair_bounds[block], self.pair_bounds[block + 1]


def split_layout(
    codes: IntArray,
    rank: IntArray,
    n_groups: int,
    n_tiers: int,
    valid_fraction: float,
    seed: int,
    select: SelectPlan | None = None,
) -> SplitLayout:
    """Split prompts into train/valid (and, with ``select``, the selection's blocks)
    and build the pairs of all (see :class:`SplitLayout`)."""
    has_pairs = pairs_per_group(codes, rank, n_groups, n_tiers) > 0
    is_valid_group = split_groups(has_pairs, valid_fraction, seed)
    block = np.where(is_valid_group, VALID, REST_TRAIN).astype(np.int64)
    if select is not None:
        select.assign(block, has_pairs & ~is_valid_group, codes, seed)
    row_block = block[codes]
    key = (row_block * n_groups + codes) * n_tiers + rank
    dtype = index_dtype(codes.shape[0])
    order = np.argsort(key, kind="stable").astype(dtype)
    better, worse, starts = sorted_pairs(key[order], n_tiers)
    row_bounds = np.searchsorted(row_block[order], np.arange(N_BLOCKS + 1), side="left")
    row_bounds[-1] = codes.shape[0]
    pair_bounds = starts[row_bounds]
    return SplitLayout(
        order,
        better,
        worse,
        tuple(int(v) for v in row_bounds),
        tuple(int(v) for v in pair_bounds),
        is_valid_group[codes],
        int((has_pairs & ~is_valid_group).sum()),
    )


@dataclass(frozen=True)
class SelectPlan:
    """Which training prompts a weight-decay selection uses: at most about
    ``max_rows`` rows' worth of them (all when fewer), of which ``valid_fraction`` of
    the prompts (at least one, never all) are scored, not fitted."""

    max_rows: int
    valid_fraction: float

    def assign(self, block: IntArray, candidates: BoolArray, codes: IntArray, seed: int) -> None:
        """Move candidate prompts (training prompts with pairs) of ``block`` into the
        two selection blocks, drawn with ``default_rng((seed, 1))``."""
        pool = np.flatnonzero(candidates)
        if pool.shape[0] < 2:
            return
        rng = np.random.default_rng((seed, 1))
        pool = rng.permutation(pool)
        sizes = np.bincount(codes, minlength=block.shape[0])[pool]
        take = int(np.searchsorted(np.cumsum(sizes), self.max_rows, side="right"))
        take = max(2, min(take, pool.shape[0]))
        chosen = pool[:take]
        n_valid = min(max(1, round(self.valid_fraction * take)), take - 1)
        block[chosen[:n_valid]] = SELECT_VALID
        block[chosen[n_valid:]] = SELECT_TRAIN
