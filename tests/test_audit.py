"""The label audit: fit and build report labels that contradict the rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from golden import FIXTURES

from specc.audit import audit_labels
from specc.cli import main
from specc.grade import FeatureRow

TUTORIAL = FIXTURES / "golden" / "tutorial.rbr"


def feature_row(
    label: str | None, props: dict[str, float], classes: dict[str, float]
) -> FeatureRow:
    return FeatureRow(
        id=f"r-{label}-{len(props)}",
        prompt_id="p",
        response_type="hard_refuse",
        completion_label=label,
        base_reward=None,
        propositions=props,
        derived={},
        classes=classes,
        features=[],
        sources={},
    )


def test_audit_compares_certain_rows_only() -> None:
    ideal = {"ideal": 1.0, "less_good": 0.0, "unacceptable": 0.0}
    rows = [
        feature_row("ideal", {"refuses": 1.0, "apology": 1.0}, ideal),  # agrees
        feature_row("unacceptable", {"refuses": 1.0, "apology": 1.0}, ideal),  # disagrees
        feature_row("ideal", {"refuses": 0.97, "apology": 1.0}, {"ideal": 0.97}),  # a probability
        feature_row(None, {"refuses": 1.0}, ideal),  # no label: the rules give it
    ]
    asked: list[int] = []

    def locate(i: int) -> str:
        asked.append(i)
        return f"data.jsonl:{i + 1}"

    audit = audit_labels(rows, locate)
    assert (audit.audited, audit.not_audited, audit.unlabelled) == (2, 1, 1)
    (d,) = audit.disagreements
    assert (d.where, d.label, d.implied) == ("data.jsonl:2", "unacceptable", "ideal")
    assert asked == [1]  # only the disagreeing row is located
    assert audit.summary() == (
        "labels: 2 audited, 1 disagrees with the rules; "
        "1 not audited (their propositions are probabilities, not 0/1)"
    )
    assert audit.examples() == [
        "  data.jsonl:2: id 'r-unacceptable-2' (hard_refuse) is labelled 'unacceptable', "
        "but its propositions put it in 'ideal'"
    ]
    assert audit.to_json()["disagreements"] == 1


def test_long_lists_are_cut() -> None:
    ideal = {"ideal": 1.0, "less_good": 0.0, "unacceptable": 0.0}
    rows = [feature_row("less_good", {"refuses": 1.0}, ideal) for _ in range(8)]
    audit = audit_labels(rows, lambda i: f"d:{i + 1}")
    lines = audit.examples()
    assert len(lines) == 6 and lines[-1] == "  ... and 3 more"


def _rows(wrong: set[int]) -> list[dict[str, object]]:
    """Tutorial rows with 0/1 labels; the rows in ``wrong`` get a label the rules refute."""
    rows: list[dict[str, object]] = []
    for p in range(6):
        for c, (refuses, apology, lectures) in enumerate(
            [(1, 1, 0), (1, 0, 0), (0, 0, 0), (1, 1, 1)]
        ):
            label = "ideal" if refuses and apology and not lectures else "less_good"
            label = label if refuses else "unacceptable"
            k = len(rows)
            if k in wrong:
                label = "ideal" if label != "ideal" else "unacceptable"
            rows.append(
                {
                    "id": f"p{p}-c{c}",
                    "prompt": f"request {p}",
                    "completion": "I can't." if refuses else "Sure.",
                    "response_type": "Hard Refuse",
                    "completion_label": label,
                    "propositions": {
                        "refuses": bool(refuses),
                        "apology": bool(apology),
                        "lectures": bool(lectures),
                    },
                }
            )
    return rows


def _fitted(artifact: Path) -> bool:
    """Whether fitted weights were saved (wherever the artifact layout keeps them)."""
    return any(artifact.rglob("weights.safetensors"))


def _data(tmp_path: Path, wrong: set[int]) -> Path:
    path = tmp_path / "data.jsonl"
    # A blank line first: data lines are named as they are in the file.
    path.write_text("\n" + "".join(json.dumps(r) + "\n" for r in _rows(wrong)))
    return path


def test_build_warns_with_data_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path, {2, 9})
    out = tmp_path / "art"
    assert main(["build", str(TUTORIAL), "--data", str(data), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: labels: 24 audited, 2 disagree with the rules" in err
    assert (
        f"{data}:4: id 'p0-c2' (hard_refuse) is labelled 'ideal', "
        "but its propositions put it in 'unacceptable'" in err
    )
    assert f"{data}:11: id 'p2-c1'" in err
    report = json.loads((out / "report.json").read_text())
    assert report["label_audit"]["disagreements"] == 2
    assert _fitted(out)


def test_strict_labels_stops_before_fitting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(tmp_path, {5})
    out = tmp_path / "art"
    argv = ["build", str(TUTORIAL), "--data", str(data), "-o", str(out), "--strict-labels"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "specc: error: labels: 24 audited, 1 disagrees with the rules" in err
    assert "--strict-labels" in err and (out / "manifest.json").exists() and not _fitted(out)
    # fit names the line of the features file.
    assert main(["fit", str(out), str(out / "features.jsonl"), "--strict-labels"]) == 1
    assert f"{out / 'features.jsonl'}:6: id 'p1-c1'" in capsys.readouterr().err


def test_clean_labels_pass_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path, set())
    out = tmp_path / "art"
    argv = ["build", str(TUTORIAL), "--data", str(data), "-o", str(out), "--strict-labels"]
    assert main(argv) == 0
    assert "labels: 24 audited, 0 disagree with the rules" in capsys.readouterr().err
