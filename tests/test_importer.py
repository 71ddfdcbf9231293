"""specc import: RBR proposition configs (YAML) to checked, canonical .rbr policies.

Every config here is written for these tests in the format of OpenAI's RBR release;
the tier semantics they are checked against is evaluated straight from the YAML by
``_config_tiers``, independently of the importer.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from golden import FIXTURES, assert_golden
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import Environment

from specc.checker import check_file
from specc.cli import main
from specc.errors import DataError
from specc.formatter import format_source
from specc.importer import display_name, import_config, translate_config, write_policy
from specc.importer.config import parse_config
from specc.importer.template import jinja_literal, translate_template
from specc.logic.runtime import compile_rules

CONFIG = FIXTURES / "import" / "support.yaml"


# --------------------------------------------------------------------------- semantics


def _holds(cfg: dict[str, Any], name: str, values: dict[str, bool]) -> bool:
    if name in cfg["simple_propositions"]:
        return values[name]
    conditions = cfg["derived_propositions"][name] or {}
    return all(_holds(cfg, k, values) == v for k, v in conditions.items())


def _config_tiers(cfg: dict[str, Any], rt: str, values: dict[str, bool]) -> list[str]:
    """The classes of ``rt`` whose listed values all hold, best first (the config's
    own reading: a class holds when all its listed proposition values hold)."""
    return [
        cls
        for cls in cfg["completion_class_order"]
        if rt in cfg["completion_classes"][cls]
        and all(_holds(cfg, k, values) == v for k, v in cfg["completion_classes"][cls][rt].items())
    ]


def _expected(cfg: dict[str, Any], rt: str, values: dict[str, bool], mode: str) -> str | None:
    holding = _config_tiers(cfg, rt, values)
    if len(holding) == 1:
        return holding[0]
    if mode == "error":
        return None
    if not holding:
        return [c for c in cfg["completion_class_order"] if rt in cfg["completion_classes"][c]][-1]
    return holding[-1] if mode == "worst-first" else holding[0]


def _assignments(names: list[str]) -> list[dict[str, bool]]:
    return [
        dict(zip(names, bits, strict=True))
        for bits in itertools.product([False, True], repeat=len(names))
    ]


# --------------------------------------------------------------------------- the fixture


def test_fixture_imports_to_the_golden_policy(tmp_path: Path) -> None:
    result = import_config(CONFIG)
    assert_golden(FIXTURES / "import" / "support.rbr", result.text)
    assert format_source(result.text) == result.text  # fmt-canonical
    out = tmp_path / "support.rbr"
    write_policy(result, out)
    report = check_file(out)
    assert report.diagnostics == []  # checks clean: no errors, no warnings
    assert result.diagnostics == []


def test_fixture_keeps_questions_examples_and_display_names() -> None:
    spec = import_config(CONFIG).spec
    rude = next(p for p in spec.propositions if p.name == "rude")
    assert (
        rude.question == "Is the reply rude to the user?\nSarcasm and talking down count as rude."
    )
    assert [e.answer for e in rude.examples] == [True, False]
    assert rude.examples[1].conversation[0].role == "user"
    assert rude.examples[1].conversation[0].content == "Where is the invoice?"
    declines = next(p for p in spec.propositions if p.name == "declines")
    assert declines.examples[0].because == "It says plainly that it will not do it."
    assert {rt.name: rt.display for rt in spec.response_types} == {
        "decline": "Must Decline",
        "answer": "Answer",
    }
    assert spec.tier_names() == ("ideal", "acceptable", "poor")
    assert spec.reward is not None and [r.name for r in spec.reward.extra or ()] == [
        "mentions_price"
    ]


def test_fixture_tiers_equal_the_config_on_every_answer() -> None:
    cfg = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    rules = compile_rules(import_config(CONFIG).spec)
    names = list(cfg["simple_propositions"])
    checked = 0
    for rt in ("decline", "answer"):
        for values in _assignments(names):
            assert rules.tier_of(rt, values) == _expected(cfg, rt, values, "error")
            checked += 1
    assert checked == 32


def test_grader_template_renders_the_config_template(tmp_path: Path) -> None:
    from specc.compiler import compile_spec

    out = tmp_path / "p.rbr"
    write_policy(import_config(CONFIG), out)
    art = tmp_path / "art"
    compile_spec(out, art)
    prompt = (art / "prompts" / "declines.txt").read_text(encoding="utf-8")
    assert prompt.startswith("You are checking one reply written by a support assistant.\n\n")
    assert "Question about the reply: Does the reply say that the assistant will not" in prompt
    assert "Answer: yes\n(Reason: It says plainly that it will not do it.)" in prompt
    assert prompt.endswith('The reply:\n{{completion}}\n\nWrite "yes" or "no" only.\n\nAnswer:')
    assert "Conversation:\n{{conversation}}\n\nThe reply:" in prompt


# --------------------------------------------------------------------------- the template


def test_template_text_is_never_evaluated(tmp_path: Path) -> None:
    """Jinja syntax in the config's template is text: it reaches the prompt verbatim."""
    text = CONFIG.read_text(encoding="utf-8").replace(
        "You are checking one reply",
        "Keep {{{{ config.secret }}}} and {{% if x %}}, {{# no #}} and {{{{{{ as written. "
        "A {{{question}}} too. You are checking one reply",
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text, encoding="utf-8")
    out = tmp_path / "p.rbr"
    write_policy(import_config(cfg), out)
    from specc.compiler import compile_spec

    compile_spec(out, tmp_path / "art")
    prompt = (tmp_path / "art" / "prompts" / "answers.txt").read_text(encoding="utf-8")
    question = "Does the reply answer the user's question, at least in part?"
    assert prompt.startswith(
        "Keep {{ config.secret }} and {% if x %}, {# no #} and {{{ as written. "
        f"A {{{question}}} too. You are checking one reply"
    )


