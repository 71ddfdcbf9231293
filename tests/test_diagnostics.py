"""Negative fixtures: each bad spec in fixtures/diagnostics gives the expected text.

The file name starts with the code the fixture is about; the test checks that the
code is reported and that the whole rendered output matches ``<name>.expected``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golden import FIXTURES, assert_golden

from specc.checker import check_file
from specc.cli import main
from specc.errors import CODES, render_all

CASES = sorted((FIXTURES / "diagnostics").glob("*.rbr"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_fixture_reports_its_code(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(path.parent)
    report = check_file(path.name, alone=True)  # as `specc check` loads it
    code = path.stem.split("_")[0]
    assert code in {d.code for d in report.diagnostics}, [d.code for d in report.diagnostics]
    text = render_all(report.diagnostics, report.load.sources)
    assert_golden(path.with_suffix(".expected"), text + "\n")


def test_every_code_has_a_fixture_or_a_reason() -> None:
    covered = {p.stem.split("_")[0] for p in CASES}
    # E004 (unreadable file) and E012 (template errors) are tested in test_loader.py,
    # E205 (a BDD over its node budget) in test_checker.py.
    missing = set(CODES) - covered - {"E004", "E012", "E205"}
    assert not missing, f"codes without a negative fixture: {sorted(missing)}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_cli_exit_code_and_json(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(path.parent)
    status = main(["check", "--format", "json", path.name])
    out = json.loads(capsys.readouterr().out)
    has_error = any(d["severity"] == "error" for d in out)
    assert status == (1 if has_error else 0)
    for d in out:
        assert d["line"] >= 1 and d["col"] >= 1 and d["code"] in CODES


def _many_warnings(tmp_path: Path, n: int) -> Path:
    props = "".join(f'proposition p{i} {{ match keywords ["w{i}"] }}\n' for i in range(n))
    path = tmp_path / "many.rbr"
    path.write_text('policy "t" version "1"\n' + props + "derived bad = nope\n")
    return path


def test_printed_diagnostics_are_capped_with_a_count_per_code(tmp_path: Path) -> None:
    report = check_file(_many_warnings(tmp_path, 120))
    assert len(report.diagnostics) == 122  # 121 W001 (the derived too), 1 E101
    text = render_all(report.diagnostics, report.load.sources, limit=50)
    assert text.count("warning[W001]") == 49 and text.count("error[E101]") == 1  # errors first
    assert "... and 72 more: 72 W001 (--max-diagnostics 0 prints all)" in text
    assert text.endswith("1 error, 121 warnings")
    assert render_all(report.diagnostics, report.load.sources, limit=0).count("[W001]") == 121


def test_cli_cap_option_and_json_keeps_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_many_warnings(tmp_path, 60))
    assert main(["check", path]) == 1
    assert capsys.readouterr().err.count("warning[W001]") == 49
    assert main(["check", "--max-diagnostics", "3", path]) == 1
    assert "... and 59 more: 59 W001" in capsys.readouterr().err
    assert main(["check", "--max-diagnostics", "0", path]) == 1
    assert capsys.readouterr().err.count("warning[W001]") == 61
    assert main(["check", "--format", "json", path]) == 1
    assert len(json.loads(capsys.readouterr().out)) == 62
