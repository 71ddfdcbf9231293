"""Reading a features file into fit arrays: fields, labels, bounds, file:line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from specc.artifact import Artifact, load_artifact
from specc.errors import DataError, UsageError
from specc.fit.read import read_feature_table

from .helpers import FEATURES, TIERS, feature_rows, make_artifact, write_rows


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    return load_artifact(make_artifact(tmp_path_factory.mktemp("fit-read")))


def test_rows_become_float32_arrays_in_file_order(artifact: Artifact, tmp_path: Path) -> None:
    rows = feature_rows(n_prompts=5, per=3)
    path = tmp_path / "f.jsonl"
    path.write_text(
        "\n".join(json.dumps(r) for r in rows[:4])
        + "\n\n  \n"
        + "\n".join(json.dumps(r) for r in rows[4:])
        + "\n",
        encoding="utf-8",
    )
    table = read_feature_table(path, artifact)
    part = table.types["refuse"]
    assert table.rows == part.n_rows == len(rows)
    assert part.features.dtype == np.float32 and part.features.shape == (len(rows), len(FEATURES))
    np.testing.assert_allclose(part.features, [r["features"] for r in rows], rtol=1e-7)
    assert part.prompt_ids.tolist() == [r["prompt_id"] for r in rows]
    assert part.tier_rank.tolist() == [TIERS.index(r["completion_label"]) for r in rows]
    assert part.base_reward is not None
    assert part.base_reward.tolist() == [r["base_reward"] for r in rows]
    # blank lines are skipped but counted: row 5 is on line 7
    assert part.locate(3) == f"{path}:4" and part.locate(4) == f"{path}:7"


def test_display_names_and_labels_from_certain_classes(artifact: Artifact, tmp_path: Path) -> None:
    rows = feature_rows(n_prompts=2, per=3)
    rows[0]["response_type"] = "Refuse"  # the display name
    rows[1]["completion_label"] = None
    rows[1]["classes"] = {"ideal": 0.0, "less_good": 1.0, "unacceptable": 0.0}
    table = read_feature_table(write_rows(tmp_path / "f.jsonl", rows), artifact)
    assert list(table.types) == ["refuse"]
    assert table.types["refuse"].tier_rank[1] == 1


def _error(artifact: Artifact, tmp_path: Path, edit: Any) -> DataError:
    rows = feature_rows(n_prompts=3, per=3)
    edit(rows[4])
    path = write_rows(tmp_path / "f.jsonl", rows)
    with pytest.raises(DataError) as err:
        read_feature_table(path, artifact)
    assert err.value.where == f"{path}:5", err.value
    return err.value


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(response_type="refuze"), "unknown response type 'refuze'"),
        (lambda r: r.update(completion_label="ideall"), "unknown tier label 'ideall'"),
        (lambda r: r.pop("prompt_id"), "row has no 'prompt_id'"),
        (lambda r: r.update(features=[0.5] * 5), "expected 6 features for response type"),
        (lambda r: r.update(features="0.5"), "expected 6 features for response type"),
        (lambda r: r["features"].__setitem__(2, "x"), "features must be numbers"),
        (lambda r: r["features"].__setitem__(2, True), "features must be numbers, not true"),
        (lambda r: r["features"].__setitem__(2, 1.5), "feature 'prop:c' is 1.5, but prop"),
        (lambda r: r.update(base_reward=None), "no numeric 'base_reward'"),
        (lambda r: r.update(base_reward=-2e6), "base_reward is -2e+06"),
        (lambda r: r.update(completion_label=None), "no completion_label and its propositions"),
    ],
)
def test_bad_rows_name_their_line(
    artifact: Artifact, tmp_path: Path, edit: Any, message: str
) -> None:
    assert message in str(_error(artifact, tmp_path, edit))


def test_a_label_typo_gets_a_suggestion(artifact: Artifact, tmp_path: Path) -> None:
    err = _error(artifact, tmp_path, lambda r: r.update(completion_label="less-good"))
    assert err.hint == "did you mean 'less_good'?"


def test_bounded_reader_errors(artifact: Artifact, tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="the file is empty"):
        read_feature_table(path, artifact)
    path.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"f.jsonl:1: row has no 'response_type'"):
        read_feature_table(path, artifact)
    path.write_text('{"n": ' + "9" * 400 + "}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"f.jsonl:1: number 9+\.\.\. has 400 digits"):
        read_feature_table(path, artifact)
    with pytest.raises(UsageError, match="no such features file"):
        read_feature_table(tmp_path / "missing.jsonl", artifact)


def test_read_features_splits_lines_on_newlines_only_and_checks_numbers(tmp_path: Path) -> None:
    from specc.grade import read_features

    rows = feature_rows(n_prompts=1, per=2)
    rows[0]["id"] = "a\u2028b\u2029c"
    path = write_rows(tmp_path / "f.jsonl", rows)
    back = read_features(path)
    assert [r.id for r in back] == ["a\u2028b\u2029c", rows[1]["id"]]
    rows[1]["features"][0] = True
    with pytest.raises(DataError, match=r"f.jsonl:2: features\[0\] must be a number, not True"):
        read_features(write_rows(path, rows))
    rows[1]["features"][0] = 0.5
    rows[1]["base_reward"] = "high"
    with pytest.raises(DataError, match="base_reward must be a number"):
        read_features(write_rows(path, rows))


@pytest.mark.parametrize(
    "line",
    [
        '{"f": [0.25, 1, -3.5e-7, 1e99, 123456789012345678], "s": "x"}',
        '{"id": "1234567890123456789012", "f": [0.5]}',  # a long digit run in a string
        '{"f": [0.00000000000000000000001, 9.5E+300, 1e-320]}',
        '{"big": -9223372036854775808, "f": [1E+2]}',
    ],
)
def test_the_fast_decoder_gives_the_checked_decoders_values(line: str) -> None:
    from specc import jsonl

    assert jsonl.parse_line(line, "f:1") == jsonl._DECODER.decode(line)
    assert repr(jsonl.parse_line(line, "f:1")) == repr(json.loads(line))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"f": [1e999]}', "overflows to infinity"),
        ('{"f": [-1E+400]}', "overflows to infinity"),
        ('{"n": 9223372036854775808}', "out of range"),
        ('{"n": NaN}', "not a JSON number"),
        ('{"n": -Infinity}', "not a JSON number"),
        ('{"n": 1' + "0" * 70 + "}", "at most 64"),
    ],
)
def test_numbers_that_cross_a_bound_are_still_refused(line: str, message: str) -> None:
    from specc import jsonl

    with pytest.raises(DataError, match=message):
        jsonl.parse_line(line, "f:1")


def test_the_label_audit_sees_the_same_rows_as_from_feature_rows(
    artifact: Artifact, tmp_path: Path
) -> None:
    from specc.audit import audit_labels
    from specc.grade import read_features

    rows = feature_rows(n_prompts=3, per=4)
    for i, row in enumerate(rows[:6]):  # gold 0/1 rows: the rules decide their tier
        tier = i % 3
        row["propositions"] = {"a": float(tier == 0), "b": float(tier == 2), "c": 1.0}
        row["classes"] = {t: float(k == tier) for k, t in enumerate(TIERS)}
        row["completion_label"] = TIERS[tier]
    rows[1]["completion_label"] = "ideal"  # disagrees: its propositions say less_good
    rows[5]["completion_label"] = None
    path = write_rows(tmp_path / "f.jsonl", rows)

    def where(i: int) -> str:
        return f"f:{i + 1}"

    table = read_feature_table(path, artifact)
    expected = audit_labels(read_features(path), where).to_json()
    assert audit_labels(table.audit, where).to_json() == expected
    assert expected["disagreements"] == 1 and expected["unlabelled"] == 1
    assert expected["audited"] == 5 and expected["not_audited"] == len(rows) - 6