@given(st.text(alphabet="{}%#-a\n", max_size=30), st.booleans())
def test_jinja_literal_renders_back(text: str, before_tag: bool) -> None:
    template = jinja_literal(text, before_tag) + ("{{ x }}" if before_tag else "")
    rendered = Environment(keep_trailing_newline=True).from_string(template).render(x="X")
    assert rendered == text + ("X" if before_tag else "")


_CHUNK = st.text(alphabet="{}%#-ab\n", max_size=12)


@given(st.lists(_CHUNK, min_size=4, max_size=4), st.booleans())
def test_template_translation_equals_python_format(chunks: list[str], examples: bool) -> None:
    """Translated and rendered with Jinja2, a template gives what str.format gives."""

    def lit(s: str) -> str:
        return s.replace("{", "{{").replace("}", "}}")

    fields = ["{question}", "{examples}" if examples else "{question}", "{conversation}"]
    fmt = "".join(lit(c) + f for c, f in zip(chunks, fields, strict=False)) + "{response}"
    fmt += lit(chunks[3])
    values = {"question": "Q?", "conversation": "C", "response": "R", "examples": "E1\n\nE2"}
    translated = translate_template(fmt, answer_cue="", has_examples=examples)
    rendered = (
        Environment(keep_trailing_newline=True)
        .from_string(translated.text)
        .render(question="Q?", conversation="C", completion="R", examples=["E1", "E2"])
    )
    assert rendered == fmt.format(**values)
    assert translated.notes == ()


