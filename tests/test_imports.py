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


def test_model_options_and_quiet_do_not_load_the_grading_package() -> None:
    """``--device``'s default is checked while parsing and ``-q`` quiets other
    libraries; neither may import ``specc.grade`` (about 40 ms) for a command that
    grades nothing."""
    code = (
        "from specc.cli import main\n"
        "import contextlib, io, sys\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['test', '-q', '--device', 'cpu', 'policies/safety_test.rbr']) == 0\n"
        "print('specc.grade' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    assert out.split() == ["False"]
