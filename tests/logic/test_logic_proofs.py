"""Rule-test proofs against brute force: a counterexample exists exactly when some
reply that agrees with the givens breaks the expectation, every one found really is
one, and "left open" names exactly the values the givens do not force."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from specc.ir import Answer, Expr
from specc.logic.bdd import BDD
from specc.logic.proofs import answers_node, contradiction, counterexample

from .helpers import VARS, S, assignments, completions, evaluate, exprs, ref


@st.composite
def _answers(draw: st.DrawFn) -> list[Answer]:
    names = draw(st.lists(st.sampled_from([*VARS, "x"]), unique=True, max_size=4))
    return [Answer(span=S, name=n, value=draw(st.booleans())) for n in names]


def _agrees(answers: list[Answer], total: dict[str, bool], derived: dict[str, Expr]) -> bool:
    return all(evaluate(ref(a.name), total, derived) == a.value for a in answers)


@settings(max_examples=200, deadline=None)
@given(_answers(), exprs(VARS, max_leaves=8), exprs(VARS, max_leaves=4))
def test_counterexamples_match_brute_force(answers: list[Answer], expected: Expr, x: Expr) -> None:
    derived = {"x": x}
    bdd = BDD(VARS, derived)
    g = answers_node(bdd, answers)
    cx = counterexample(bdd, g, bdd.expr(expected))
    bad = [
        total
        for total in assignments(VARS)
        if _agrees(answers, total, derived) and not evaluate(expected, total, derived)
    ]
    assert (cx is None) == (not bad)
    if cx is None:
        return
    # Every completion of the counterexample agrees with the givens and breaks it.
    for total in completions(cx.assignment, VARS):
        assert _agrees(answers, total, derived)
        assert not evaluate(expected, total, derived)
    agreeing = [t for t in assignments(VARS) if _agrees(answers, t, derived)]
    for name, value in cx.assignment.items():
        forced = all(t[name] == value for t in agreeing)
        assert (name in cx.left_open) == (not forced)


@settings(max_examples=200, deadline=None)
@given(_answers(), exprs(VARS, max_leaves=4))
def test_contradiction_is_the_first_answer_no_reply_can_add(answers: list[Answer], x: Expr) -> None:
    derived = {"x": x}
    index = contradiction(BDD(VARS, derived), answers)
    possible = [
        any(_agrees(answers[: k + 1], t, derived) for t in assignments(VARS))
        for k in range(len(answers))
    ]
    assert index == next((k for k, ok in enumerate(possible) if not ok), None)