def test_template_without_conversation_gets_one_before_the_reply() -> None:
    t = translate_template("Q: {question}\n\nThe reply:\n{response}\nDone.", answer_cue="Answer:")
    assert t.text == (
        "Q: {{ question }}\n\nConversation:\n{{ conversation }}\n\nThe reply:\n"
        "{{ completion }}\nDone.\n\nAnswer:"
    )
    assert len(t.notes) == 2
    # "{{{{" is a literal "{{" in Python's format: one paragraph, Jinja-escaped
    braces = translate_template("{question}\n\nReply {{{{x}}}}:\n{response}", answer_cue="")
    assert braces.text == (
        '{{ question }}\n\nConversation:\n{{ conversation }}\n\nReply {{ "{" }}{x}}:\n'
        "{{ completion }}"
    )
    same = translate_template("{conversation} {question} {response} Answer:", answer_cue="Answer:")
    assert same.text == "{{ conversation }} {{ question }} {{ completion }} Answer:"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{question} {reponse}", "unknown placeholder {reponse}"),
        ("{question} {response!r}", "format spec or conversion"),
        ("{question} {response:>5}", "format spec or conversion"),
        ("{question} {}", "unknown placeholder {}"),
        ("{question} {response", "not a valid format string"),
        ("{question} }", "not a valid format string"),
        ("{response}", "no {question}"),
        ("{question}", "exactly once, not 0 times"),
        ("{question} {response} {response}", "exactly once, not 2 times"),
        ("{question} {response} {conversation}", "after the reply"),
    ],
)
def test_bad_templates_are_located_errors(template: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        translate_template(template, "c.yaml:3:5")
    assert info.value.where == "c.yaml:3:5"


# --------------------------------------------------------------------------- bad configs


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


_MINIMAL = """\
completion_class_order: [good, bad]
completion_classes:
  good:
    rt: {ok: true}
  bad:
    rt: {ok: false}
simple_propositions:
  ok:
    prompt: Is it ok?
"""


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        ("bad]", "bad", "c.yaml:2:19", "invalid YAML"),  # where PyYAML finds the ':'
        ("simple_propositions:", "simple_propositons:", "c.yaml:7:1", "unknown key"),
        ("    prompt: Is it ok?", "    promt: Is it ok?", "c.yaml:9:5", "unknown key 'promt'"),
        ("{ok: false}", "{ok: maybe}", "c.yaml:6:14", "must be true or false"),
        ("{ok: false}", "{okk: false}", "c.yaml:6:10", "unknown proposition 'okk'"),
        ("  bad:\n", "  worse:\n", "c.yaml:5:3", "not in completion_class_order"),
        ("[good, bad]", "[good, bad, ugly]", "c.yaml:1:37", "no entry in completion_classes"),
        ("[good, bad]", "[good, good]", "c.yaml:1:32", "listed twice"),
        ("  ok:\n    prompt", "  not:\n    prompt", "c.yaml:8:3", "cannot be a name"),
        ("rt: {ok: false}", "rt: {ok: false, ok: true}", "c.yaml:6:21", "given twice"),
        ("Is it ok?", "42", "c.yaml:9:13", "must be text"),
        ("Is it ok?", "''", "c.yaml:8:3", "has no prompt"),
        ("rt: {ok: false}", "rt:", "c.yaml:6:8", "has no conditions"),
        ("good:\n    rt", "good: &a\n    rt", "c.yaml:1:1", ""),  # an unused anchor is fine
        ("{ok: false}", "{ok: false}\n  x: *a", "c.yaml:7:6", "aliases"),
    ],
)
def test_config_errors_name_the_yaml_place(
    tmp_path: Path, old: str, new: str, where: str, message: str
) -> None:
    assert old in _MINIMAL
    path = _config(tmp_path, _MINIMAL.replace(old, new, 1))
    if not message:
        import_config(path)
        return
    with pytest.raises(DataError, match=message) as info:
        import_config(path)
    assert info.value.where == f"{path}:{where.split(':', 1)[1]}"


def test_config_error_hints(tmp_path: Path) -> None:
    path = _config(tmp_path, _MINIMAL.replace("simple_propositions:", "simple_propositons:"))
    with pytest.raises(DataError) as info:
        import_config(path)
    assert info.value.hint == "did you mean 'simple_propositions'?"


