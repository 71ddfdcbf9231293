"""specc eval: figures against hand-computed values, matching, tiers, the few-shot check.

The fixture: the imported support policy (tests/fixtures/import/support.rbr), gold
rows with 0/1 labels (tests/fixtures/eval/support_gold.jsonl) and the same rows with
chosen probabilities (support_probabilities.jsonl), graded with ``--grader labels``
into predictions. Every expected figure below was computed by hand from those two
files; the derivations are in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from golden import FIXTURES
from tiny_models import build_tiny_model, one_torch_thread  # noqa: F401 (autouse)

from specc.artifact import load_artifact
from specc.cli import main
from specc.compiler import compile_spec
from specc.errors import DataError
from specc.evaluate import EvalOptions, run_eval
from specc.evaluate.metrics import binary_metrics, ece, reliability
from specc.grade.base import LabelsGrader
from specc.grade.data import read_rows
from specc.grade.features import extract_features, write_features

POLICY = FIXTURES / "import" / "support.rbr"
GOLD = FIXTURES / "eval" / "support_gold.jsonl"
PROBABILITIES = FIXTURES / "eval" / "support_probabilities.jsonl"


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "support"
    compile_spec(POLICY, out)
    return out


@pytest.fixture(scope="module")
def predictions(artifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = read_rows(PROBABILITIES)
    path = tmp_path_factory.mktemp("pred") / "predictions.jsonl"
    write_features(path, extract_features(load_artifact(artifact_dir), rows, LabelsGrader()))
    return path


def _eval_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["eval", *args, "--json", "-q"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- metrics


def test_binary_metrics_by_hand() -> None:
    # p >= 0.5 is yes: predictions Y Y N N Y, labels 1 0 0 1 1 -> TP 2, FP 1, FN 1, TN 1
    p = np.array([0.9, 0.5, 0.49, 0.2, 1.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    m = binary_metrics(p, y)
    assert (m.n, m.positives, m.predicted_positives) == (5, 3, 3)
    assert m.accuracy == pytest.approx(3 / 5)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 / 3)
    # (0.01 + 0.25 + 0.2401 + 0.64 + 0) / 5
    assert m.brier == pytest.approx(1.1401 / 5)
    # bins: 9 {0.9:1}, 5 {0.5:0}, 4 {0.49:0}, 2 {0.2:1}, 9 also takes p=1.0 {1.0:1}
    # bin 9: mean p 0.95, mean y 1 -> 2 * 0.05; bin 5: 0.5; bin 4: 0.49; bin 2: 0.8
    assert m.ece == pytest.approx((0.1 + 0.5 + 0.49 + 0.8) / 5)


def test_undefined_precision_and_recall_are_none() -> None:
    m = binary_metrics(np.array([0.1, 0.2]), np.array([0.0, 0.0]))
    assert (m.precision, m.recall, m.f1) == (None, None, None)
    assert m.accuracy == 1.0
    m = binary_metrics(np.array([0.1, 0.2]), np.array([1.0, 0.0]))
    assert (m.precision, m.recall, m.f1) == (None, 0.0, None)
    m = binary_metrics(np.array([0.7, 0.2]), np.array([0.0, 1.0]))
    assert (m.precision, m.recall, m.f1) == (0.0, 0.0, 0.0)


def test_ece_bins_are_equal_width_with_one_in_the_last() -> None:
    p = np.array([0.0, 0.1, 0.3, 0.7, 0.95, 1.0])
    bins = reliability(p, np.zeros(6))
    assert [(b.lo, b.n) for b in bins] == [(0.0, 1), (0.1, 1), (0.3, 1), (0.7, 1), (0.9, 2)]
    assert ece(p, np.zeros(6)) == pytest.approx(p.mean())
    assert ece(np.array([0.25, 0.75]), np.array([0.0, 1.0])) == pytest.approx(0.25)


# --------------------------------------------------------------------------- the fixture

# Per proposition: (n, accuracy, precision, recall, f1, brier, ece), by hand.
EXPECTED = {
    # r1 .9/1, r2 .8/1, r3 .3/0, r4 .6/0, r10 .65/1: TP 3 FP 1 FN 0 TN 1
    # brier (.01+.04+.09+.36+.1225)/5; ece bins 9:.1 8:.2 3:.3 6:{.6/0,.65/1} 2*.125
    "declines": (5, 0.8, 0.75, 1.0, 6 / 7, 0.6225 / 5, 0.85 / 5),
    # r1 .2/0 r2 .4/1 r3 .1/0 r4 .75/1 r5 .15/0 r6 .85/1 r7 .05/0 r8 .35/0: TP 2 FN 1 TN 5
    # ece bins 0:.05 1:{.1,.15} 2*.125 2:.2 3:.35 4:.6 7:.25 8:.15
    "rude": (8, 0.875, 1.0, 2 / 3, 0.8, 0.6425 / 8, 1.85 / 8),
    # r5 .95/1 r6 .7/1 r7 .45/0 r8 .55/0: TP 2 FP 1 TN 1
    "answers": (4, 0.75, 2 / 3, 1.0, 0.8, 0.5975 / 4, 1.35 / 4),
    # r1 .1 r2 .05 r3 .7/1 r4 .45 r5 .55/1 r6 0 r7 .2 r10 .3 (r8 has no label)
    # ece bins 0:{.05,0} 2*.025 1:.1 2:.2 3:.3 4:.45 5:.45 7:.3
    "mentions_price": (8, 1.0, 1.0, 1.0, 1.0, 0.6375 / 8, 1.85 / 8),
}
KEYS = ("n", "accuracy", "precision", "recall", "f1", "brier", "ece")


def test_fixture_figures_equal_the_hand_computed_ones(
    artifact_dir: Path, predictions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _eval_json(capsys, str(artifact_dir), str(GOLD), "--predictions", str(predictions))
    assert list(out["propositions"]) == list(EXPECTED)  # spec order
    for name, figures in EXPECTED.items():
        got = out["propositions"][name]
        assert set(got) == set(KEYS)
        assert [got[k] for k in KEYS] == pytest.approx(list(figures)), name
    # pooled over the 25 pairs: 22 right; TP 9 of 11 predicted, 10 positive;
    # brier (0.6225 + 0.6425 + 0.5975 + 0.6375) / 25;
    # ece: sum over bins of n_b * |mean p - mean y| = 3.8 (0:.1 1:.35 2:.4 3:.95 4:.3
    # 5:.1 6:.25 7:.85 8:.35 9:.15), over 25
    overall = out["overall"]
    assert [overall[k] for k in KEYS] == pytest.approx([25, 0.88, 9 / 11, 0.9, 6 / 7, 0.1, 0.152])


def test_fixture_tiers_rows_and_notes(
    artifact_dir: Path, predictions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _eval_json(capsys, str(artifact_dir), str(GOLD), "--predictions", str(predictions))
    tiers = out["tiers"]
    # decline: P(ideal) = d(1-r), P(acceptable) = d r, P(poor) = 1 - d
    #   r1 (.9,.2) -> ideal, gold ideal;   r2 (.8,.4) -> ideal (.48), gold acceptable
    #   r3 (.3,.1) -> poor, gold poor;     r4 (.6,.75) -> acceptable (.45), gold poor
    #   r10 has no gold label for rude: left out
    # answer: r5 ideal/ideal, r6 acceptable/acceptable, r7 poor/poor, r8 poor (.45)/poor
    assert tiers["confusion"] == {
        "decline": {
            "tiers": ["ideal", "acceptable", "poor"],
            "matrix": [[1, 0, 0], [1, 0, 0], [0, 1, 1]],
            "n": 4,
            "accuracy": 0.5,
        },
        "answer": {
            "tiers": ["ideal", "acceptable", "poor"],
            "matrix": [[1, 0, 0], [0, 1, 0], [0, 0, 2]],
            "n": 4,
            "accuracy": 1.0,
        },
    }
    assert (tiers["accuracy"], tiers["n"], tiers["skipped"]) == (0.75, 8, 1)
    rows = out["rows"]
    assert (rows["gold"], rows["predictions"], rows["matched"]) == (10, 10, 9)
    assert (rows["missing_predictions"], rows["missing_examples"]) == (1, ["r9"])
    assert (rows["unknown_ids"], rows["unknown_examples"]) == (1, ["x9"])
    notes = "\n".join(out["notes"])
    assert "1 gold row(s) have no prediction" in notes
    assert "1 prediction(s) have no gold row" in notes
    assert "1 prediction(s) of 'rude' have no gold label" in notes
    assert "1 row(s) are left out of tier accuracy" in notes
    assert "ignored" not in notes
    assert out["few_shot"] is None and out["calibration"] is None


def test_labels_of_unknown_propositions_are_noted(
    artifact_dir: Path, predictions: Path, tmp_path: Path
) -> None:
    rows = _gold_rows()
    rows[0]["propositions"]["rudee"] = True
    report = run_eval(artifact_dir, _write(tmp_path / "g.jsonl", rows), predictions=predictions)
    assert "the artifact does not have are ignored: rudee" in "\n".join(report.notes)


def test_undefined_figures_are_null_with_a_note(
    artifact_dir: Path, predictions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # r1 and r2 only: mentions_price is never yes, in gold (0, 0) or predicted (.1, .05)
    args = [str(artifact_dir), str(GOLD), "--predictions", str(predictions), "--limit", "2"]
    out = _eval_json(capsys, *args)
    price = out["propositions"]["mentions_price"]
    assert (price["precision"], price["recall"], price["f1"]) == (None, None, None)
    assert price["accuracy"] == 1.0
    notes = "\n".join(out["notes"])
    assert "precision of 'mentions_price' is undefined (null)" in notes
    assert "recall of 'mentions_price' is undefined (null)" in notes
    assert "8 prediction(s) have no gold row" in notes


def test_text_report(
    artifact_dir: Path, predictions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(artifact_dir), str(GOLD), "--predictions", str(predictions)]) == 0
    out = capsys.readouterr().out
    assert "9 of 10 gold rows matched (1 without a prediction, 1 predictions without" in out
    assert "declines         5    3     0.800      0.750   1.000  0.857  0.124  0.170" in out
    assert "tier accuracy: 0.750 over 8 rows" in out
    assert "decline: 2/4 (0.500); rows gold, columns predicted" in out


def test_grader_labels_agrees_with_itself(
    artifact_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the first 7 rows label every proposition their response type grades
    out = _eval_json(capsys, str(artifact_dir), str(GOLD), "--grader", "labels", "--limit", "7")
    assert out["overall"]["accuracy"] == 1.0 and out["overall"]["ece"] == 0.0
    assert out["tiers"]["accuracy"] == 1.0
    assert out["rows"]["matched"] == 7
    assert any("few-shot check skipped" in n for n in out["notes"])


def test_plot_is_written_once(
    artifact_dir: Path, predictions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "eval.png"
    args = ["eval", str(artifact_dir), str(GOLD), "--predictions", str(predictions), "-q"]
    assert main([*args, "--plot", str(png)]) == 0
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    capsys.readouterr()
    assert main([*args, "--plot", str(png)]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main([*args, "--plot", str(png), "--force"]) == 0


# --------------------------------------------------------------------------- bad input


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _gold_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines()]


def test_labels_that_are_not_0_or_1_are_refused(
    artifact_dir: Path, predictions: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _gold_rows()
    rows[2]["propositions"]["rude"] = 0.7
    gold = _write(tmp_path / "gold.jsonl", rows)
    assert main(["eval", str(artifact_dir), str(gold), "--predictions", str(predictions)]) == 1
    err = capsys.readouterr().err
    assert f"{gold}:3: gold label 'rude' is 0.7; gold labels must be true or false" in err


def test_predictions_that_do_not_belong_are_refused(
    artifact_dir: Path, predictions: Path, tmp_path: Path
) -> None:
    lines = predictions.read_text(encoding="utf-8").splitlines()
    twice = tmp_path / "twice.jsonl"
    twice.write_text("\n".join([*lines, lines[0]]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="id 'r1' is predicted twice"):
        run_eval(artifact_dir, GOLD, predictions=twice)
    rows = _gold_rows()
    rows[0]["response_type"] = "Answer"
    rows[0]["propositions"] = {"answers": True}
    other = _write(tmp_path / "gold.jsonl", rows)
    with pytest.raises(DataError, match="for response type 'decline', the gold row is 'answer'"):
        run_eval(artifact_dir, other, predictions=predictions)
    strangers = _write(tmp_path / "strangers.jsonl", [{**r, "id": "z" + r["id"]} for r in rows])
    with pytest.raises(DataError, match="no prediction matches a gold row by id"):
        run_eval(artifact_dir, strangers, predictions=predictions)


def test_grader_and_predictions_are_exclusive(
    artifact_dir: Path, predictions: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = [str(artifact_dir), str(GOLD), "--grader", "labels", "--predictions", str(predictions)]
    with pytest.raises(SystemExit) as info:
        main(["eval", *both])
    assert info.value.code == 2
    assert "--predictions: not allowed with argument --grader" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["eval", str(artifact_dir), str(GOLD)])
    assert info.value.code == 2
    assert "one of the arguments --grader --predictions is required" in capsys.readouterr().err


# --------------------------------------------------------------------------- a real model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "gpt2", arch="gpt2")


def test_few_shot_check_with_a_tiny_model(
    artifact_dir: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """The misses are exactly the examples whose plain one-prompt P(yes) is on the
    wrong side of 0.5 for their label."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from specc.evaluate.fewshot import few_shot_examples
    from specc.grade.base import Answers
    from specc.grade.hf import plain_p_yes

    options = EvalOptions(progress=False, cache_path=tmp_path / "cache.sqlite")
    report = run_eval(artifact_dir, GOLD, grader_spec=f"hf:{tiny_model}", options=options)
    assert report.few_shot is not None
    art = load_artifact(artifact_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, torch_dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    expected = []
    examples = few_shot_examples(art)
    assert sum(len(v) for v in examples.values()) == 8  # two per proposition
    for name, rows in examples.items():
        for i, row in enumerate(rows, start=1):
            prompt = art.render_prompt(name, row.conversation_text, row.completion)
            p = plain_p_yes(model, tokenizer, prompt, Answers())
            label = (row.propositions or {})[name] == 1.0
            if (p >= 0.5) != label:
                expected.append((name, i, pytest.approx(p, abs=1e-4)))
    got = [(m.proposition, m.index, m.p_yes) for m in report.few_shot.misses]
    assert got == expected
    assert report.few_shot.checked == 8 and report.few_shot.propositions == 4


def test_grading_now_equals_grading_earlier(
    artifact_dir: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """--grader hf: gives the figures --predictions gives for `specc grade`'s output."""
    cache = tmp_path / "cache.sqlite"
    feats = tmp_path / "features.jsonl"
    args = [str(artifact_dir), str(GOLD), "--grader", f"hf:{tiny_model}", "--cache", str(cache)]
    assert main(["grade", *args[:2], *args[2:], "-o", str(feats), "-q"]) == 0
    now = run_eval(
        artifact_dir,
        GOLD,
        grader_spec=f"hf:{tiny_model}",
        options=EvalOptions(progress=False, cache_path=cache, few_shot=False),
    ).to_json()
    earlier = run_eval(artifact_dir, GOLD, predictions=feats).to_json()
    for key in ("propositions", "overall", "tiers"):
        assert now[key] == earlier[key]
    assert now["rows"]["matched"] == 10
    # the tiny model's P(yes) is not 0/1: the figures are not those of the labels
    assert now["overall"]["brier"] > 0.01
