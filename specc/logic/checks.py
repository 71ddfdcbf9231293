"""Tier logic checks: every response type's rules must be exclusive and exhaustive.

Each rule ``tier when expr`` is a boolean function of the base propositions (derived
ones expanded); ``tier otherwise`` holds exactly when no other rule of the type
does. Over every truth assignment of the propositions, exactly one tier must hold:

* E201 two tiers can hold at once (reported at the later rule, with an assignment
  where both hold);
* E202 some assignment makes no tier hold (reported at the response type, with
  that assignment);
* E203 a rule can never hold;
* E204 ``otherwise`` is not the last rule.

Pure Python: the checker imports this module, so it must stay free of numpy.

>>> from specc.ir import Spec, Span
>>> check_response_types(Spec(span=Span.unknown(), name="p", version="1"))
[]
"""

from __future__ import annotations

from specc.errors import Diagnostic
from specc.ir import And, Expr, Not, Or, Ref, ResponseType, Spec, TierRule
from specc.logic.bdd import BDD, FALSE

__all__ = ["check_response_types", "referenced_names", "rule_conditions", "spec_bdd"]

_MAX_EXPR_TEXT = 60


def spec_bdd(spec: Spec) -> BDD:
    """A manager whose variable order is the spec's proposition order and which
    expands the spec's derived propositions (the first definition of a name wins;
    duplicates are the checker's E102)."""
    derived: dict[str, Expr] = {}
    for d in spec.derived:
        derived.setdefault(d.name, d.expr)
    return BDD((p.name for p in spec.propositions), derived)


def rule_conditions(bdd: BDD, rt: ResponseType) -> list[int]:
    """The node of each rule of ``rt``, in rule order.

    ``tier otherwise`` holds when no ``when`` rule of the type holds and no earlier
    ``otherwise`` does. In its proper place (last) that is "not any earlier rule";
    a misplaced one (E204) still means "none of the others", so that one mistake
    does not cascade into overlap errors with every later rule."""
    whens = {i: bdd.expr(r.when) for i, r in enumerate(rt.rules) if r.when is not None}
    any_when = bdd.OR(*whens.values())
    conds: list[int] = []
    earlier_otherwise = FALSE
    for i, rule in enumerate(rt.rules):
        if rule.when is not None:
            conds.append(whens[i])
        else:
            cond = bdd.NOT(bdd.OR(any_when, earlier_otherwise))
            earlier_otherwise = bdd.OR(earlier_otherwise, cond)
            conds.append(cond)
    return conds


def check_response_types(spec: Spec) -> list[Diagnostic]:
    """Diagnostics E201-E204 for every response type of ``spec``, in source order.

    Unknown names (reported by the checker as E101) are treated as free
    propositions, so this never fails on them."""
    bdd = spec_bdd(spec)
    lowest = spec.tier_names()[-1]
    derived_names = {d.name for d in spec.derived}
    out: list[Diagnostic] = []
    for rt in spec.response_types:
        out.extend(_check_type(bdd, rt, lowest, derived_names))
    return out


def _check_type(bdd: BDD, rt: ResponseType, lowest: str, derived: set[str]) -> list[Diagnostic]:
    rules = rt.rules
    if not rules:
        return [
            Diagnostic(
                "E202",
                f"tiers of response type '{rt.name}' are not exhaustive",
                rt.span,
                hint=f"give it one rule per tier, ending with `{lowest} otherwise`",
                notes=("it has no rules, so no tier ever holds",),
            )
        ]
    out: list[Diagnostic] = []
    for i, rule in enumerate(rules[:-1]):
        if rule.when is None:
            out.append(
                Diagnostic(
                    "E204",
                    f"'otherwise' must be the last rule in response type '{rt.name}'",
                    rule.span,
                    hint=f"move `{rule.tier} otherwise` after the other rules",
                    notes=(f"it is rule {i + 1} of {len(rules)}",),
                )
            )
    conds = rule_conditions(bdd, rt)
    live: list[int] = []
    for i, (rule, cond) in enumerate(zip(rules, conds, strict=True)):
        if cond == FALSE:
            out.append(_never_holds(rt, rule))
            continue
        for j in live:
            earlier = rules[j]
            if earlier.tier == rule.tier:
                continue  # a duplicate tier rule is the checker's E109, not an overlap
            both = bdd.AND(conds[j], cond)
            if both != FALSE:
                out.append(_overlap(bdd, rt, earlier, rule, both, derived))
        live.append(i)
    uncovered = bdd.NOT(bdd.OR(*conds))
    if uncovered != FALSE:
        out.append(_not_exhaustive(bdd, rt, uncovered, lowest, derived))
    return out