def test_derived_must_be_defined_above_its_use(tmp_path: Path) -> None:
    text = _MINIMAL + "derived_propositions:\n  a: {b: true}\n  b: {ok: true}\n"
    with pytest.raises(DataError, match="'b', which is not defined above it") as info:
        import_config(_config(tmp_path, text))
    assert info.value.where is not None and info.value.where.endswith(":11:7")


def test_deep_nesting_and_size_are_bounded(tmp_path: Path) -> None:
    deep = "completion_classes: " + "[" * 200 + "]" * 200 + "\n"
    with pytest.raises(DataError, match="nested more than"):
        import_config(_config(tmp_path, deep))
    from specc.importer import config as config_module

    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (config_module.MAX_CONFIG_BYTES + 1))
    with pytest.raises(DataError, match="larger than"):
        import_config(big)
    with pytest.raises(DataError, match="empty"):
        import_config(_config(tmp_path, "# nothing\n"))


def test_python_tags_are_never_constructed(tmp_path: Path) -> None:
    text = _MINIMAL.replace("Is it ok?", "!!python/object/apply:os.system ['echo pwned']")
    with pytest.raises(DataError, match="must be text"):
        import_config(_config(tmp_path, text))


# --------------------------------------------------------------------------- resolution

_OVERLAP = """\
completion_class_order: [good, meh, bad]
completion_classes:
  good:
    rt: {a: true}
  meh:
    rt: {b: true}
  bad:
    rt: {a: false, b: false, c: true}
simple_propositions:
  a: {prompt: "A?"}
  b: {prompt: "B?"}
  c: {prompt: "C?"}
"""


def test_overlapping_classes_are_refused_with_an_example(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="classes 'good' and 'meh' both hold") as info:
        import_config(_config(tmp_path, _OVERLAP))
    assert "a=true, b=true" in str(info.value)
    assert info.value.where is not None and info.value.where.endswith(":6:5")
    assert "--resolve worst-first" in (info.value.hint or "")


@pytest.mark.parametrize("mode", ["worst-first", "best-first"])
def test_resolution_matches_the_documented_reading(tmp_path: Path, mode: str) -> None:
    result = import_config(_config(tmp_path, _OVERLAP), resolve=mode)  # type: ignore[arg-type]
    cfg = yaml.safe_load(_OVERLAP)
    rules = compile_rules(result.spec)
    for values in _assignments(["a", "b", "c"]):
        assert rules.tier_of("rt", values) == _expected(cfg, "rt", values, mode)
    assert any("resolved" in n for n in result.notes)
    assert any("no class" in n for n in result.notes)  # a=b=c=false is in no class


def test_a_class_that_never_holds_is_left_out(tmp_path: Path) -> None:
    text = _MINIMAL.replace(
        "simple_propositions:", "derived_propositions:\n  d: {ok: true}\nsimple_propositions:"
    ).replace("rt: {ok: true}", "rt: {ok: true}\n    other: {d: true, ok: false}")
    text = text.replace("rt: {ok: false}", "rt: {ok: false}\n    other: {}")
    result = import_config(_config(tmp_path, text))
    other = next(rt for rt in result.spec.response_types if rt.name == "other")
    assert [r.tier for r in other.rules] == ["bad"]
    assert any("can never hold" in n for n in result.notes)


# --------------------------------------------------------------------------- round trip

_PROPS = ["p0", "p1", "p2", "p3"]


