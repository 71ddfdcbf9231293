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
