"""Start-up discipline: `import specc` and `specc check` load no heavy libraries."""

from __future__ import annotations

import subprocess
import sys

from golden import ROOT

HEAVY = ("torch", "transformers", "numpy", "matplotlib", "safetensors")


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    return {m.split(".")[0] for m in out.split()}


def test_import_specc_is_light() -> None:
    loaded = _loaded_after("import specc")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_specc_check_is_light() -> None:
    code = (
        "from specc.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stderr(io.StringIO()):\n"
        "    assert main(['check', 'policies/safety.rbr']) == 0\n"
    )
    loaded = _loaded_after(code)
    assert "lark" in loaded  # it really parsed
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_specc_test_without_a_grader_is_light() -> None:
    code = (
        "from specc.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['test', 'policies/safety_test.rbr', 'policies/minimal.rbr']) == 0\n"
    )
    loaded = _loaded_after(code)
    assert "lark" in loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
