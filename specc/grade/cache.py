"""The on-disk grade cache: sqlite, one row per graded prompt.

The key is the sha256 of the grader's identity (backend, model weights fingerprint,
dtype, decoding settings), the answer words and the fully rendered prompt. So
re-grading the same rows costs nothing, editing one proposition's prompt re-grades
only that proposition, and a killed run resumes from what it had committed (the
database is in WAL mode and every batch is one transaction).

>>> cache = GradeCache(":memory:")
>>> k = cache_key('{"backend": "hf", ...}', "yes=yes;no=no", "Is it polite? Answer:")
>>> cache.put_many({k: 0.25})
>>> cache.get_many([k]) == {k: 0.25}
True
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from specc.errors import UsageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS grades (
    key TEXT PRIMARY KEY,
    p REAL NOT NULL
) WITHOUT ROWID
"""
_CHUNK = 500  # keys per SELECT ... IN (...), below sqlite's variable limit


def cache_key(identity: str, answers: str, prompt: str) -> str:
    """sha256 hex of the three parts, length-prefixed so that no two splits collide."""
    h = hashlib.sha256()
    for part in (identity, answers, prompt):
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def default_cache_path(out_path: str | Path) -> Path:
    """``$SPECC_GRADE_CACHE`` when set (one cache shared by every run), else next to
    the output: ``features.jsonl`` -> ``features.jsonl.cache.sqlite``."""
    shared = os.environ.get("SPECC_GRADE_CACHE")
    if shared:
        return Path(shared)
    out = Path(out_path)
    return out.with_name(out.name + ".cache.sqlite")


class GradeCache:
    """A key to P(yes) store. ``path`` may be ``":memory:"`` (nothing persists)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"{path}: cannot create the cache folder: {exc}") from None
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            # "Delete it" only for a file: not /dev/null, a folder or a pipe.
            remedy = "delete it or pass" if Path(self.path).is_file() else "it is not a file: pass"
            raise UsageError(
                f"{path}: cannot open the grade cache ({exc}); {remedy} another --cache"
            ) from None
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Iterable[str]) -> dict[str, float]:
        """The cached values of those ``keys`` that are present. A value that is not
        a probability (a cache edited, corrupted or written by something else: text,
        NULL, 5.0) counts as missing, so it is graded again and replaced."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, float] = {}
        with self._errors():
            for i in range(0, len(wanted), _CHUNK):
                part = wanted[i : i + _CHUNK]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(f"SELECT key, p FROM grades WHERE key IN ({marks})", part)
                found.update((str(k), float(p)) for k, p in rows if _probability(p))
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        return found

    def put_many(self, values: Mapping[str, float]) -> None:
        """Store ``values`` in one transaction (committed when this returns)."""
        if not values:
            return
        with self._errors(), self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO grades (key, p) VALUES (?, ?)",
                [(k, float(v)) for k, v in values.items()],
            )

    def __len__(self) -> int:
        with self._errors():
            (n,) = self._db.execute("SELECT COUNT(*) FROM grades").fetchone()
        return int(n)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """A database error (a full disk, a file that is not this cache's kind) as a
        UsageError naming the cache, for every command that grades."""
        try:
            yield
        except sqlite3.Error as exc:
            raise UsageError(
                f"{self.path}: the grade cache failed: {exc}\n  = hint: free some disk "
                "space, or pass another --cache (or delete this one); grades committed so "
                "far are kept"
            ) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> GradeCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


def _probability(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0.0 <= value <= 1.0
    )


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
