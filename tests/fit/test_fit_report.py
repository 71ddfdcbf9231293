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
from specc.fit.report import report_header


def result(
    name: str, seed: int, tiers: tuple[str, ...] = ("ideal", "ok", "bad"), base: bool = False
) -> FitResult:
    rng = np.random.default_rng(seed)
    n = 240
    group = np.repeat(np.arange(60), 4)
    rank = rng.integers(0, len(tiers), n)
    x = 1 / (1 + np.exp(-np.stack([-rank + rng.normal(size=n), rng.normal(size=n)], axis=1)))
    return fit_response_type(
        x,
        group,
        rank,
        tier_names=list(tiers),
        feature_names=["prop:a", "prop:b"],
        base_reward=rng.normal(size=n),
        settings=FitSettings(optimizer="lbfgs", valid_fraction=0.2, base_reward=base),
        response_type=name,
        feature_polarity={"a": "bad"},
    )


@pytest.fixture(scope="module")
def results() -> list[FitResult]:
    return [result("Hard Refuse", 0, base=True), result("Comply", 1, ("ideal", "less_good"))]


def test_report_json_and_png(tmp_path: Path, results: list[FitResult]) -> None:
    extra = {"rows": "x", "policy": {"name": "safety", "version": "1.2.0"}, "data": "f.jsonl"}
    paths = write_report(
        results, tmp_path / "out", spec_hash="ab" * 32, extra=extra, timings={"read": 0.25}
    )
    data = json.loads(paths.json.read_text())
    assert data["format"] == "specc.fit-report/1" and data["spec_hash"] == "ab" * 32
    assert data["rows"] == "x" and data["policy"]["name"] == "safety"
    assert set(data["timings_s"]) == {"read", "picture"} and data["timings_s"]["read"] == 0.25
    assert report_header(data)[:3] == ["policy safety 1.2.0", f"spec {'ab' * 8}", "data f.jsonl"]
    assert list(data["response_types"]) == ["Hard Refuse", "Comply"]
    hard = data["response_types"]["Hard Refuse"]
    assert hard["train"]["pairs"] == results[0].train.n_pairs > 0
    assert hard["valid"]["pairs"] == results[0].valid.n_pairs > 0  # type: ignore[union-attr]
    assert hard["settings"]["optimizer"] == "lbfgs"
    assert [t["tier"] for t in hard["centred_by_tier"]] == ["ideal", "ok", "bad"]
    assert hard["sign_warnings"][0]["feature"] == "prop:a"
    # the figures of the picture: error rates by tier, the base reward alone, weights
    by_tier = hard["valid"]["error_rate_by_tier"]
    assert list(by_tier) == ["ok", "bad"]
    assert sum(t["ideal_pairs"] for t in by_tier.values()) == hard["valid"]["ideal_pairs"]
    assert sum(t["errors"] for t in by_tier.values()) == round(
        hard["valid"]["error_rate"] * hard["valid"]["ideal_pairs"]
    )
    assert hard["base_reward_alone"]["valid"]["pairs"] == hard["valid"]["pairs"]
    assert data["response_types"]["Comply"]["base_reward_alone"] is None
    chart = hard["weights_chart"]
    assert [c["feature"] for c in chart] == ["prop:a", "prop:b"]
    assert chart[0]["expected"] == "bad" and chart[0]["agrees"] is False  # the sign warning
    assert chart[1]["expected"] is None and chart[1]["agrees"] is None
    assert paths.png is not None
    raw = paths.png.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    assert width > 500 and height > 300
    from PIL import Image

    pixels = np.asarray(Image.open(paths.png).convert("RGB"), dtype=np.float64) / 255
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0.05  # something was drawn
    # the tier colours of both response types' violins are on it
    for colour in ((0x00, 0x9E, 0x73), (0x56, 0xB4, 0xE9)):
        light = np.array([c + (255 - c) * 0.45 for c in colour]) / 255
        assert (np.abs(pixels - light).max(axis=2) < 0.02).sum() > 500


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
        "heavy = {'torch', 'matplotlib', 'PIL', 'safetensors'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
