"""`specc fit` as a process: no torch, bounded values, the report's timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import feature_rows, make_artifact, run_specc, write_rows


def _weights_bytes(artifact: Path) -> dict[str, bytes]:
    from specc.weights import WEIGHTS_DIR

    unit = artifact / WEIGHTS_DIR
    files = {str(p.relative_to(unit)): p.read_bytes() for p in unit.rglob("*") if p.is_file()}
    assert files, "no weights were written"
    return files


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_artifact(tmp_path_factory.mktemp("fit-cli"))


def test_a_fit_process_imports_neither_torch_nor_transformers(
    artifact: Path, tmp_path: Path
) -> None:
    features = write_rows(tmp_path / "features.jsonl", feature_rows())
    code = (
        "import sys\n"
        "from specc.cli import main\n"
        f"rc = main(['fit', {str(artifact)!r}, {str(features)!r}, '--report', "
        f"{str(tmp_path / 'report')!r}])\n"
        "heavy = {'torch', 'transformers'} & set(sys.modules)\n"
        "assert not heavy, f'a fit imported {heavy}'\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    timings = report["timings_s"]
    assert set(timings) == {"startup", "imports", "read", "fit", "weights", "picture"}
    assert all(v is None or v >= 0 for v in timings.values())
    assert report["policy"] == {"name": "fit-test", "version": "2.1.0"}
    assert report["data"] == str(features)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (1, 1e308, "feature 'prop:b' is 1e+308, but prop features are probabilities in [0, 1]"),
        (4, -0.5, "feature 'class:less_good' is -0.5, but class features are probabilities"),
        (None, 1e308, "base_reward is 1e+308 (beyond the bound of +-1e+06)"),
    ],
)
def test_an_out_of_bounds_value_is_exit_1_at_its_line_and_saves_nothing(
    artifact: Path, tmp_path: Path, column: int | None, value: float, message: str
) -> None:
    good = write_rows(tmp_path / "good.jsonl", feature_rows())
    assert run_specc("fit", str(artifact), str(good), "--report", str(tmp_path)).returncode == 0
    before = _weights_bytes(artifact)
    rows = feature_rows(seed=1)
    if column is None:
        rows[6]["base_reward"] = value
    else:
        rows[6]["features"][column] = value
    bad = write_rows(tmp_path / "bad.jsonl", rows)
    done = run_specc("fit", str(artifact), str(bad), "--report", str(tmp_path / "r2"))
    assert done.returncode == 1, done.stderr
    assert f"{bad}:7: {message}" in done.stderr
    assert "Traceback" not in done.stderr
    assert _weights_bytes(artifact) == before  # untouched
    assert not (tmp_path / "r2" / "report.json").exists()


def test_an_id_with_a_line_separator_fits(artifact: Path, tmp_path: Path) -> None:
    rows = feature_rows()
    rows[0]["id"] = "one\u2028row"
    rows[1]["prompt_id"] = rows[0]["prompt_id"] = "prompt\u2029zero"
    path = write_rows(tmp_path / "features.jsonl", rows)
    assert "\u2028" in path.read_text(encoding="utf-8")  # written raw
    done = run_specc("fit", str(artifact), str(path), "--report", str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["response_types"]["refuse"]["rows"] == len(rows)