def _never_holds(rt: ResponseType, rule: TierRule) -> Diagnostic:
    if rule.when is None:
        note = "the earlier rules already cover every case"
        hint = f"remove `{rule.tier} otherwise`, or narrow the earlier rules"
    else:
        note = "its condition is false for every answer to the propositions"
        hint = "fix the condition (it contradicts itself) or remove the rule"
    return Diagnostic(
        "E203",
        f"tier '{rule.tier}' can never hold in response type '{rt.name}'",
        rule.span,
        hint=hint,
        notes=(note,),
    )


def _overlap(
    bdd: BDD, rt: ResponseType, earlier: TierRule, later: TierRule, both: int, derived: set[str]
) -> Diagnostic:
    example = bdd.sat_one(both)
    notes = [f"both hold when {_describe(bdd, example)}"]
    shown = _derived_values(bdd, [earlier, later], example, derived)
    if shown:
        notes.append(f"which makes {shown}")
    text = _negated_text(earlier.when) if earlier.when is not None else None
    if text is not None:
        hint = f"make them exclusive, e.g. add `and {text}` to the '{later.tier}' rule"
    else:
        hint = f"make the '{earlier.tier}' and '{later.tier}' rules exclude each other"
    return Diagnostic(
        "E201",
        f"tiers '{earlier.tier}' and '{later.tier}' overlap in response type '{rt.name}'",
        later.span,
        hint=hint,
        notes=tuple(notes),
    )


def _not_exhaustive(
    bdd: BDD, rt: ResponseType, uncovered: int, lowest: str, derived: set[str]
) -> Diagnostic:
    example = bdd.sat_one(uncovered)
    notes = [f"no tier holds when {_describe(bdd, example)}"]
    shown = _derived_values(bdd, list(rt.rules), example, derived)
    if shown:
        notes.append(f"which makes {shown}")
    return Diagnostic(
        "E202",
        f"tiers of response type '{rt.name}' are not exhaustive",
        rt.span,
        hint=f"add a rule that covers this case, or end with `{lowest} otherwise`",
        notes=tuple(notes),
    )


def _describe(bdd: BDD, assignment: dict[str, bool]) -> str:
    if not assignment:
        return "the propositions take any values"
    return bdd.format_assignment(assignment)


def _derived_values(
    bdd: BDD, rules: list[TierRule], example: dict[str, bool], derived: set[str]
) -> str:
    """``"refusal=true, judgemental=false"`` for the derived propositions the
    rules name directly and whose value the counterexample determines."""
    parts: list[str] = []
    seen: set[str] = set()
    for rule in rules:
        if rule.when is None:
            continue
        for name in referenced_names(rule.when):
            if name in seen or name not in derived:
                continue
            seen.add(name)
            value = bdd.value_under(bdd.derived(name), example)
            if value is not None:
                parts.append(f"{name}={'true' if value else 'false'}")
    return ", ".join(parts)


def referenced_names(expr: Expr) -> list[str]:
    """The names ``expr`` refers to, first occurrence order, without recursion."""
    names: list[str] = []
    seen: set[str] = set()
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Ref):
            if node.name not in seen:
                seen.add(node.name)
                names.append(node.name)
        elif isinstance(node, Not):
            stack.append(node.operand)
        elif isinstance(node, (And, Or)):
            stack.extend(reversed(node.operands))
    return names


def _negated_text(expr: Expr) -> str | None:
    """``not (expr)`` for a hint, without a double negation."""
    if isinstance(expr, Not):
        return _expr_text(expr.operand, parenthesise=False)
    inner = _expr_text(expr)
    return None if inner is None else f"not {inner}"


def _expr_text(expr: Expr, parenthesise: bool = True) -> str | None:
    """A short parenthesised rendering of ``expr`` for a hint, or None if too long."""
    try:
        text = str(expr)
    except RecursionError:
        return None
    if len(text) > _MAX_EXPR_TEXT:
        return None
    if parenthesise and isinstance(expr, (And, Or)):
        text = f"({text})"
    return text
