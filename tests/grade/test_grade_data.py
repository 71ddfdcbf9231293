"""Reading rows: formats and the errors for bad input (file:line, field)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specc.artifact import load_artifact
from specc.errors import DataError, UsageError
from specc.grade.data import read_rows
from specc.grade.features import check_rows, read_features

from .conftest import make_rows, write_jsonl

GOLD = Path("/work/shared/reference/rbr_gold_train.jsonl")


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def row(**fields: object) -> str:
    base: dict[str, object] = {
        "prompt": [{"role": "user", "content": "Hi"}],
        "completion": [{"role": "assistant", "content": "Hello!"}],
        "response_type": "Comply",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def test_messages_strings_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        row(),
        "",
        row(prompt="Plain question", completion="Plain answer", id=7, base_reward=0.5),
        row(completion=[{"role": "assistant", "content": [{"type": "text", "text": "A"}]}]),
    )
    rows = read_rows(path)
    assert [r.id for r in rows] == ["line-1", "7", "line-4"]
    assert rows[0].where == f"{path}:1"
    assert rows[0].conversation_text == "User: Hi"
    assert rows[0].completion == "Hello!"
    assert rows[1].conversation_text == "User: Plain question"
    assert rows[1].base_reward == 0.5
    assert rows[2].completion == "A"
    assert read_rows(path, limit=1)[0].id == "line-1"


def test_prompt_id_groups_same_prompt_and_type(tmp_path: Path) -> None:
    rows = read_rows(write(tmp_path, row(), row(completion="Other"), row(prompt="Hey")))
    assert rows[0].prompt_id("comply") == rows[1].prompt_id("comply")
    assert rows[0].prompt_id("comply") != rows[2].prompt_id("comply")
    assert rows[0].prompt_id("comply") != rows[0].prompt_id("refuse")
    assert len(rows[0].prompt_id("comply")) == 16


def test_labels_bool_and_probability(tmp_path: Path) -> None:
    (r,) = read_rows(write(tmp_path, row(propositions={"a": True, "b": False, "c": 0.25})))
    assert r.propositions == {"a": 1.0, "b": 0.0, "c": 0.25}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": [', "invalid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (row(prompt=...), "missing field 'prompt'"),
        (row(prompt=5), "field 'prompt' must be a list of messages"),
        (row(prompt=["hi"]), r"field 'prompt\[0\]' must be a message object"),
        (row(prompt=[{"role": "user"}]), r"'prompt\[0\]' has no 'content'"),
        (row(completion=[]), "field 'completion' is an empty list"),
        (row(completion=[{"content": 3}]), r"'completion\[0\].content' must be a string"),
        (row(response_type=3), "'response_type' must be a string"),
        (row(propositions={"a": 1.5}), r"'propositions.a' must be true, false or a prob"),
        (row(propositions=[1]), "'propositions' must be an object"),
        (row(base_reward="high"), "'base_reward' must be a finite number"),
        (row(completion_label=1), "'completion_label' must be a tier name"),
        (row(id=[1]), "'id' must be a string or an integer"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, row(), line)
    with pytest.raises(DataError, match=message) as info:
        read_rows(path)
    assert info.value.where == f"{path}:2"


def test_duplicate_ids_empty_files_and_missing_files(tmp_path: Path) -> None:
    path = write(tmp_path, row(id="x"), row(id="x"))
    with pytest.raises(DataError, match=r"duplicate id 'x' \(first at .*:1\)"):
        read_rows(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match="no rows"):
        read_rows(empty)
    with pytest.raises(UsageError, match="no such data file"):
        read_rows(tmp_path / "missing.jsonl")
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"a": "\xe9"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        read_rows(bad)


def test_unknown_response_type_and_label_suggest(tmp_path: Path, artifact_dir: Path) -> None:
    art = load_artifact(artifact_dir)
    path = write(tmp_path, row(response_type="Refuse"), row(response_type="Complyy"))
    with pytest.raises(DataError, match="did you mean 'Comply'") as info:
        check_rows(art, read_rows(path))
    assert info.value.where == f"{path}:2"
    path = write(tmp_path, row(completion_label="idael"))
    with pytest.raises(DataError, match="not a tier of response type 'comply'") as info:
        check_rows(art, read_rows(path))
    assert "did you mean 'ideal'" in str(info.value)


@pytest.mark.skipif(not GOLD.exists(), reason="reference data not present")
def test_reads_the_reference_gold_data() -> None:
    rows = read_rows(GOLD)
    assert len(rows) > 300
    assert {r.response_type for r in rows} >= {"Comply", "Hard Refuse"}
    assert all(r.propositions for r in rows)
    assert all(r.conversation_text.startswith("User: ") for r in rows[:20])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (row(prompt="[" * 100 + "]" * 100).replace('"[[', "[[").replace(']]"', "]]"), "nested"),
        (row(base_reward=...)[:-1] + ', "base_reward": 1' + "0" * 400 + "}", "401 digits"),
        ('{"id": ' + "7" * 5000 + "}", "5000 digits"),
        (row(completion="x").replace('"x"', '"\\udfff"'), "lone UTF-16 surrogate"),
        (row(base_reward=...)[:-1] + ', "base_reward": NaN}', "NaN is not a JSON number"),
    ],
)
def test_rows_beyond_the_bounds_are_data_errors_at_their_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = write(tmp_path, row(), line)
    with pytest.raises(DataError, match=message) as info:
        read_rows(path)
    assert info.value.where == f"{path}:2"
    assert info.value.hint


def test_a_row_with_a_line_separator_is_one_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    text = row(id="a\u2028b", completion="one\u2029two")
    path.write_text(text.replace("\\u2028", "\u2028").replace("\\u2029", "\u2029") + "\n")
    assert "\u2028" in path.read_text(encoding="utf-8")  # raw, as another tool may write it
    (r,) = read_rows(path)
    assert (r.id, r.completion, r.where) == ("a\u2028b", "one\u2029two", f"{path}:1")


def test_an_id_with_a_line_separator_survives_grade_and_fit(
    tmp_path: Path, artifact_dir: Path
) -> None:
    import shutil

    from specc.cli import main

    art = tmp_path / "art"
    shutil.copytree(artifact_dir, art)
    rows = make_rows(24, labels=True)
    for i, r in enumerate(rows):  # six prompts of four completions, two tiers each
        r["prompt"] = f"prompt {i // 4}"
        r["response_type"] = "Refuse" if i // 4 % 2 == 0 else "comply"
        r["completion_label"] = "ideal" if i % 2 == 0 else "unacceptable"
    rows[3]["id"] = "r3\u2028second line"
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    out = tmp_path / "f.jsonl"
    assert main(["grade", str(art), str(data), "--grader", "labels", "-o", str(out), "-q"]) == 0
    text = out.read_text(encoding="utf-8")
    assert "\u2028" not in text and "\\u2028" in text
    assert len(text.splitlines()) == 24  # str.splitlines splits on U+2028 too
    assert [f.id for f in read_features(out)][3] == "r3\u2028second line"
    assert main(["fit", str(art), str(out), "--report", str(tmp_path), "-q", "--json"]) == 0
