"""Tier checks E201-E204: detection, counterexamples that really are ones, otherwise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from specc.errors import Diagnostic
from specc.ir import Expr, TierRule
from specc.logic.checks import check_response_types, referenced_names

from .helpers import (
    VARS,
    and_,
    assignments,
    completions,
    const,
    exprs,
    make_spec,
    not_,
    or_,
    ref,
    reference_policy,
    rule,
    rule_holds,
    synthetic_spec,
)


def codes(diags: list[Diagnostic]) -> list[str]:
    return [d.code for d in diags]


def test_reference_policy_is_exclusive_and_exhaustive() -> None:
    assert check_response_types(reference_policy()) == []


def test_reference_policy_written_without_otherwise_is_also_fine() -> None:
    # the complement of the first four rules, spelled out
    unacceptable = or_(
        not_(ref("refuses")),
        ref("harmful_content"),
    )
    spec = reference_policy(rule("unacceptable", unacceptable, 5))
    assert check_response_types(spec) == []


def test_overlap_is_reported_at_the_later_rule_with_a_real_counterexample() -> None:
    spec = make_spec(
        ["apology", "judgement"],
        types={
            "hard_refuse": [
                rule("ideal", and_(ref("apology"), not_(ref("judgement"))), 1),
                rule("less_good", ref("apology"), 2),
                rule("unacceptable", None, 3),
            ]
        },
    )
    [diag] = check_response_types(spec)
    assert diag.code == "E201"
    assert diag.message == "tiers 'ideal' and 'less_good' overlap in response type 'hard_refuse'"
    assert diag.span.line == 2
    assert diag.notes[0] == "both hold when apology=true, judgement=false"
    assert diag.hint is not None and "and not (apology and not judgement)" in diag.hint


def test_overlap_note_mentions_determined_derived_values() -> None:
    spec = make_spec(
        ["a", "b"],
        derived={"good": and_(ref("a"), ref("b"))},
        types={"t": [rule("ideal", ref("good"), 1), rule("bad", ref("a"), 2)]},
    )
    diags = check_response_types(spec)
    assert codes(diags) == ["E201", "E202"]
    assert diags[0].notes == ("both hold when a=true, b=true", "which makes good=true")


def test_not_exhaustive_is_reported_at_the_response_type() -> None:
    spec = make_spec(
        ["apology", "judgement"],
        types={
            "hard_refuse": [
                rule("ideal", and_(ref("apology"), not_(ref("judgement"))), 1),
                rule("unacceptable", not_(ref("apology")), 2),
            ]
        },
    )
    [diag] = check_response_types(spec)
    assert diag.code == "E202"
    assert diag.span == spec.response_types[0].span
    assert diag.notes[0] == "no tier holds when apology=true, judgement=true"
    assert diag.hint is not None and "unacceptable otherwise" in diag.hint


def test_contradictory_rule_never_holds() -> None:
    spec = make_spec(
        ["a"],
        types={
            "t": [
                rule("ideal", and_(ref("a"), not_(ref("a"))), 1),
                rule("less_good", ref("a"), 2),
                rule("unacceptable", None, 3),
            ]
        },
    )
    [diag] = check_response_types(spec)
    assert (diag.code, diag.span.line) == ("E203", 1)
    assert "'ideal' can never hold" in diag.message


def test_otherwise_after_full_coverage_never_holds() -> None:
    spec = make_spec(
        ["a"],
        types={
            "t": [rule("ideal", ref("a"), 1), rule("bad", not_(ref("a")), 2), rule("u", None, 3)]
        },
    )
    [diag] = check_response_types(spec)
    assert (diag.code, diag.span.line) == ("E203", 3)
    assert "already cover" in diag.notes[0]


def test_misplaced_otherwise_is_e204_without_cascading_overlaps() -> None:
    spec = make_spec(
        ["a", "b"],
        types={
            "t": [
                rule("ideal", ref("a"), 1),
                rule("unacceptable", None, 2),
                rule("less_good", and_(not_(ref("a")), ref("b")), 3),
            ]
        },
    )
    [diag] = check_response_types(spec)
    assert (diag.code, diag.span.line) == ("E204", 2)
    assert "last rule" in diag.message


def test_otherwise_holds_exactly_when_no_earlier_rule_does() -> None:
    from specc.logic.checks import rule_conditions, spec_bdd

    spec = make_spec(
        ["a", "b"],
        types={
            "t": [
                rule("x", ref("a"), 1),
                rule("y", and_(ref("b"), not_(ref("a"))), 2),
                rule("z", None, 3),
            ]
        },
    )
    bdd = spec_bdd(spec)
    conds = rule_conditions(bdd, spec.response_types[0])
    assert conds[2] == bdd.expr(and_(not_(ref("a")), not_(ref("b"))))


def test_response_type_without_rules() -> None:
    spec = make_spec(["a"], types={"empty": []})
    [diag] = check_response_types(spec)
    assert diag.code == "E202" and "no rules" in diag.notes[0]


def test_unknown_names_are_free_propositions_not_crashes() -> None:
    spec = make_spec(
        ["a"],
        types={"t": [rule("ideal", ref("apolgy"), 1), rule("bad", not_(ref("a")), 2)]},
    )
    diags = check_response_types(spec)
    assert codes(diags) == ["E201", "E202"]
    assert diags[0].notes[0] == "both hold when a=false, apolgy=true"
    assert diags[1].notes[0] == "no tier holds when a=true, apolgy=false"


def test_constant_rules() -> None:
    spec = make_spec(["a"], types={"t": [rule("ideal", const(True), 1), rule("bad", ref("a"), 2)]})
    [diag] = check_response_types(spec)
    assert diag.code == "E201"
    assert diag.notes[0] == "both hold when a=true"


@st.composite
def rule_sets(draw: st.DrawFn) -> list[TierRule]:
    n = draw(st.integers(min_value=1, max_value=4))
    rules = [rule(f"t{i}", draw(exprs(max_leaves=6)), i + 1) for i in range(n)]
    if draw(st.booleans()):
        rules.append(rule("rest", None, n + 1))
    return rules


@settings(max_examples=150, deadline=None)
@given(rule_sets())
def test_diagnostics_match_brute_force(rules: list[TierRule]) -> None:
    spec = make_spec(VARS, types={"t": rules})
    diags = check_response_types(spec)
    total = list(assignments(VARS))
    holds = [[rule_holds(rules, i, a, {}) for i in range(len(rules))] for a in total]
    never = {i for i in range(len(rules)) if not any(h[i] for h in holds)}
    overlapping = {
        (i, j)
        for h in holds
        for j in range(len(rules))
        for i in range(j)
        if h[i] and h[j] and i not in never and j not in never
    }
    uncovered = any(not any(h) for h in holds)

    assert {d.span.line - 1 for d in diags if d.code == "E203"} == never
    assert {d.span.line - 1 for d in diags if d.code == "E201"} == {j for _, j in overlapping}
    assert sum(d.code == "E201" for d in diags) == len(overlapping)
    assert any(d.code == "E202" for d in diags) == uncovered

    # every counterexample is one, whatever the variables it leaves out
    for d in diags:
        if d.code == "E201":
            later = d.span.line - 1
            earlier = next(i for i, r in enumerate(rules) if f"'{r.tier}' and" in d.message)
            model = _parse_note(d.notes[0], "both hold when ")
            for a in completions(model, VARS):
                assert rule_holds(rules, earlier, a, {}) and rule_holds(rules, later, a, {})
        if d.code == "E202":
            model = _parse_note(d.notes[0], "no tier holds when ")
            for a in completions(model, VARS):
                assert not any(rule_holds(rules, i, a, {}) for i in range(len(rules)))


def _parse_note(note: str, prefix: str) -> dict[str, bool]:
    assert note.startswith(prefix), note
    body = note[len(prefix) :]
    if body == "the propositions take any values":
        return {}
    pairs = (part.split("=") for part in body.split(", "))
    return {name: value == "true" for name, value in pairs}


def test_counterexamples_through_derived_propositions_are_real() -> None:
    derived: dict[str, Expr] = {
        "d1": or_(ref("a"), ref("b")),
        "d2": and_(ref("d1"), not_(ref("c"))),
    }
    rules = [rule("ideal", ref("d2"), 1), rule("bad", and_(ref("b"), not_(ref("c"))), 2)]
    spec = make_spec(["a", "b", "c"], derived, {"t": rules})
    diags = check_response_types(spec)
    assert codes(diags) == ["E201", "E202"]
    model = _parse_note(diags[0].notes[0], "both hold when ")
    for a in completions(model, ["a", "b", "c"]):
        assert rule_holds(rules, 0, a, derived) and rule_holds(rules, 1, a, derived)
    model = _parse_note(diags[1].notes[0], "no tier holds when ")
    for a in completions(model, ["a", "b", "c"]):
        assert not any(rule_holds(rules, i, a, derived) for i in range(2))


def test_referenced_names_is_iterative_and_ordered() -> None:
    e: Expr = ref("z")
    for _ in range(5000):
        e = not_(e)
    assert referenced_names(and_(ref("b"), e, ref("b"), ref("a"))) == ["b", "z", "a"]


def test_twenty_propositions_check() -> None:
    """Correctness at 20 propositions; the time it takes is benchmarks/bench_logic.py's."""
    spec = synthetic_spec(20)
    diags = check_response_types(spec)
    assert diags == []
    # breaking the ladder is caught: drop the last rule
    rt = spec.response_types[0]
    broken = spec.model_copy(
        update={"response_types": (rt.model_copy(update={"rules": rt.rules[:-1]}),)}
    )
    assert codes(check_response_types(broken)) == ["E202"]
