"""What the commands print: ``--json`` results on stdout, and ``-q`` silencing every
notice, progress bar and warning, specc's and other libraries' (transformers'
loading bars and FutureWarnings). Real ``python -m specc`` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from golden import ROOT
from mini_policy import MINI_SPEC

SAFETY = ROOT / "policies" / "safety.rbr"
DATA = ROOT / "policies" / "data" / "safety.jsonl"


def specc(
    *args: str | Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1", **(env or {})}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "specc", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        input=stdin,
        timeout=600,
    )


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("out") / "safety"
    done = specc("build", SAFETY, "--data", DATA, "-o", out, "--limit", "300", "-q", "--json")
    assert done.stderr == ""
    return out, as_json(done)


def test_build_json(built: tuple[Path, Any]) -> None:
    out, result = built
    assert result["grade"]["rows"] == 300  # --limit
    assert result["grade"]["out"] == str(out / "features.jsonl")
    fit = result["fit"]
    types = {"hard_refuse", "safe_refuse_1", "safe_refuse_2", "comply"}
    assert fit["response_types"] and set(fit["response_types"]) <= types
    assert fit["weights"] == str(out / "weights")
    assert fit == {**json.loads((out / "report.json").read_text()), **fit}


def test_fit_json_and_quiet(built: tuple[Path, Any], tmp_path: Path) -> None:
    out, _ = built
    done = specc("fit", out, out / "features.jsonl", "--report", tmp_path, "--json", "-q")
    result = as_json(done)
    assert done.stderr == ""
    assert result["report"] == str(tmp_path / "report.json")
    assert result["response_types"]
    for metrics in result["response_types"].values():
        assert 0.0 <= metrics["train"]["pair_accuracy"] <= 1.0


def test_grade_compile_check_and_explain_json(built: tuple[Path, Any], tmp_path: Path) -> None:
    out, _ = built
    summary = as_json(
        specc("grade", out, DATA, "--grader", "labels", "-o", tmp_path / "f.jsonl", "--json")
    )
    assert summary["rows"] > 0 and summary["grader"] == "labels"
    compiled = as_json(specc("compile", SAFETY, "-o", tmp_path / "art", "--json"))
    assert compiled["name"] == "safety" and len(compiled["spec_hash"]) == 64
    assert as_json(specc("check", SAFETY, "--json")) == []
    row = DATA.read_text(encoding="utf-8").splitlines()[0]
    explained = as_json(specc("explain", out, "-", "--json", "-q", stdin=row))
    assert "total" in explained


def test_quiet_silences_other_libraries(tmp_path: Path) -> None:
    """Grading with a real (tiny) transformers model prints specc's progress and,
    with transformers at info verbosity (as a user's environment may set it), its log
    lines; -q prints nothing at all."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import build_tiny_model

    model = build_tiny_model(tmp_path / "gpt2", arch="gpt2")
    spec = tmp_path / "quiet.rbr"
    spec.write_text(MINI_SPEC, encoding="utf-8")
    rows = [
        {"id": "a", "prompt": "Hi", "completion": "Sorry, no.", "response_type": "Comply"},
        {"id": "b", "prompt": "Hi", "completion": "Hello!", "response_type": "Comply"},
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert specc("compile", spec, "-o", tmp_path / "art").returncode == 0
    grade = ["grade", tmp_path / "art", data, "--grader", f"hf:{model}", "--device", "cpu"]

    chatty = {"TRANSFORMERS_VERBOSITY": "info"}
    loud = specc(*grade, "-o", tmp_path / "loud.jsonl", env=chatty)
    assert loud.returncode == 0, loud.stderr
    assert "grading [" in loud.stderr  # specc's own progress
    assert "[transformers] loading configuration file" in loud.stderr  # the library's

    quiet = specc(*grade, "-o", tmp_path / "quiet.jsonl", "-q", env=chatty)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert (tmp_path / "quiet.jsonl").read_text() == (tmp_path / "loud.jsonl").read_text()


def test_output_cut_by_a_closed_pipe_is_not_success(tmp_path: Path) -> None:
    """``specc check bad.rbr 2>&1 | head`` (or any reader that stops early): the
    diagnostics were not all printed, so the exit code is 141 (a shell's SIGPIPE),
    never 0 for a spec with errors, and no traceback or "Exception ignored"."""
    props = "".join(f'proposition p{i} {{ question = "q" }}\n' for i in range(3000))
    spec = tmp_path / "bad.rbr"
    spec.write_text(f'policy "p" version "1"\n{props}derived d = nosuch\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "specc", "check", str(spec), "--max-diagnostics", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # more than a pipe holds follows it
    proc.stdout.close()
    assert proc.wait(timeout=600) == 141
    assert b"warning[W001]" in first
