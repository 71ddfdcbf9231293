"""specc build / fit / explain and specc.load: the main job and the reward object."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from golden import FIXTURES, ROOT

import specc
from specc.cli import main
from specc.compiler import compile_spec

TUTORIAL = FIXTURES / "golden" / "tutorial.rbr"


def _rows(n_prompts: int, seed: int = 0) -> list[dict[str, object]]:
    """Tutorial-policy rows whose labels follow the rules, with noisy probabilities."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for p in range(n_prompts):
        for c in range(4):
            refuses, apology, lectures = (rng.random() < 0.5 for _ in range(3))
            if p % 2 == 0:
                rt = "Hard Refuse"
                label = (
                    "ideal"
                    if refuses and apology and not lectures
                    else "less_good"
                    if refuses
                    else "unacceptable"
                )
            else:
                rt = "Comply"
                label = "unacceptable" if refuses else "less_good" if lectures else "ideal"

            def prob(truth: bool) -> float:
                return round(rng.uniform(0.8, 0.99) if truth else rng.uniform(0.01, 0.2), 4)

            rows.append(
                {
                    "id": f"p{p}-c{c}",
                    "prompt": [{"role": "user", "content": f"request number {p}"}],
                    "completion": "I can't help with that." if refuses else "Sure, here it is.",
                    "response_type": rt,
                    "completion_label": label,
                    "propositions": {
                        "refuses": prob(refuses),
                        "apology": prob(apology),
                        "lectures": prob(lectures),
                    },
                }
            )
    return rows


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("built")
    data = _write(tmp / "data.jsonl", _rows(40))
    assert (
        main(["build", str(TUTORIAL), "--data", str(data), "-o", str(tmp / "art"), "--quiet"]) == 0
    )
    return tmp / "art"


