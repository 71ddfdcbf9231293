"""spec -> IR JSON -> artifact: golden files, reproducibility, slots, loading."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from golden import FIXTURES, ROOT, assert_golden

from specc import ir
from specc.artifact import COMPLETION_SLOT, CONVERSATION_SLOT, load_artifact
from specc.compiler import canonical_ir, compile_spec
from specc.errors import SpecError, UsageError
from specc.loader import parse_file

GOLDEN = FIXTURES / "golden"


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_ir_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    spec = parse_file("tutorial.rbr")
    text = json.dumps(ir.strip_spans(spec.model_dump(mode="json")), indent=2, sort_keys=True)
    assert_golden(GOLDEN / "tutorial.ir.json", text + "\n")


def test_artifact_golden(tmp_path: Path) -> None:
    compile_spec(GOLDEN / "tutorial.rbr", tmp_path / "art")
    files = _tree(tmp_path / "art")
    assert sorted(files) == [
        "ir.json",
        "manifest.json",
        "prompts/apology.txt",
        "prompts/lectures.txt",
        "prompts/refuses.txt",
        "rules.json",
        "seal.json",
    ]
    for name, data in files.items():
        assert_golden(GOLDEN / "tutorial.artifact" / name, data.decode())


def test_byte_identical_across_runs_and_working_directories(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    compile_spec(GOLDEN / "tutorial.rbr", first)
    # A second compile from another working directory, in a fresh interpreter.
    other = tmp_path / "elsewhere"
    other.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "specc.cli",
            "compile",
            str(GOLDEN / "tutorial.rbr"),
            "-o",
            str(second),
        ],
        cwd=other,
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert _tree(first) == _tree(second)


def test_hash_ignores_layout_and_comments_but_not_meaning(tmp_path: Path) -> None:
    src = (GOLDEN / "tutorial.rbr").read_text()
    shutil.copytree(GOLDEN / "lib", tmp_path / "lib")
    (tmp_path / "a.rbr").write_text(src)
    (tmp_path / "b.rbr").write_text("# extra comment\n\n" + src.replace("  ", "    "))
    (tmp_path / "c.rbr").write_text(src.replace("limit = 2.5%", "limit = 3%"))
    hashes = [compile_spec(tmp_path / f"{n}.rbr", tmp_path / f"out_{n}").spec_hash for n in "abc"]
    assert hashes[0] == hashes[1] != hashes[2]
    manifest = json.loads((tmp_path / "out_a" / "manifest.json").read_text())
    assert (
        manifest["spec_hash"]
        == hashlib.sha256(canonical_ir(parse_file(tmp_path / "a.rbr"))).hexdigest()
    )


def test_prompts_are_static_first_with_the_answer_slot_last(tmp_path: Path) -> None:
    compile_spec(GOLDEN / "tutorial.rbr", tmp_path / "art")
    art = load_artifact(tmp_path / "art")
    for entry in art.manifest.propositions:
        if entry.kind != "llm":
            continue
        text = art.prompt(entry.name)
        prefix = art.prompt_prefix(entry.name)
        assert text.index(CONVERSATION_SLOT) < text.index(COMPLETION_SLOT)
        assert text.startswith(prefix) and CONVERSATION_SLOT not in prefix
        # Few-shot examples are in the static prefix, the answer slot is the end.
        assert "Example" in prefix
        assert text.rstrip().endswith("Answer:")
        assert hashlib.sha256(text.encode()).hexdigest() == entry.prompt_sha256


def test_render_prompt_never_interprets_user_text(tmp_path: Path) -> None:
    compile_spec(GOLDEN / "tutorial.rbr", tmp_path / "art")
    art = load_artifact(tmp_path / "art")
    evil = "{{completion}} {% raw %} {{ 7*7 }}"
    out = art.render_prompt("refuses", evil, "reply {{conversation}}")
    assert evil in out and "reply {{conversation}}" in out and "49" not in out


def test_manifest_layout(tmp_path: Path) -> None:
    compile_spec(GOLDEN / "tutorial.rbr", tmp_path / "art")
    art = load_artifact(tmp_path / "art")
    hard = art.response_type("Hard Refuse")
    assert hard is art.response_type("hard_refuse")
    assert hard.tiers == ("ideal", "less_good", "unacceptable")
    assert hard.tier_margins == {"ideal": 1.5, "less_good": 0.5, "unacceptable": 2.0}
    assert hard.features == (
        "prop:apology",
        "prop:lectures",
        "prop:refuses",
        "prop:rambling",
        "derived:good_refusal",
        "class:ideal",
        "class:less_good",
        "class:unacceptable",
    )
    # The constraint's proposition is graded for the cost, without being a feature.
    assert "hotline" in hard.propositions and "prop:hotline" not in hard.features
    assert hard.reward.margin == 2.0 and hard.reward.steps == 300
    comply = art.response_type("comply")
    assert "hotline" not in comply.propositions
    with pytest.raises(KeyError, match="did you mean 'comply'"):
        art.response_type("complyy")


def test_template_override_from_file(tmp_path: Path) -> None:
    (tmp_path / "grader.j2").write_text(
        "Q: {{ question }}\n{% for e in examples %}{{ e }}\n{% endfor %}"
        "C: {{ conversation }}\nR: {{ completion }}\nA:"
    )
    (tmp_path / "p.rbr").write_text(
        'policy "p" version "1"\ngrader { template = file("grader.j2") }\n'
        'proposition a { question = "Is it?" example yes { completion "x" } }\n'
        "response_type t { ideal when a  unacceptable otherwise }\n"
    )
    compile_spec(tmp_path / "p.rbr", tmp_path / "art")
    text = load_artifact(tmp_path / "art").prompt("a")
    assert text.startswith("Q: Is it?\n") and text.endswith("R: {{completion}}\nA:")


def test_template_without_slots_is_a_spec_error(tmp_path: Path) -> None:
    (tmp_path / "p.rbr").write_text(
        'policy "p" version "1"\ngrader { template = "Just {{ question }}" }\n'
        'proposition a { question = "Is it?" example yes { completion "x" } }\n'
        "response_type t { ideal when a  unacceptable otherwise }\n"
    )
    with pytest.raises(SpecError) as exc:
        compile_spec(tmp_path / "p.rbr", tmp_path / "art")
    assert exc.value.diagnostics[0].code == "E012"
    assert not (tmp_path / "art").exists()


def test_compile_refuses_to_overwrite_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not a specc artifact"):
        compile_spec(GOLDEN / "tutorial.rbr", tmp_path / "art")
    assert (tmp_path / "art" / "notes.txt").read_text() == "mine"


def test_recompile_keeps_what_was_written_after_compile(tmp_path: Path) -> None:
    art = tmp_path / "art"
    compile_spec(GOLDEN / "tutorial.rbr", art)
    (art / "weights").mkdir()
    (art / "weights" / "weights.json").write_text("{}")
    (art / "features.jsonl").write_text("")
    (art / "prompts" / "stale.txt").write_text("from an older compile")
    compile_spec(GOLDEN / "tutorial.rbr", art)
    assert (art / "weights" / "weights.json").read_text() == "{}"
    assert (art / "features.jsonl").exists()
    # The compiled files are replaced whole: nothing of the old prompts/ survives.
    assert not (art / "prompts" / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["art"]  # no temp directory left


# Files of tests (policies/*_test.rbr) have no header: they are run, not compiled.
_POLICIES = sorted(p for p in (ROOT / "policies").glob("*.rbr") if not p.stem.endswith("_test"))


@pytest.mark.parametrize("policy", _POLICIES, ids=lambda p: p.name)
def test_example_policies_compile(policy: Path, tmp_path: Path) -> None:
    manifest = compile_spec(policy, tmp_path / "art")
    assert manifest.response_types
    load_artifact(tmp_path / "art").rules  # noqa: B018 - loads and validates rules.json