@st.composite
def _configs(draw: st.DrawFn) -> dict[str, Any]:
    n_props = draw(st.integers(2, 4))
    props = _PROPS[:n_props]
    derived: dict[str, dict[str, bool]] = {}
    for i in range(draw(st.integers(0, 2))):
        pool = props + list(derived)
        keys = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        derived[f"d{i}"] = {k: draw(st.booleans()) for k in keys}
    names = props + list(derived)
    classes = [f"c{i}" for i in range(draw(st.integers(1, 4)))]
    types = [f"t{i}" for i in range(draw(st.integers(1, 2)))]
    table: dict[str, dict[str, dict[str, bool]]] = {c: {} for c in classes}
    for rt in types:
        used = draw(st.lists(st.sampled_from(classes), min_size=1, unique=True))
        for c in used:
            keys = draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
            table[c][rt] = {k: draw(st.booleans()) for k in keys}
    order = [c for c in classes if table[c]]
    cfg: dict[str, Any] = {
        "completion_class_order": order,
        "completion_classes": {c: table[c] for c in order},
        "simple_propositions": {p: {"prompt": f"Is {p} true?"} for p in props},
    }
    if derived:
        cfg["derived_propositions"] = derived
    return cfg


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_configs(), st.sampled_from(["error", "worst-first", "best-first"]))
def test_random_configs_round_trip(cfg: dict[str, Any], mode: str) -> None:
    """Random class rules -> YAML -> import -> the tiers equal the YAML's semantics."""
    text = yaml.safe_dump(cfg, sort_keys=False)
    config = parse_config(text, "gen.yaml")
    props = list(cfg["simple_propositions"])
    types = list(dict.fromkeys(rt for c in cfg["completion_classes"].values() for rt in c))
    ambiguous = any(
        _expected(cfg, rt, values, "error") is None
        for rt in types
        for values in _assignments(props)
    )
    if mode == "error" and ambiguous:
        with pytest.raises(DataError, match=r"both hold|no class holds"):
            translate_config(config, name="gen", resolve="error")
        return
    result = translate_config(config, name="gen", resolve=mode)  # type: ignore[arg-type]
    assert format_source(result.text) == result.text
    assert not [d for d in result.diagnostics if d.severity == "error"]
    rules = compile_rules(result.spec)
    for rt in types:
        for values in _assignments(props):
            assert rules.tier_of(rt, values) == _expected(cfg, rt, values, mode)


# --------------------------------------------------------------------------- names, CLI


def test_display_names() -> None:
    assert display_name("hard_refuse") == "Hard Refuse"
    assert display_name("safe_refuse_1") == "Safe Refuse 1"
    assert display_name("comply") == "Comply"


def test_cli_import_writes_once_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.rbr"
    assert main(["import", str(CONFIG), "-o", str(out), "--json", "--name", "sup"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["policy"] == "sup"
    assert summary["response_types"] == ["decline", "answer"]
    assert summary["warnings"] == []
    first = out.read_text(encoding="utf-8")
    assert first.startswith('# Imported by `specc import` from support.yaml.\npolicy "sup"')
    out.write_text("keep me", encoding="utf-8")
    assert main(["import", str(CONFIG), "-o", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "keep me"
    assert main(["import", str(CONFIG), "-o", str(out), "--force"]) == 0
    assert "4 propositions" in capsys.readouterr().err


def test_cli_import_bad_config_exits_1_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _config(tmp_path, _MINIMAL.replace("bad]", "bad"))
    out = tmp_path / "p.rbr"
    assert main(["import", str(bad), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2:19: invalid YAML: expected ',' or ']'" in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_slot_markers_in_config_text_are_refused(tmp_path: Path) -> None:
    text = _MINIMAL.replace("Is it ok?", "Does {{completion}} look ok?")
    with pytest.raises(DataError, match="contains '\\{\\{completion\\}\\}'") as info:
        import_config(_config(tmp_path, text))
    assert info.value.where is not None and info.value.where.endswith(":8:3")
    with pytest.raises(DataError, match="reserve for the text being graded"):
        translate_template("{question} {{{{conversation}}}} {response}")


def test_response_types_that_would_share_a_display_name(tmp_path: Path) -> None:
    text = _MINIMAL.replace("rt: {ok: false}", "rt: {ok: false}\n    Rt: {}")
    with pytest.raises(DataError, match="'rt' and 'Rt' would both be shown as 'Rt'"):
        import_config(_config(tmp_path, text))
    named = text + "response_type_names:\n  Rt: Other\n"
    result = import_config(_config(tmp_path, named))
    assert [rt.display for rt in result.spec.response_types] == ["Rt", "Other"]
