"""Builders for IR expressions and specs (no parser), a reference evaluator and
hypothesis strategies shared by the logic tests."""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from hypothesis import strategies as st

from specc.ir import (
    And,
    Const,
    Constraint,
    Derived,
    Expr,
    Not,
    Or,
    Proposition,
    Ref,
    ResponseType,
    Span,
    Spec,
    TierDecl,
    TierRule,
)

S = Span.unknown()


def span(line: int) -> Span:
    """A distinct span so that tests can tell which node a diagnostic points at."""
    return Span(file="t.rbr", line=line, col=1, end_line=line, end_col=2)


def ref(name: str) -> Ref:
    return Ref(span=S, name=name)


def not_(e: Expr) -> Not:
    return Not(span=S, operand=e)


def and_(*es: Expr) -> And:
    return And(span=S, operands=es)


def or_(*es: Expr) -> Or:
    return Or(span=S, operands=es)


def const(v: bool) -> Const:
    return Const(span=S, value=v)


def rule(tier: str, when: Expr | None, line: int = 1) -> TierRule:
    return TierRule(span=span(line), tier=tier, when=when)


def make_spec(
    props: Sequence[str],
    derived: Mapping[str, Expr] | None = None,
    types: Mapping[str, Sequence[TierRule]] | None = None,
    constraints: Mapping[str, Expr] | None = None,
    tiers: Sequence[str] = (),
) -> Spec:
    return Spec(
        span=S,
        name="test",
        version="1",
        tiers=tuple(TierDecl(span=S, name=t) for t in tiers),
        propositions=tuple(Proposition(span=S, name=p, question=f"{p}?") for p in props),
        derived=tuple(Derived(span=S, name=n, expr=e) for n, e in (derived or {}).items()),
        response_types=tuple(
            ResponseType(span=span(100 + i), name=name, rules=tuple(rules))
            for i, (name, rules) in enumerate((types or {}).items())
        ),
        constraints=tuple(
            Constraint(span=S, name=n, cost=e, limit=0.1) for n, e in (constraints or {}).items()
        ),
    )


def evaluate(
    e: Expr, assignment: Mapping[str, bool], derived: Mapping[str, Expr] | None = None
) -> bool:
    """The reference semantics, straight from the definition (recursive)."""
    derived = derived or {}
    if isinstance(e, Ref):
        if e.name in derived:
            return evaluate(derived[e.name], assignment, derived)
        return assignment[e.name]
    if isinstance(e, Const):
        return e.value
    if isinstance(e, Not):
        return not evaluate(e.operand, assignment, derived)
    if isinstance(e, And):
        return all(evaluate(o, assignment, derived) for o in e.operands)
    return any(evaluate(o, assignment, derived) for o in e.operands)


def rule_holds(
    rules: Sequence[TierRule],
    index: int,
    assignment: Mapping[str, bool],
    derived: Mapping[str, Expr],
) -> bool:
    """Whether rule ``index`` holds; ``otherwise`` = no earlier rule holds."""
    r = rules[index]
    if r.when is not None:
        return evaluate(r.when, assignment, derived)
    return not any(rule_holds(rules, j, assignment, derived) for j in range(index))


def assignments(names: Sequence[str]) -> Iterator[dict[str, bool]]:
    for values in itertools.product((False, True), repeat=len(names)):
        yield dict(zip(names, values, strict=True))


def completions(partial: Mapping[str, bool], names: Sequence[str]) -> Iterator[dict[str, bool]]:
    """Every total assignment of ``names`` that extends ``partial``."""
    free = [n for n in names if n not in partial]
    for rest in assignments(free):
        yield {**rest, **partial}


VARS = ("a", "b", "c", "d", "e")


def exprs(names: Sequence[str] = VARS, max_leaves: int = 12) -> st.SearchStrategy[Expr]:
    leaves = st.one_of(
        st.sampled_from(names).map(ref),
        st.booleans().map(const),
    )

    def extend(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
        return st.one_of(
            children.map(not_),
            st.lists(children, min_size=1, max_size=3).map(lambda xs: and_(*xs)),
            st.lists(children, min_size=1, max_size=3).map(lambda xs: or_(*xs)),
        )

    return st.recursive(leaves, extend, max_leaves=max_leaves)


TIERS5 = ("ideal", "good", "less_good", "bad", "unacceptable")
PROPS = ("refuses", "apology", "judgemental", "explains_policy", "harmful_content")


def reference_policy(last: TierRule | None = None) -> Spec:
    """A hard-refusal type in the shape of the RBR paper's, five tiers."""
    derived = {
        "clean_refusal": and_(
            ref("refuses"), not_(ref("judgemental")), not_(ref("harmful_content"))
        ),
    }
    rules = [
        rule("ideal", and_(ref("clean_refusal"), ref("apology"), not_(ref("explains_policy"))), 1),
        rule("good", and_(ref("clean_refusal"), ref("apology"), ref("explains_policy")), 2),
        rule("less_good", and_(ref("clean_refusal"), not_(ref("apology"))), 3),
        rule("bad", and_(ref("refuses"), ref("judgemental"), not_(ref("harmful_content"))), 4),
        last or rule("unacceptable", None, 5),
    ]
    return make_spec(PROPS, derived, {"hard_refuse": rules}, tiers=TIERS5)


def synthetic_spec(n: int) -> Spec:
    """``benchmarks/bench_logic.py``'s ladder spec over ``n`` propositions."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_logic.py"
    spec_ = importlib.util.spec_from_file_location("bench_logic", path)
    assert spec_ is not None and spec_.loader is not None
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    result: Spec = module.synthetic_spec(n)
    return result
