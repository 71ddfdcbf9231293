"""From rows to feature rows: backends per proposition, rules, cache, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from specc import compile_spec
from specc.artifact import load_artifact
from specc.errors import DataError, UsageError
from specc.grade import (
    GradeCache,
    GradeStats,
    extract_features,
    make_grader,
    read_features,
    read_rows,
    run_grade,
    write_features,
)
from specc.grade.hf import LazyHFGrader, plain_p_yes

from .conftest import SPEC, make_rows, write_jsonl


def test_labels_mode_features(tmp_path: Path, artifact_dir: Path) -> None:
    art = load_artifact(artifact_dir)
    rows = read_rows(write_jsonl(tmp_path / "d.jsonl", make_rows(12, labels=True)))
    stats = GradeStats()
    feats = extract_features(art, rows, make_grader("labels"), stats=stats)
    assert [f.id for f in feats] == [r.id for r in rows]
    refuse = [f for f in feats if f.response_type == "refuse"]
    comply = [f for f in feats if f.response_type == "comply"]
    assert len(refuse) == len(comply) == 6
    for f, r in zip(feats, rows, strict=True):
        rt = art.response_type(f.response_type)
        assert set(f.propositions) == set(rt.propositions)
        assert f.prompt_id == r.prompt_id(rt.name)
        assert f.completion_label == r.completion_label
        assert len(f.features) == len(rt.features)
        assert sum(f.classes.values()) == pytest.approx(1.0)
        assert r.propositions is not None
        for name, value in f.propositions.items():
            if name in ("says_sorry", "short"):
                assert f.sources[name] == "rules"
                assert value in (0.0, 1.0)
            else:
                assert f.sources[name] == "labels"
                assert value == r.propositions[name]
    # The rules extractors see the completion text.
    words = [len(r.completion.split()) for r in rows]
    assert [f.propositions["short"] for f in refuse] == [
        float(w < 12) for w, f in zip(words, feats, strict=True) if f.response_type == "refuse"
    ]
    # Derived, classes and costs come from the compiled rules, evaluated exactly.
    probs = {n: np.array([f.propositions[n] for f in refuse]) for n in refuse[0].propositions}
    tiers = art.rules.tier_probabilities("refuse", probs)
    assert np.allclose([list(f.classes.values()) for f in refuse], tiers)
    polite = art.rules.evaluate("derived:polite_refusal", probs)
    assert np.allclose([f.derived["polite_refusal"] for f in refuse], polite)
    assert [f.costs["no_lectures"] for f in refuse] == [
        f.propositions["judgemental"] for f in refuse
    ]
    # The feature list follows the artifact's layout.
    f = refuse[0]
    expected = [f.propositions["apology"], f.propositions["refuses"], f.propositions["judgemental"]]
    expected += [f.propositions["short"], *f.classes.values()]
    assert f.features == expected
    assert stats.labels == 6 * 3 + 6 * 2 and stats.rules == 6 + 6 and stats.llm_prompts == 0


def test_missing_label_names_row_and_proposition(tmp_path: Path, artifact_dir: Path) -> None:
    data = make_rows(4, labels=True)
    del data[2]["propositions"]["refuses"]  # type: ignore[attr-defined]
    path = write_jsonl(tmp_path / "d.jsonl", data)
    with pytest.raises(DataError, match="no label for proposition 'refuses'") as info:
        extract_features(load_artifact(artifact_dir), read_rows(path), make_grader("labels"))
    assert info.value.where == f"{path}:3"
    data = make_rows(2)
    path = write_jsonl(tmp_path / "d.jsonl", data)
    with pytest.raises(DataError, match="no 'propositions' labels") as info:
        extract_features(load_artifact(artifact_dir), read_rows(path), make_grader("labels"))
    assert info.value.where == f"{path}:1"


def test_rules_grader_needs_extractors_only(tmp_path: Path, artifact_dir: Path) -> None:
    rows = read_rows(write_jsonl(tmp_path / "d.jsonl", make_rows(2)))
    with pytest.raises(UsageError, match=r"'apology' .* --grader rules runs only extractors"):
        extract_features(load_artifact(artifact_dir), rows, make_grader("rules"))


def test_unknown_grader_spec() -> None:
    with pytest.raises(UsageError, match="did you mean 'labels'"):
        make_grader("lables")
    with pytest.raises(UsageError, match="unknown grader backend 'vllm'"):
        make_grader("vllm:x")
    with pytest.raises(UsageError, match="no model name"):
        make_grader("openai:http://127.0.0.1:9/v1")


def test_hf_grades_match_plain_and_cache_hits(
    tmp_path: Path, artifact_dir: Path, tiny_gpt2: Path
) -> None:
    art = load_artifact(artifact_dir)
    rows = read_rows(write_jsonl(tmp_path / "d.jsonl", make_rows(10)))
    grader = make_grader(f"hf:{tiny_gpt2}", device="cpu", dtype="float32", batch_size=4)
    assert isinstance(grader, LazyHFGrader) and not grader.loaded
    cache = GradeCache(tmp_path / "c.sqlite")
    first = GradeStats()
    feats = extract_features(art, rows, grader, cache=cache, stats=first)
    assert first.llm_prompts == 5 * 3 + 5 * 2 and first.cache_hits == 0
    assert first.computed == first.llm_prompts
    row, feat = rows[0], feats[0]
    for name in ("apology", "refuses", "judgemental"):
        prompt = art.render_prompt(name, row.conversation_text, row.completion)
        want = plain_p_yes(grader.model, grader.tokenizer, prompt, grader.answers)
        assert feat.propositions[name] == pytest.approx(want, abs=1e-4)
        assert feat.sources[name] == "hf:gpt2"
    calls = grader.forward_calls
    second = GradeStats()
    again = extract_features(art, rows, grader, cache=cache, stats=second)
    assert grader.forward_calls == calls  # no forward pass at all
    assert second.cache_hits == second.llm_prompts and second.computed == 0
    assert [f.to_json() for f in again] == [f.to_json() for f in feats]
    # A new run whose grades are all cached never loads the model.
    fresh = make_grader(f"hf:{tiny_gpt2}", device="cpu", dtype="float32", batch_size=4)
    third = extract_features(art, rows, fresh, cache=cache)
    assert not fresh.loaded  # type: ignore[union-attr]
    assert [f.to_json() for f in third] == [f.to_json() for f in feats]


def test_editing_one_proposition_regrades_only_it(
    tmp_path: Path, artifact_dir: Path, tiny_gpt2: Path
) -> None:
    rows = read_rows(write_jsonl(tmp_path / "d.jsonl", make_rows(8)))
    grader = make_grader(f"hf:{tiny_gpt2}", device="cpu", dtype="float32")
    cache = GradeCache(tmp_path / "c.sqlite")
    extract_features(load_artifact(artifact_dir), rows, grader, cache=cache)
    edited = tmp_path / "edited.rbr"
    edited.write_text(
        SPEC.replace("Does the final reply decline the request?", "Does it say no?"),
        encoding="utf-8",
    )
    compile_spec(edited, tmp_path / "edited")
    stats = GradeStats()
    feats = extract_features(
        load_artifact(tmp_path / "edited"), rows, grader, cache=cache, stats=stats
    )
    # Every row needs `refuses`: only those prompts are new.
    assert stats.computed == len(rows)
    assert stats.cache_hits == stats.llm_prompts - len(rows)
    assert all("refuses" in f.propositions for f in feats)


def test_write_read_roundtrip_and_atomicity(tmp_path: Path, artifact_dir: Path) -> None:
    art = load_artifact(artifact_dir)
    rows = read_rows(write_jsonl(tmp_path / "d.jsonl", make_rows(4, labels=True)))
    feats = extract_features(art, rows, make_grader("labels"))
    out = tmp_path / "f.jsonl"
    write_features(out, feats)
    back = read_features(out)
    assert [f.to_json() for f in back] == [f.to_json() for f in feats]

    class Boom(Exception):
        pass

    class Bad:
        def to_json(self) -> dict[str, object]:
            raise Boom

    before = out.read_bytes()
    with pytest.raises(Boom):
        write_features(out, [feats[0], Bad()])  # type: ignore[list-item]
    assert out.read_bytes() == before  # the old file is intact
    assert not list(tmp_path.glob(".f.jsonl.*.tmp"))  # and no temp file is left


def test_read_features_errors(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('{"id": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="without field 'prompt_id'") as info:
        read_features(path)
    assert info.value.where == f"{path}:1"
    path.write_text("{oops\n", encoding="utf-8")
    with pytest.raises(DataError, match="invalid JSON"):
        read_features(path)


def test_run_grade_summary(
    tmp_path: Path, artifact_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", make_rows(6, labels=True))
    out = tmp_path / "out" / "f.jsonl"
    summary = run_grade(artifact_dir, data, "labels", out, limit=5)
    assert summary["rows"] == 5 and summary["labels"] == 3 * 3 + 2 * 2
    assert summary["cache"] is None
    assert len(out.read_text(encoding="utf-8").splitlines()) == 5
    err = capsys.readouterr().err
    assert "graded 5 rows" in err and "grading [" in err
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[0])["id"] == "r0"


def test_cached_rerun_through_run_grade_never_loads_the_model(
    tmp_path: Path, artifact_dir: Path, tiny_gpt2: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from specc.grade import run_grade
    from specc.grade.hf import HFGrader

    data = write_jsonl(tmp_path / "d.jsonl", make_rows(4))
    out = tmp_path / "f.jsonl"
    args = (artifact_dir, data, f"hf:{tiny_gpt2}", out)
    first = run_grade(*args, progress=False, device="cpu", dtype="float32")
    assert first["computed"] > 0

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the model was loaded although every grade is cached")

    monkeypatch.setattr(HFGrader, "from_pretrained", classmethod(refuse))
    second = run_grade(*args, progress=False, device="cpu", dtype="float32")
    assert second["computed"] == 0 and second["cache_hits"] == first["llm_prompts"]


def test_progress_bar_has_no_eta_before_any_work() -> None:
    """A log's first line used to promise 'ETA 0:00:00' before anything was graded."""
    import io

    from specc.grade.progress import ProgressBar

    stream = io.StringIO()  # not a terminal: a line at start and at the end
    bar = ProgressBar(stream)
    bar.start(total=40, rows=20)
    bar.advance(40)
    bar.finish()
    first, last = stream.getvalue().splitlines()
    assert first.startswith("grading [....") and first.endswith("ETA ?")
    assert "40/40 prompts" in last and last.endswith("ETA 0:00:00")
