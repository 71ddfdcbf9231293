"""``specc grade``: rows in, feature rows out, with a progress bar and a summary.

:func:`run_grade` is what the ``specc`` CLI calls; ``python -m specc.grade`` runs it
on its own with the same options::

    python -m specc.grade out/minimal data.jsonl --grader hf:models/grader -o features.jsonl

Grades are committed to the sqlite cache batch by batch and the output is written
atomically at the end, so a killed run loses nothing: run it again and it picks up
the finished grades from the cache.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specc.artifact import load_artifact
from specc.errors import UsageError
from specc.grade.base import Answers, LabelsGrader, RulesGrader
from specc.grade.cache import GradeCache, default_cache_path
from specc.grade.data import read_rows
from specc.grade.features import GradeStats, check_rows, extract_features, write_features
from specc.grade.graders import close_grader, make_grader
from specc.grade.progress import ProgressBar
from specc.oserrors import os_error


def check_output(path: str | Path) -> None:
    """Fail now, not after hours of grading, when ``path`` cannot be written: it is a
    folder, its folder cannot be created, or a file cannot be created beside it (no
    permission, a read-only or full disk). Probes with a temp file it removes."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(
            f"{path}: is a folder; -o names the features file to write"
            f"\n  = hint: e.g. -o {target / 'features.jsonl'}"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, target.parent, "create the output folder") from None
    try:
        fd, probe = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".probe")
    except OSError as exc:
        raise os_error(exc, path, "write") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def run_grade(
    artifact_dir: str | Path,
    data_path: str | Path,
    grader_spec: str,
    out_path: str | Path,
    limit: int | None = None,
    cache_path: str | Path | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    *,
    device: str = "auto",
    dtype: str = "auto",
    concurrency: int = 8,
    timeout: float = 60.0,
    top_logprobs: int = 20,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Grade ``data_path`` against the artifact and write ``out_path`` (JSONL).

    ``cache_path`` defaults to :func:`~specc.grade.cache.default_cache_path` (next to
    the output);
    ``batch_size`` to the grader's own (16 rows for hf, 4 x concurrency for openai).
    With ``progress`` a bar and a one-line summary go to stderr; ``notify`` gets the
    openai client's one-line retry notices. The output is checked to be writable
    before anything is graded, and an OS error while writing it (a full disk) leaves
    any earlier file as it was. Returns the summary:
    ``rows``, ``llm_prompts``, ``cache_hits``, ``computed``, ``rules``, ``labels``,
    ``seconds``, ``rows_per_s``, ``grader``, ``cache``, ``out``."""
    t0 = time.monotonic()
    if limit is not None and limit < 0:
        raise UsageError(f"--limit must be 0 or more, not {limit}")
    check_output(out_path)
    with contextlib.suppress(OSError):  # a missing file is for read_rows to report
        if os.path.samefile(out_path, data_path):
            raise UsageError(
                f"{out_path}: -o is the data file itself; writing the features would "
                "replace its rows\n  = hint: give another file, e.g. -o features.jsonl"
            )
    artifact = load_artifact(artifact_dir)
    rows = read_rows(data_path, limit=limit)
    check_rows(artifact, rows)  # bad rows fail before a model is loaded
    grader = make_grader(
        grader_spec,
        answers=Answers.of(artifact),
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        concurrency=concurrency,
        timeout=timeout,
        top_logprobs=top_logprobs,
        notify=notify,
    )
    llm = not isinstance(grader, (LabelsGrader, RulesGrader))
    cache = GradeCache(cache_path or default_cache_path(out_path)) if llm else None
    stats = GradeStats()
    bar = ProgressBar() if progress else None
    try:
        feats = extract_features(artifact, rows, grader, cache=cache, progress=bar, stats=stats)
    finally:
        if cache is not None:
            cache.close()
        close_grader(grader)
    try:
        write_features(out_path, feats)
    except OSError as exc:
        raise os_error(exc, out_path, "write") from None
    seconds = time.monotonic() - t0
    summary: dict[str, Any] = {
        "rows": stats.rows,
        "llm_prompts": stats.llm_prompts,
        "cache_hits": stats.cache_hits,
        "computed": stats.computed,
        "rules": stats.rules,
        "labels": stats.labels,
        "seconds": round(seconds, 3),
        "rows_per_s": round(stats.rows / seconds, 2) if seconds > 0 else None,
        "grader": grader.source,
        "cache": str(cache.path) if cache is not None else None,
        "out": str(out_path),
    }
    if progress:
        print(format_summary(summary), file=sys.stderr, flush=True)
    return summary


def format_summary(s: dict[str, Any]) -> str:
    """``graded 351 rows in 12.3s (28.5 rows/s): 2106 LLM grades (1800 cached, ...)``."""
    parts = []
    if s["llm_prompts"]:
        parts.append(
            f"{s['llm_prompts']} LLM grades ({s['cache_hits']} from the cache, "
            f"{s['computed']} computed by {s['grader']})"
        )
    if s["labels"]:
        parts.append(f"{s['labels']} from labels")
    if s["rules"]:
        parts.append(f"{s['rules']} by extractors")
    per_s = s["rows_per_s"]
    rate = (
        ""
        if per_s is None
        else f", {per_s:.0f} rows/s"
        if per_s >= 100
        else f", {per_s:.3g} rows/s"
    )
    return (
        f"graded {s['rows']} rows in {s['seconds']:.1f}s{rate}: "
        + ("; ".join(parts) or "nothing to grade")
        + f" -> {s['out']}"
    )
