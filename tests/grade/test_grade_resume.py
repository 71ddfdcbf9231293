"""A `specc grade` killed with SIGKILL resumes from its cache: nothing lost,
duplicated or recomputed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from specc.grade import read_features, read_rows, run_grade

from .conftest import make_rows, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def committed(cache: Path) -> int:
    if not cache.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM grades").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_resume_after_sigkill(tmp_path: Path, artifact_dir: Path, tiny_gpt2: Path) -> None:
    n_rows = 240
    data = write_jsonl(tmp_path / "d.jsonl", make_rows(n_rows))
    total = 120 * 3 + 120 * 2  # refuse rows need 3 LLM propositions, comply rows 2
    out = tmp_path / "f.jsonl"
    cache = tmp_path / "c.sqlite"
    out.write_text("old\n", encoding="utf-8")  # an earlier result must survive the kill
    args = [sys.executable, "-m", "specc.grade", str(artifact_dir), str(data)]
    args += ["--grader", f"hf:{tiny_gpt2}", "-o", str(out), "--cache", str(cache)]
    args += ["--batch-size", "2", "--device", "cpu", "--dtype", "float32", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stderr=err)
    deadline = time.monotonic() + 90
    while committed(cache) < 40:
        assert proc.poll() is None, log.read_text(encoding="utf-8", errors="replace")
        assert time.monotonic() < deadline, "no grades were committed in time"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = committed(cache)
    assert 40 <= done < total  # killed midway
    assert out.read_text(encoding="utf-8") == "old\n"  # the output was never half-written

    summary = run_grade(
        artifact_dir,
        data,
        f"hf:{tiny_gpt2}",
        out,
        cache_path=cache,
        batch_size=2,
        progress=False,
        device="cpu",
        dtype="float32",
    )
    assert summary["cache_hits"] == done  # every finished grade was reused
    assert summary["computed"] == total - done  # and only the rest was computed
    assert committed(cache) == total
    feats = read_features(out)
    assert [f.id for f in feats] == [r.id for r in read_rows(data)]  # none lost or doubled
    assert not list(tmp_path.glob(".f.jsonl.*.tmp"))

    # The resumed values equal those of an uninterrupted run (first rows, fresh cache).
    fresh = run_grade(
        artifact_dir,
        data,
        f"hf:{tiny_gpt2}",
        tmp_path / "g.jsonl",
        limit=30,
        cache_path=tmp_path / "fresh.sqlite",
        progress=False,
        device="cpu",
        dtype="float32",
    )
    assert fresh["computed"] == 15 * 3 + 15 * 2
    for a, b in zip(read_features(tmp_path / "g.jsonl"), feats, strict=False):
        assert a.id == b.id
        for name, value in a.propositions.items():
            assert b.propositions[name] == pytest.approx(value, abs=1e-5)