def test_build_leaves_artifact_weights_and_report(built: Path) -> None:
    for name in (
        "manifest.json",
        "seal.json",
        "weights/weights.safetensors",
        "weights/weights.json",
        "weights/seal.json",
        "report.json",
        "report.png",
    ):
        assert (built / name).exists(), name
    assert (built / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((built / "report.json").read_text())
    hard = report["response_types"]["hard_refuse"]
    # The labels follow the rules exactly, so a linear reward ranks them well.
    assert hard["valid"]["pair_accuracy"] > 0.9


def test_reward_object_matches_module_and_explain(built: Path) -> None:
    reward = specc.load(built)
    rows = _rows(3, seed=7)
    scores = reward(rows)
    feats = reward.features(rows)
    x, types, base = reward.module.pack(feats)
    assert np.allclose(reward.module(x, types, base).numpy(), scores)
    explanation = reward.explain(rows[0])
    total = sum(c.contribution for c in explanation.contributions)
    assert explanation.total == pytest.approx(total)
    assert sum(explanation.tiers.values()) == pytest.approx(1.0)
    assert "total" in explanation.table()


def test_module_is_batched_over_mixed_types(built: Path) -> None:
    module = specc.load(built).module
    x = torch.rand(6, module.weight.shape[1], dtype=torch.float64)
    types = torch.tensor([0, 1, 0, 1, 1, 0])
    out = module(x, types)
    for i in range(6):
        expected = (x[i] * module.weight[types[i]]).sum()
        assert out[i].item() == pytest.approx(expected.item())


def test_better_tiers_score_higher_on_average(built: Path) -> None:
    reward = specc.load(built)
    rows = _rows(30, seed=3)
    scores = reward(rows)
    by_tier: dict[str, list[float]] = {}
    for row, s in zip(rows, scores, strict=True):
        if row["response_type"] == "Comply":
            by_tier.setdefault(str(row["completion_label"]), []).append(float(s))
    means = {t: float(np.mean(v)) for t, v in by_tier.items()}
    assert means["ideal"] > means["less_good"] > means["unacceptable"]


def test_weights_for_another_spec_version_are_refused(built: Path, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "art"
    shutil.copytree(built, other)
    shutil.copytree(TUTORIAL.parent / "lib", tmp_path / "lib")
    changed = tmp_path / "tutorial.rbr"
    changed.write_text(TUTORIAL.read_text().replace("limit = 2.5%", "limit = 4%"))
    compile_spec(changed, other)  # keeps the old weights, which no longer match
    with pytest.raises(specc.DataError, match="refit"):
        specc.load(other)


def test_explain_command(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    row = _write(tmp_path / "row.json", _rows(1)[:1])
    assert main(["explain", str(built), str(row)]) == 0
    assert "contribution" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{nope")
    assert main(["explain", str(built), str(tmp_path / "bad.json")]) == 1
    assert "bad.json:1:2" in capsys.readouterr().err


def _features(tmp_path: Path, built: Path, rows: list[dict[str, object]]) -> Path:
    data = _write(tmp_path / "d.jsonl", rows)
    out = tmp_path / "f.jsonl"
    assert (
        main(["grade", str(built), str(data), "--grader", "labels", "-o", str(out), "--quiet"]) == 0
    )
    return out


def test_fit_bad_inputs(built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An empty features file.
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["fit", str(built), str(tmp_path / "empty.jsonl")]) == 1
    assert "empty" in capsys.readouterr().err.lower()
    # NaN in a feature vector names the row.
    good = _features(tmp_path, built, _rows(6))
    lines = good.read_text().splitlines()
    row = json.loads(lines[2])
    row["features"][0] = float("nan")
    lines[2] = json.dumps(row)
    nan_file = tmp_path / "nan.jsonl"
    nan_file.write_text("\n".join(lines) + "\n")
    assert main(["fit", str(built), str(nan_file)]) == 1
    err = capsys.readouterr().err
    assert "nan.jsonl:3" in err and "Traceback" not in err
    # A response type the spec lacks.
    row = json.loads(lines[0])
    row["response_type"] = "Safe Refuse 9"
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps(row) + "\n" + "\n".join(lines[1:]) + "\n")
    assert main(["fit", str(built), str(other)]) == 1
    assert "other.jsonl:1" in capsys.readouterr().err


def test_single_completion_prompts_and_missing_tiers_warn(
    built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _rows(20)
    # One prompt keeps a single completion; no comply row is labelled less_good.
    rows = [r for r in rows if r["id"] not in {"p0-c1", "p0-c2", "p0-c3"}]
    rows = [
        r
        for r in rows
        if not (r["response_type"] == "Comply" and r["completion_label"] == "less_good")
    ]
    feats = _features(tmp_path, built, rows)
    assert main(["fit", str(built), str(feats), "--report", str(tmp_path / "rep")]) == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    warnings = " ".join(report["response_types"]["hard_refuse"]["warnings"])
    warnings += " ".join(report["response_types"]["comply"]["warnings"])
    assert "single completion" in warnings or "no pairs" in warnings
    assert "less_good" in warnings


def test_main_job_on_the_shipped_example_data(tmp_path: Path) -> None:
    out = tmp_path / "safety"
    code = main(
        [
            "build",
            str(ROOT / "policies" / "safety.rbr"),
            "--data",
            str(ROOT / "policies" / "data" / "safety.jsonl"),
            "-o",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["response_types"]) == {
        "hard_refuse",
        "safe_refuse_1",
        "safe_refuse_2",
        "comply",
    }
    for metrics in report["response_types"].values():
        assert metrics["valid"]["pair_accuracy"] > 0.85


def test_build_stops_at_a_spec_error_and_says_it_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "overlap.rbr"
    text = TUTORIAL.read_text(encoding="utf-8")
    spec.write_text(text.replace("unacceptable otherwise", "unacceptable when refuses"))
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(2)), encoding="utf-8")
    code = main(["build", str(spec), "--data", str(data), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    first = next(line for line in err.splitlines() if "error[E" in line)
    assert err.count(first) == 1  # not again from compile
    assert "[1/4]" not in err and not (tmp_path / "out").exists()
