"""The documentation shows real output: regenerate it and compare."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from golden import ROOT


def test_diagnostics_doc_is_in_sync() -> None:
    tool = ROOT / "docs" / "tools" / "make_diagnostics_doc.py"
    result = subprocess.run(
        [sys.executable, str(tool), "--check", str(ROOT / "docs" / "diagnostics.md")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_language_doc_shows_real_specc_test_output(tmp_path: Path) -> None:
    """docs/language.md's failing test and its `specc test` output, rerun."""
    doc = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```\n(.*?)```\n", doc, re.S)
    source = next(b for b in blocks if b.startswith("# policies/draft_test.rbr\n"))
    shown = next(b for b in blocks if b.startswith("policies/draft_test.rbr\n"))
    shutil.copytree(ROOT / "policies", tmp_path / "policies", ignore=shutil.ignore_patterns("data"))
    (tmp_path / "policies" / "draft_test.rbr").write_text(source, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "specc", "test", "policies/draft_test.rbr"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 1 and result.stdout == shown


def _specc(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m specc ARGV`` in ``cwd``, without colour."""
    return subprocess.run(
        [sys.executable, "-m", "specc", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
    )


def _specc_test(cwd: Path, *argv: str) -> str:
    result = _specc(cwd, "test", *argv)
    assert result.returncode in (0, 1), result.stderr
    return result.stdout


def test_authoring_doc_shows_real_specc_test_output(tmp_path: Path) -> None:
    """The outputs in "## 3. Test" of docs/authoring.md, rerun (the swap included)."""
    doc = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    blocks = {
        b.split("\n", 1)[0]: b.split("\n", 1)[1]
        for b in re.findall(r"```\n(\$ .*?)```\n", doc, re.S)
    }
    assert _specc_test(ROOT, "policies/minimal.rbr") == blocks["$ specc test policies/minimal.rbr"]
    rules = blocks["$ specc test policies/safety_test.rbr --grader rules"]
    out = _specc_test(ROOT, "policies/safety_test.rbr", "--grader", "rules", "--cache", ":memory:")
    assert rules.startswith("...\n") and out.endswith(rules.removeprefix("...\n"))
    shutil.copytree(ROOT / "policies", tmp_path / "policies", ignore=shutil.ignore_patterns("data"))
    safety = tmp_path / "policies" / "safety.rbr"
    text = safety.read_text(encoding="utf-8")
    ideal = "  ideal                    when correct_refusal\n"
    mas = "  minimum_acceptable_style when acceptable_refusal and not correct_refusal\n"
    swapped = ideal.replace("correct_refusal", "acceptable_refusal and not correct_refusal")
    swapped += mas.replace("acceptable_refusal and not correct_refusal", "correct_refusal")
    assert ideal + mas in text
    safety.write_text(text.replace(ideal + mas, swapped), encoding="utf-8")
    shown = blocks["$ specc test -q policies/safety_test.rbr"]
    assert _specc_test(tmp_path, "-q", "policies/safety_test.rbr") == shown


# --------------------------------------------------------------------------- reference docs


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from specc.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_cli_doc_lists_every_command_and_option() -> None:
    """docs/cli.md has a section per command that names each of its options."""
    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    sections = {
        s.split("`", 1)[0].split()[1]: s
        for s in re.split(r"^### `", doc, flags=re.M)[1:]
        if s.startswith("specc ")
    }
    missing = []
    for name, sub in _subcommands().items():
        if name not in sections:
            missing.append(f"specc {name}: no section")
            continue
        for action in sub._actions:
            flags = [f for f in action.option_strings if f not in ("-h", "--help")]
            if flags and not any(
                re.search(re.escape(f) + r"(?![\w-])", sections[name]) for f in flags
            ):
                missing.append(f"specc {name} {'/'.join(flags)}")
    assert not missing, "docs/cli.md does not describe: " + ", ".join(missing)


def test_readme_lists_every_command_and_every_doc() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [n for n in _subcommands() if f"\nspecc {n} " not in readme]
    docs = [
        p.name
        for p in sorted((ROOT / "docs").glob("*.md"))
        if f"[docs/{p.name}](docs/{p.name})" not in readme
    ]
    assert not commands, f"the README's command list lacks {commands}"
    assert not docs, f"the README's documentation table lacks {docs}"


def test_architecture_doc_names_every_module() -> None:
    """Each module is in the table, by its file or by its package's folder (a
    subpackage's ``__init__.py`` by any of its modules)."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for path in sorted((ROOT / "specc").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        folder = path.parent.relative_to(ROOT).as_posix() + "/"
        named = f"`{rel}`" in doc or (folder != "specc/" and f"`{folder}`" in doc)
        if path.name == "__init__.py" and folder != "specc/":
            named = named or f"`{folder}" in doc
        if not named:
            missing.append(rel)
    assert not missing, f"docs/architecture.md does not name {missing}"


def _blocks(doc: str) -> list[str]:
    """The fenced blocks of a markdown page, without their language tag."""
    return re.findall(r"^```\w*\n(.*?)^```$", doc, re.S | re.M)


def test_complete_policies_in_the_docs_check_clean(tmp_path: Path) -> None:
    """language.md's complete policy (clean, and in the canonical layout, since readers
    copy it) and the README's policy in brief (clean)."""
    from specc.checker import check_file
    from specc.formatter import format_source

    language = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    bank = next(b for b in _blocks(language) if b.startswith("# policies/bank_support.rbr\n"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    brief = next(b for b in _blocks(readme) if b.startswith('policy "minimal"'))
    for name, text in (("bank_support.rbr", bank), ("brief.rbr", brief)):
        (tmp_path / name).write_text(text, encoding="utf-8")
        report = check_file(tmp_path / name)
        assert not report.diagnostics, (name, report.diagnostics)
    assert format_source(bank, "bank_support.rbr") == bank
    shown = next(b for b in _blocks(language) if b.startswith("$ specc check policies/bank"))
    assert shown == "$ specc check policies/bank_support.rbr\nok: policies/bank_support.rbr\n"


def test_formatting_doc_example_is_the_golden_fixture() -> None:
    """The before and after of docs/formatting.md are tests/fixtures/fmt/docs_example*."""
    doc = (ROOT / "docs" / "formatting.md").read_text(encoding="utf-8")
    blocks = [b for b in _blocks(doc) if b.startswith('policy "demo"')]
    fixtures = ROOT / "tests" / "fixtures" / "fmt"
    assert blocks == [
        (fixtures / "docs_example.rbr").read_text(encoding="utf-8"),
        (fixtures / "docs_example.expected.rbr").read_text(encoding="utf-8"),
    ]


# --------------------------------------------------------------------------- docs/authoring.md


def _shown(doc: str, command: str) -> str:
    """The output a page shows under ``$ COMMAND`` (the block's lines after it)."""
    for block in _blocks(doc):
        first, _, rest = block.partition("\n")
        if first == f"$ {command}":
            return rest
    raise AssertionError(f"no block starts with $ {command}")


def test_authoring_doc_import_check_and_eval_outputs_are_real(tmp_path: Path) -> None:
    """Sections 1, 2 and 4 of docs/authoring.md, rerun in a scratch folder."""
    doc = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    fixtures = tmp_path / "tests" / "fixtures"
    shutil.copytree(ROOT / "tests" / "fixtures" / "import", fixtures / "import")
    config = "tests/fixtures/import/support.yaml"

    done = _specc(tmp_path, "import", config, "-o", "support.rbr")
    assert done.returncode == 0 and done.stderr == _shown(
        doc, f"specc import {config} -o support.rbr"
    )

    # "here the example config with `rude: true` added to the `acceptable` class of
    # `decline`, and `poor` changed to `rude: true`"
    yaml = (fixtures / "import" / "support.yaml").read_text(encoding="utf-8")
    acceptable = "      declines: true\n      polite_decline: false\n"
    poor = "    decline:\n      declines: false\n"
    assert yaml.count(acceptable) == 1 and yaml.count(poor) == 1
    s2 = yaml.replace(acceptable, acceptable + "      rude: true\n").replace(
        poor, "    decline:\n      rude: true\n"
    )
    (tmp_path / "s2.yaml").write_text(s2, encoding="utf-8")
    done = _specc(tmp_path, "import", "s2.yaml", "-o", "s2.rbr")
    assert done.returncode == 1 and done.stderr == _shown(doc, "specc import s2.yaml -o s2.rbr")

    done = _specc(tmp_path, "check", "support.rbr")
    assert done.returncode == 0 and done.stderr == _shown(doc, "specc check support.rbr")

    for name in ("support_gold.jsonl", "support_probabilities.jsonl"):
        shutil.copy(ROOT / "tests" / "fixtures" / "eval" / name, tmp_path / name)
    block = next(b for b in _blocks(doc) if b.startswith("$ specc compile support.rbr"))
    commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    for command in commands:
        done = _specc(tmp_path, *command.split()[1:])
        assert done.returncode == 0, done.stderr
    assert done.stdout == block.split(commands[-1] + "\n", 1)[1]
    from PIL import Image

    with Image.open(tmp_path / "eval.png") as drawn, Image.open(ROOT / "docs/eval.png") as shown:
        assert drawn.size == shown.size  # the page's picture is this figure


def test_authoring_doc_few_shot_and_calibration_outputs_are_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sections 5 and 6 of docs/authoring.md: the tests' tiny random model, rerun."""
    import torch
    from test_calibrate import _gold
    from tiny_models import build_tiny_model

    from specc.cli import main
    from specc.compiler import compile_spec

    doc = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("SPECC_GRADE_CACHE", raising=False)
    build_tiny_model(Path("models/tiny-grader"), arch="gpt2")
    compile_spec(ROOT / "tests" / "fixtures" / "import" / "support.rbr", "out/support")
    shutil.copy(ROOT / "tests" / "fixtures" / "eval" / "support_gold.jsonl", ".")
    _gold(Path("gold40.jsonl"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for command in (
            "specc eval out/support support_gold.jsonl --grader hf:models/tiny-grader",
            "specc eval out/support gold40.jsonl --grader hf:models/tiny-grader --calibrate",
        ):
            shown = _shown(doc, command)
            assert main(command.split()[1:]) == 0
            out, err = capsys.readouterr()
            assert shown.startswith("...\n")  # an excerpt: stdout's, and "wrote" on stderr
            lines = shown.removeprefix("...\n").splitlines(keepends=True)
            assert "".join(x for x in lines if not x.startswith("wrote ")) in out, out
            assert all(x in err for x in lines if x.startswith("wrote "))
    finally:
        torch.set_num_threads(threads)


def test_readme_quickstart_prints_and_leaves_what_it_says(tmp_path: Path) -> None:
    """The README's first quickstart command (after setup), in a copy of the tree."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = "bash .ci/setup && .venv/bin/specc "
    line = next(x for x in readme.splitlines() if x.startswith(setup + "build "))
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    done = _specc(tmp_path, *line.removeprefix(setup).split())
    assert done.returncode == 0, done.stderr
    steps = [x.split()[0] for x in done.stderr.splitlines() if x.startswith("[")]
    assert steps == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert "labels: " in done.stderr and "report  -> " in done.stderr
    header = done.stdout.splitlines()[0].split("  ")
    columns = [c.strip() for c in header if c.strip()]
    assert columns == [
        "response type", "rows", "prompts", "train pairs", "valid pairs", "train acc",
        "valid acc", "valid err", "beyond margin", "loss", "time s",
    ]  # fmt: skip
    out = tmp_path / "out" / "safety"
    left = {p.name for p in out.iterdir()}
    assert left == {  # no grade-cache.sqlite: the labels grader caches nothing
        "manifest.json", "ir.json", "rules.json", "prompts", "seal.json", "features.jsonl",
        "weights", "report.json", "report.png",
    }  # fmt: skip
    for name in ("manifest.json", "ir.json", "rules.json", "prompts/", "seal.json"):
        assert f"`{name}`" in readme
