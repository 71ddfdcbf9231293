"""The parser: every construct reaches the IR with the right values and spans."""

from __future__ import annotations

import pytest

from specc import ir
from specc.parser import parse_source


def parse_ok(text: str) -> ir.SourceFile:
    source, diags = parse_source(text, "t.rbr")
    assert diags == [], diags
    return source


def only(source: ir.SourceFile, kind: type[ir.Node]) -> list[ir.Node]:
    return [i for i in source.items if isinstance(i, kind)]


def test_header_and_spans() -> None:
    sf = parse_ok('# c\npolicy "safety" version "2.1.0"\n')
    header = sf.header
    assert header is not None and (header.name, header.version) == ("safety", "2.1.0")
    assert (header.span.line, header.span.col, header.span.file) == (2, 1, "t.rbr")
    assert [c.text for c in sf.comments] == ["# c"]


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r'"a\nb"', "a\nb"),
        (r'"tab\there"', "tab\there"),
        (r'"q\"q"', 'q"q'),
        (r'"back\\slash"', "back\\slash"),
        (r'"\u00e9t\u00e9"', "été"),
        ('"# not a comment"', "# not a comment"),
        ('"""\n    one\n      two\n    """', "one\n  two"),
        ('"""inline"""', "inline"),
        ('"""\n  a "quoted" word\n  """', 'a "quoted" word'),
    ],
)
def test_strings(literal: str, value: str) -> None:
    sf = parse_ok(f"proposition p {{ question = {literal} }}")
    (prop,) = only(sf, ir.Proposition)
    assert isinstance(prop, ir.Proposition) and prop.question == value


def test_proposition_examples_and_extractors() -> None:
    sf = parse_ok(
        """
        proposition p {
          description = "d"
          question = "q?"
          example yes {
            system "be kind"
            user "hi"
            assistant "hello"
            user "help"
            completion "sure"
            because "it helps"
          }
          example no { completion "no" }
        }
        proposition r { match regex "(?i)x" }
        proposition k { match keywords ["sorry", "apologise",] }
        proposition l { match length >= 12 chars }
        """
    )
    p, r, k, length = only(sf, ir.Proposition)
    assert isinstance(p, ir.Proposition)
    first, second = p.examples
    assert first.answer is True and second.answer is False
    assert [m.role for m in first.conversation] == ["system", "user", "assistant", "user"]
    assert (first.completion, first.because) == ("sure", "it helps")
    assert isinstance(r, ir.Proposition) and isinstance(r.extractor, ir.RegexExtractor)
    assert isinstance(k, ir.Proposition) and isinstance(k.extractor, ir.KeywordsExtractor)
    assert k.extractor.words == ("sorry", "apologise")
    assert isinstance(length, ir.Proposition) and isinstance(length.extractor, ir.LengthExtractor)
    assert (length.extractor.op, length.extractor.value, length.extractor.unit) == (
        ">=",
        12,
        "chars",
    )


def test_expressions_precedence() -> None:
    sf = parse_ok("derived d = not a or b and (c or true)")
    (d,) = only(sf, ir.Derived)
    assert isinstance(d, ir.Derived)
    assert isinstance(d.expr, ir.Or)
    left, right = d.expr.operands
    assert isinstance(left, ir.Not) and isinstance(right, ir.And)
    assert str(d.expr) == "not a or b and (c or true)"


def test_response_type_rules_and_reward() -> None:
    sf = parse_ok(
        """
        response_type hard "Hard Refuse" {
          ideal when a
          less_good when not a and b
          unacceptable otherwise
          reward { margin = 0.5  extra = [c, d]  optimizer = lbfgs  base_reward = true }
        }
        """
    )
    (rt,) = only(sf, ir.ResponseType)
    assert isinstance(rt, ir.ResponseType)
    assert rt.display == "Hard Refuse"
    assert [r.tier for r in rt.rules] == ["ideal", "less_good", "unacceptable"]
    assert rt.rules[2].when is None
    assert rt.reward is not None and rt.reward.margin == 0.5
    assert [e.name for e in rt.reward.extra or ()] == ["c", "d"]
    assert rt.reward.optimizer == "lbfgs" and rt.reward.base_reward is True


