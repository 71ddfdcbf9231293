"""report.json, report.png and the terminal table."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from specc.fit import FitResult, FitSettings, fit_response_type, summary_table, write_report

pytest.importorskip("torch")


def result(name: str, seed: int, tiers: tuple[str, ...] = ("ideal", "ok", "bad")) -> FitResult:
    rng = np.random.default_rng(seed)
    n = 240
    group = np.repeat(np.arange(60), 4)
    rank = rng.integers(0, len(tiers), n)
    x = np.stack([-rank + rng.normal(size=n), rng.normal(size=n)], axis=1)
    return fit_response_type(
        x,
        group,
        rank,
        tier_names=list(tiers),
        feature_names=["prop:a", "prop:b"],
        settings=FitSettings(optimizer="lbfgs", valid_fraction=0.2),
        response_type=name,
        feature_polarity={"a": "bad"},
    )


@pytest.fixture(scope="module")
def results() -> list[FitResult]:
    return [result("Hard Refuse", 0), result("Comply", 1, ("ideal", "less_good"))]


def test_report_json_and_png(tmp_path: Path, results: list[FitResult]) -> None:
    paths = write_report(results, tmp_path / "out", spec_hash="ab" * 32, extra={"rows": "x"})
    data = json.loads(paths.json.read_text())
    assert data["format"] == "specc.fit-report/1" and data["spec_hash"] == "ab" * 32
    assert data["rows"] == "x"
    assert list(data["response_types"]) == ["Hard Refuse", "Comply"]
    hard = data["response_types"]["Hard Refuse"]
    assert hard["train"]["pairs"] == results[0].train.n_pairs > 0
    assert hard["valid"]["pairs"] == results[0].valid.n_pairs > 0  # type: ignore[union-attr]
    assert hard["settings"]["optimizer"] == "lbfgs"
    assert [t["tier"] for t in hard["centred_by_tier"]] == ["ideal", "ok", "bad"]
    assert hard["sign_warnings"][0]["feature"] == "prop:a"
    assert paths.png is not None
    raw = paths.png.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    assert width > 500 and height > 300
    from matplotlib.image import imread

    pixels = imread(str(paths.png))
    assert pixels.shape[:2] == (height, width)
    assert pixels[..., :3].std() > 0.05  # something was drawn


def test_summary_table_is_aligned(results: list[FitResult]) -> None:
    text = summary_table(results, show_weights=True)
    table = text.split("\n\n")[0].splitlines()
    assert table[0].startswith("response type") and "valid acc" in table[0]
    assert len({len(line) for line in table}) == 1  # right-aligned columns line up
    assert table[2].startswith("Hard Refuse") and table[3].startswith("Comply")
    assert f"{results[0].valid.pair_accuracy:.3f}" in table[2]  # type: ignore[union-attr]
    assert "warning: Hard Refuse: prop:a: weight" in text
    assert "prop:b" in text.split("Comply:")[1]


def test_fit_and_weights_modules_import_lazily() -> None:
    code = (
        "import sys, specc.fit, specc.weights\n"
        "heavy = {'torch', 'matplotlib', 'safetensors'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
