"""The sqlite grade cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from specc.errors import UsageError
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


def test_a_value_that_is_not_a_probability_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    """A cache edited or written by something else (``$SPECC_GRADE_CACHE`` is shared):
    text, NULL, a blob or 5.0 used to end in exit 70 or a feature of 5.0."""
    path = tmp_path / "grades.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE grades (key TEXT PRIMARY KEY, p) WITHOUT ROWID")
    bad = {"text": "abc", "null": None, "blob": b"\0", "big": 5.0, "neg": -0.5, "inf": 1e999}
    db.executemany("INSERT INTO grades VALUES (?, ?)", [*bad.items(), ("good", 0.5), ("one", 1)])
    db.commit()
    db.close()
    with GradeCache(path) as cache:
        assert cache.get_many([*bad, "good", "one"]) == {"good": 0.5, "one": 1.0}
        cache.put_many({"text": 0.25})
        assert cache.get_many(["text"]) == {"text": 0.25}


def test_a_database_of_another_kind_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    """Every grading command (grade, eval, test, specc.load) goes through these
    methods: `specc eval` and `specc test` ended in exit 70."""
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE grades (name TEXT, value TEXT)")
    db.commit()
    db.close()
    with GradeCache(path) as cache:
        for call in (lambda: cache.get_many(["k"]), lambda: cache.put_many({"k": 0.5})):
            with pytest.raises(UsageError, match=rf"(?s){path}: the grade cache failed: .*--cache"):
                call()


@pytest.mark.parametrize("path", ["/dev/null", "."])
def test_a_cache_that_is_not_a_file_is_never_to_be_deleted(path: str) -> None:
    """SPECC_GRADE_CACHE=/dev/null: the hint said "delete it"."""
    with pytest.raises(UsageError, match="it is not a file: pass another --cache") as exc:
        GradeCache(path)
    assert "delete" not in str(exc.value)
