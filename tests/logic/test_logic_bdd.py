"""The BDD manager: canonicity, satisfying assignments, derived expansion, depth."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specc.ir import Expr, Not
from specc.logic.bdd import BDD, FALSE, TRUE, BDDTooLarge

from .helpers import VARS, and_, assignments, completions, const, evaluate, exprs, not_, or_, ref


def truth_table(e: Expr) -> tuple[bool, ...]:
    return tuple(evaluate(e, a) for a in assignments(VARS))


def test_equivalent_formulas_share_one_node() -> None:
    bdd = BDD(VARS)
    a, b, c = ref("a"), ref("b"), ref("c")
    de_morgan = (bdd.expr(not_(and_(a, b))), bdd.expr(or_(not_(a), not_(b))))
    distribute = (bdd.expr(and_(a, or_(b, c))), bdd.expr(or_(and_(a, b), and_(a, c))))
    absorb = (bdd.expr(or_(a, and_(a, b))), bdd.expr(a))
    assert de_morgan[0] == de_morgan[1]
    assert distribute[0] == distribute[1]
    assert absorb[0] == absorb[1] == bdd.var("a")
    assert bdd.expr(and_(a, not_(a))) == FALSE
    assert bdd.expr(or_(a, not_(a))) == TRUE
    assert bdd.expr(const(True)) == TRUE and bdd.is_true(TRUE) and bdd.is_false(FALSE)


@settings(max_examples=150, deadline=None)
@given(exprs(), exprs())
def test_same_node_exactly_when_same_function(e1: Expr, e2: Expr) -> None:
    bdd = BDD(VARS)
    same_node = bdd.expr(e1) == bdd.expr(e2)
    assert same_node == (truth_table(e1) == truth_table(e2))


@settings(max_examples=150, deadline=None)
@given(exprs())
def test_bdd_agrees_with_reference_semantics(e: Expr) -> None:
    bdd = BDD(VARS)
    node = bdd.expr(e)
    for a in assignments(VARS):
        assert bdd.evaluate(node, a) == evaluate(e, a)
    assert bdd.expr(not_(not_(e))) == node
    assert bdd.NOT(node) == bdd.expr(not_(e))


@settings(max_examples=150, deadline=None)
@given(exprs())
def test_sat_one_is_a_model_whatever_the_free_variables(e: Expr) -> None:
    bdd = BDD(VARS)
    node = bdd.expr(e)
    if node == FALSE:
        with pytest.raises(ValueError, match="unsatisfiable"):
            bdd.sat_one(node)
        return
    model = bdd.sat_one(node)
    assert set(model) <= set(bdd.support(node))
    assert all(evaluate(e, total) for total in completions(model, VARS))
    # keys come in variable order
    assert list(model) == [v for v in VARS if v in model]


def test_sat_one_names_only_what_matters() -> None:
    bdd = BDD(["apology", "judgement", "other"])
    node = bdd.expr(and_(ref("apology"), not_(ref("judgement"))))
    assert bdd.sat_one(node) == {"apology": True, "judgement": False}
    assert bdd.format_assignment(bdd.sat_one(node)) == "apology=true, judgement=false"
    assert bdd.sat_one(TRUE) == {}


def test_support_is_in_declaration_order_and_ignores_cancelled_names() -> None:
    bdd = BDD(["x", "y", "z"])
    node = bdd.expr(or_(and_(ref("z"), ref("x")), and_(ref("y"), not_(ref("y")))))
    assert bdd.support(node) == ("x", "z")
    assert bdd.support(TRUE) == ()


def test_variable_order_is_the_declaration_order() -> None:
    bdd = BDD(["b", "a"])
    node = bdd.expr(and_(ref("a"), ref("b")))
    assert bdd.variables[bdd.level(node)] == "b"


def test_derived_names_expand_once_and_unknown_names_are_fresh_variables() -> None:
    derived: dict[str, Expr] = {
        "both": and_(ref("a"), ref("b")),
        "either_both": or_(ref("both"), ref("c")),
    }
    bdd = BDD(["a", "b", "c"], derived)
    node = bdd.expr(and_(ref("either_both"), ref("mystery")))
    assert bdd.support(node) == ("a", "b", "c", "mystery")
    assert bdd.variables == ("a", "b", "c", "mystery")
    assert bdd.derived("both") == bdd.expr(and_(ref("a"), ref("b")))
    with pytest.raises(KeyError):
        bdd.derived("nope")


def test_derived_cycles_do_not_crash() -> None:
    bdd = BDD(["a"], {"x": and_(ref("a"), ref("y")), "y": or_(ref("x"), ref("a"))})
    node = bdd.expr(ref("x"))
    # the cyclic reference is an opaque variable; the result is still a formula
    assert node not in (FALSE, TRUE)
    assert "a" in bdd.support(node)


@pytest.mark.parametrize("depth", [10_000])
def test_deep_expressions_do_not_hit_the_recursion_limit(depth: int) -> None:
    e: Expr = ref("a")
    for i in range(depth):
        e = Not(span=e.span, operand=e) if i % 2 else and_(e, ref(f"v{i % 5}"))
    bdd = BDD()
    node = bdd.expr(e)
    model = bdd.sat_one(node)
    assert bdd.evaluate(node, {**{v: False for v in bdd.variables}, **model})


def test_long_variable_orders_do_not_hit_the_recursion_limit() -> None:
    names = [f"p{i}" for i in range(3000)]
    bdd = BDD(names)
    node = bdd.AND(*(bdd.var(n) for n in names))
    assert bdd.size(node) == 3000
    assert bdd.sat_one(node) == {n: True for n in names}
    assert bdd.OR(bdd.NOT(node), node) == TRUE


def test_value_under_partial_assignments() -> None:
    bdd = BDD(["a", "b"])
    node = bdd.expr(and_(ref("a"), ref("b")))
    assert bdd.value_under(node, {"a": False}) is False
    assert bdd.value_under(node, {"a": True}) is None
    assert bdd.value_under(node, {"a": True, "b": True}) is True


def test_export_is_canonical_whatever_the_build_order() -> None:
    e1, e2 = or_(ref("a"), and_(ref("b"), ref("c"))), and_(ref("c"), not_(ref("a")))
    first, second = BDD(["a", "b", "c"]), BDD(["a", "b", "c"])
    second.expr(or_(ref("b"), ref("c")))  # unrelated garbage changes internal ids
    r1 = {"x": first.expr(e1), "y": first.expr(e2)}
    r2 = {"y": second.expr(e2), "x": second.expr(e1)}
    assert first.export(r1) == second.export(r2)
    nodes, _ = first.export(r1)
    assert nodes[:2] == [(-1, 0, 0), (-1, 1, 1)]
    assert all(low < i and high < i for i, (_, low, high) in enumerate(nodes) if i > 1)


def test_node_budget_raises_a_clear_error() -> None:
    # (x1 and y1) or (x2 and y2) or ... with all x before all y is exponential
    xs, ys = [f"x{i}" for i in range(12)], [f"y{i}" for i in range(12)]
    bdd = BDD(xs + ys, max_nodes=500)
    with pytest.raises(BDDTooLarge, match="next to each other"):
        bdd.expr(or_(*(and_(ref(x), ref(y)) for x, y in zip(xs, ys, strict=True))))


@given(st.lists(st.sampled_from(VARS), min_size=1, max_size=6))
def test_and_or_of_many(names: list[str]) -> None:
    bdd = BDD(VARS)
    conj = bdd.AND(*(bdd.var(n) for n in names))
    assert bdd.sat_one(conj) == {n: True for n in VARS if n in names}
    disj = bdd.OR(*(bdd.var(n) for n in names))
    assert bdd.implies(conj, disj)