@pytest.mark.parametrize(("text", "value"), [("2%", 0.02), ("0.5", 0.5), ("100%", 1.0)])
def test_constraint_limits(text: str, value: float) -> None:
    sf = parse_ok(f"constraint c {{ cost = a and not b  limit = {text}  applies_to = [x] }}")
    (c,) = only(sf, ir.Constraint)
    assert isinstance(c, ir.Constraint) and c.limit == pytest.approx(value)
    assert [r.name for r in c.applies_to] == ["x"]


def test_tiers_and_grader() -> None:
    sf = parse_ok(
        "tiers { ideal margin 2  okay  bad margin 0.25 }\n"
        'grader { yes = ["yes", "Yes"]  no = "no"  template = file("g.j2") }'
    )
    (tiers,) = only(sf, ir.TiersBlock)
    assert isinstance(tiers, ir.TiersBlock)
    assert [(t.name, t.margin) for t in tiers.tiers] == [
        ("ideal", 2.0),
        ("okay", None),
        ("bad", 0.25),
    ]
    (g,) = only(sf, ir.GraderSettings)
    assert isinstance(g, ir.GraderSettings)
    assert g.yes == ("yes", "Yes") and g.no == ("no",) and g.template_file == "g.j2"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("constraint c { limit = 150% cost = a }", "E009"),
        ("constraint c { cost = a }", "E009"),
        ("tiers { ideal margin -1 }", "E009"),
        ("reward { features = [propositons] }", "E009"),
        ("reward { optimizer = sgd }", "E009"),
        ('grader { yes = "" }', "E009"),
        ("proposition p { match keywords [] }", "E009"),
        ('proposition p { example yes { because "b" } }', "E009"),
        ('proposition p { example yes { completion "c" user "late" } }', "E009"),
        ('proposition p { example yes { completoin "c" } }', "E010"),
        ('proposition p { match regex "a" match regex "b" }', "E102"),
        ("reward { margin = 1 margin = 2 }", "E102"),
        ('test "t" { given { a = 0.97 } expect x }', "E009"),
        ('test "t" { given { a = "yes" } expect x }', "E009"),
        ('test "t" { expect { a = true a = false } }', "E102"),
        ('test "t" { given { a = true } given { b = true } expect x }', "E102"),
        ('test "t" { response_type a response_type b expect x }', "E102"),
        ('test "t" { response_type ["a"] expect x }', "E009"),
        ('test "t" { completion "c" user "late" expect x }', "E009"),
        ('test "t" { completion "c" completion "d" expect x }', "E102"),
        ('test "t" { because "b" expect x }', "E010"),
    ],
)
def test_value_diagnostics(text: str, code: str) -> None:
    _, diags = parse_source(text, "t.rbr")
    assert code in [d.code for d in diags]


def test_unicode_and_crlf() -> None:
    sf = parse_ok('policy "ünï" version "1"\r\nproposition p { question = "¿sí?" }\r\n')
    assert sf.header is not None and sf.header.name == "ünï"


def test_test_blocks() -> None:
    sf = parse_ok(
        """
        test "rules" {
          response_type [refuse, comply]
          given { apology = yes  refuses = false }
          expect ideal
          expect not disallowed
          expect { polite = true }
        }
        test "graded" {
          response_type refuse
          system "be brief"
          user "help"
          completion "Sorry."
          expect { apology = true }
        }
        """
    )
    rules, graded = only(sf, ir.SpecTest)
    assert isinstance(rules, ir.SpecTest) and isinstance(graded, ir.SpecTest)
    assert [r.name for r in rules.response_types] == ["refuse", "comply"]
    assert [(a.name, a.value) for a in rules.given or ()] == [("apology", True), ("refuses", False)]
    tier, not_tier, answers = rules.expects
    assert isinstance(tier, ir.ExpectTier) and (tier.tier, tier.negated) == ("ideal", False)
    assert isinstance(not_tier, ir.ExpectTier) and not_tier.negated
    assert isinstance(answers, ir.ExpectAnswers) and answers.answers[0].name == "polite"
    assert rules.completion is None and (rules.span.line, tier.span.line) == (2, 5)
    assert graded.given is None and graded.completion == "Sorry."
    assert [(m.role, m.content) for m in graded.conversation] == [
        ("system", "be brief"),
        ("user", "help"),
    ]


def test_test_keywords_stay_names_elsewhere() -> None:
    sf = parse_ok('proposition test { question = "q" }\nderived given = test and expect\n')
    assert [i.name for i in sf.items if isinstance(i, (ir.Proposition, ir.Derived))] == [
        "test",
        "given",
    ]
