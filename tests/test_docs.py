"""The documentation shows real output: regenerate it and compare."""

from __future__ import annotations

import subprocess
import sys

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
