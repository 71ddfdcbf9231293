"""Pair construction and the train/validation split against brute force."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from specc.fit.pairs import make_pairs, pairs_per_group, split_groups, split_layout

from .oracle import oracle_pairs

rows = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4)), min_size=0, max_size=40)


@settings(max_examples=80, deadline=None)
@given(rows)
def test_make_pairs_equals_brute_force(data: list[tuple[int, int]]) -> None:
    group = np.array([g for g, _ in data], dtype=np.int64)
    rank = np.array([r for _, r in data], dtype=np.int64)
    pairs = make_pairs(group, rank)
    got = list(zip(pairs.better.tolist(), pairs.worse.tolist(), strict=True))
    assert sorted(got) == sorted(oracle_pairs(group.tolist(), rank.tolist()))
    assert len(set(got)) == len(got)  # no duplicates
    assert pairs.better.dtype == np.int64 and pairs.worse.dtype == np.int64


def test_make_pairs_accepts_string_prompt_ids() -> None:
    group = np.array(["b", "a", "b", "a", "c"])
    rank = np.array([1, 0, 0, 2, 0])
    pairs = make_pairs(group, rank)
    got = sorted(zip(pairs.better.tolist(), pairs.worse.tolist(), strict=True))
    assert got == [(1, 3), (2, 0)]


@settings(max_examples=50, deadline=None)
@given(rows)
def test_pairs_per_group_counts(data: list[tuple[int, int]]) -> None:
    if not data:
        return
    group = np.array([g for g, _ in data], dtype=np.int64)
    rank = np.array([r for _, r in data], dtype=np.int64)
    counts = pairs_per_group(group, rank, 7, 5)
    for g in range(7):
        members = [i for i in range(len(data)) if group[i] == g]
        expected = sum(1 for i in members for j in members if rank[i] < rank[j])
        assert counts[g] == expected


@settings(max_examples=50, deadline=None)
@given(rows, st.sampled_from([0.0, 0.2, 0.5, 0.9]), st.integers(0, 3))
def test_split_layout_partitions_pairs_by_prompt(
    data: list[tuple[int, int]], fraction: float, seed: int
) -> None:
    if not data:
        return
    group = np.array([g for g, _ in data], dtype=np.int64)
    rank = np.array([r for _, r in data], dtype=np.int64)
    lay = split_layout(group, rank, 7, 5, fraction, seed)
    order = lay.order
    # rows are sorted: train rows first, and each prompt lies wholly on one side
    assert sorted(order.tolist()) == list(range(len(data)))
    assert not lay.is_valid_row[order[: lay.n_train_rows]].any()
    assert lay.is_valid_row[order[lay.n_train_rows :]].all()
    for g in range(7):
        assert len(set(lay.is_valid_row[group == g].tolist())) <= 1
    # train pairs are exactly the pairs of train prompts, valid pairs those of the rest
    better, worse = order[lay.better], order[lay.worse]
    got = list(zip(better.tolist(), worse.tolist(), strict=True))
    expected = oracle_pairs(group.tolist(), rank.tolist())
    assert sorted(got) == sorted(expected)
    train = got[: lay.n_train_pairs]
    assert all(not lay.is_valid_row[i] for i, _ in train)
    assert all(lay.is_valid_row[i] for i, _ in got[lay.n_train_pairs :])
    if expected:
        assert lay.n_train_pairs > 0  # never hold out every prompt


def test_split_groups_is_seeded_and_sized() -> None:
    has_pairs = np.ones(200, dtype=bool)
    has_pairs[::10] = False  # these never go to validation
    a = split_groups(has_pairs, 0.25, seed=7)
    assert a.sum() == round(0.25 * 180)
    assert not a[~has_pairs].any()
    assert np.array_equal(a, split_groups(has_pairs, 0.25, seed=7))
    assert not np.array_equal(a, split_groups(has_pairs, 0.25, seed=8))
    assert not split_groups(has_pairs, 0.0, seed=7).any()
    one = np.array([False, True, False])
    assert not split_groups(one, 0.9, seed=0).any()  # the only prompt stays in train
