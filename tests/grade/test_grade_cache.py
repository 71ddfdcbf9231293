"""The sqlite grade cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.grade.cache import GradeCache, cache_key, default_cache_path


def test_key_depends_on_every_part() -> None:
    base = cache_key("model-a", "yes=yes;no=no", "prompt")
    assert base == cache_key("model-a", "yes=yes;no=no", "prompt")
    assert base != cache_key("model-b", "yes=yes;no=no", "prompt")
    assert base != cache_key("model-a", "yes=Yes;no=no", "prompt")
    assert base != cache_key("model-a", "yes=yes;no=no", "prompt ")
    # Length-prefixed parts: moving text across a boundary changes the key.
    assert cache_key("ab", "c", "d") != cache_key("a", "bc", "d")


def test_values_persist_across_connections(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "grades.sqlite"
    with GradeCache(path) as cache:
        cache.put_many({"k1": 0.25, "k2": 1.0})
        assert cache.get_many(["k1", "k3"]) == {"k1": 0.25}
        assert (cache.hits, cache.misses) == (1, 1)
    with GradeCache(path) as cache:
        assert len(cache) == 2
        many = {f"k{i}": i / 2000 for i in range(1200)}  # more keys than one SELECT holds
        cache.put_many(many)
        assert cache.get_many(many) == many


def test_default_path_is_next_to_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPECC_GRADE_CACHE", raising=False)
    assert default_cache_path(tmp_path / "f.jsonl") == tmp_path / "f.jsonl.cache.sqlite"
    monkeypatch.setenv("SPECC_GRADE_CACHE", str(tmp_path / "shared.sqlite"))
    assert default_cache_path(tmp_path / "f.jsonl") == tmp_path / "shared.sqlite"
