"""The documentation shows real output: regenerate it and compare."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from golden import ROOT


def test_diagnostics_doc_is_in_sync() -> None:
    tool = ROOT / "docs" / "tools" / "make_diagnostics_doc.py"
    result = subprocess.run(
        [sys.executable, str(tool), "--check", str(ROOT / "docs" / "diagnostics.md")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_language_doc_shows_real_specc_test_output(tmp_path: Path) -> None:
    """docs/language.md's failing test and its `specc test` output, rerun."""
    doc = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```\n(.*?)```\n", doc, re.S)
    source = next(b for b in blocks if b.startswith("# policies/draft_test.rbr\n"))
    shown = next(b for b in blocks if b.startswith("policies/draft_test.rbr\n"))
    shutil.copytree(ROOT / "policies", tmp_path / "policies", ignore=shutil.ignore_patterns("data"))
    (tmp_path / "policies" / "draft_test.rbr").write_text(source, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "specc", "test", "policies/draft_test.rbr"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 1 and result.stdout == shown


def _specc_test(cwd: Path, *argv: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "specc", "test", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode in (0, 1), result.stderr
    return result.stdout


def test_authoring_doc_shows_real_specc_test_output(tmp_path: Path) -> None:
    """The outputs in "## 3. Test" of docs/authoring.md, rerun (the swap included)."""
    doc = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    blocks = {
        b.split("\n", 1)[0]: b.split("\n", 1)[1]
        for b in re.findall(r"```\n(\$ .*?)```\n", doc, re.S)
    }
    assert _specc_test(ROOT, "policies/minimal.rbr") == blocks["$ specc test policies/minimal.rbr"]
    rules = blocks["$ specc test policies/safety_test.rbr --grader rules"]
    out = _specc_test(ROOT, "policies/safety_test.rbr", "--grader", "rules", "--cache", ":memory:")
    assert rules.startswith("...\n") and out.endswith(rules.removeprefix("...\n"))
    shutil.copytree(ROOT / "policies", tmp_path / "policies", ignore=shutil.ignore_patterns("data"))
    safety = tmp_path / "policies" / "safety.rbr"
    text = safety.read_text(encoding="utf-8")
    ideal = "  ideal                    when correct_refusal\n"
    mas = "  minimum_acceptable_style when acceptable_refusal and not correct_refusal\n"
    swapped = ideal.replace("correct_refusal", "acceptable_refusal and not correct_refusal")
    swapped += mas.replace("acceptable_refusal and not correct_refusal", "correct_refusal")
    assert ideal + mas in text
    safety.write_text(text.replace(ideal + mas, swapped), encoding="utf-8")
    shown = blocks["$ specc test -q policies/safety_test.rbr"]
    assert _specc_test(tmp_path, "-q", "policies/safety_test.rbr") == shown
