"""A config's completion classes as tier rules, exclusive and exhaustive.

In the config a class holds for a completion of a response type when all its listed
proposition values hold (a derived proposition is the AND of its conditions). The
format calls its classes mutually exclusive, and OpenAI's published config is: each
of its four response types has exactly one class for every combination of answers.
Its code has no rule for a config that is not (no resolution order is published), so
by default the importer refuses one, naming the two classes and an answer
combination where both hold (or where none does). ``resolve`` asks for a rule:

``worst-first``
    a completion in several classes gets the worst of them (the last in
    ``completion_class_order``): the safe reading for a reward;
``best-first``
    it gets the best of them (the first), like an if/elif chain;

and with either, a completion in no class gets the worst class of its response type.
A class that can never hold (its conditions contradict each other) is left out.

>>> resolve_classes(config, "error")            # doctest: +SKIP
[TypeRules(response_type='hard_refuse', rules=(('ideal', Ref(...)), ...), notes=())]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from specc import ir
from specc.errors import DataError
from specc.importer.config import ClassRule, Condition, RbrConfig
from specc.logic.bdd import BDD, FALSE, BDDTooLarge

__all__ = ["RESOLVE_MODES", "Resolve", "TypeRules", "conditions_expr", "resolve_classes"]

Resolve = Literal["error", "worst-first", "best-first"]
RESOLVE_MODES: tuple[str, ...] = ("error", "worst-first", "best-first")

_SPAN = ir.Span.unknown("<import>")


@dataclass(frozen=True)
class TypeRules:
    """The tier rules of one response type, best first (``None``: ``otherwise``)."""

    response_type: str
    rules: tuple[tuple[str, ir.Expr | None], ...]
    notes: tuple[str, ...]


def conditions_expr(conditions: Sequence[Condition]) -> ir.Expr:
    """``a and not b and ...`` (``true`` for no conditions)."""
    terms: list[ir.Expr] = [
        ir.Ref(span=_SPAN, name=c.name)
        if c.value
        else ir.Not(span=_SPAN, operand=ir.Ref(span=_SPAN, name=c.name))
        for c in conditions
    ]
    if not terms:
        return ir.Const(span=_SPAN, value=True)
    return terms[0] if len(terms) == 1 else ir.And(span=_SPAN, operands=tuple(terms))


def _and_not(expr: ir.Expr, excluded: Sequence[ir.Expr]) -> ir.Expr:
    """``expr and not (e1 or e2 ...)``, flat: ``a and b and not (c or d)``."""
    if not excluded:
        return expr
    other = excluded[0] if len(excluded) == 1 else ir.Or(span=_SPAN, operands=tuple(excluded))
    head = expr.operands if isinstance(expr, ir.And) else (expr,)
    if isinstance(expr, ir.Const) and expr.value:
        head = ()
    negated = ir.Not(span=_SPAN, operand=other)
    return negated if not head else ir.And(span=_SPAN, operands=(*head, negated))


def _bdd(config: RbrConfig) -> BDD:
    derived = {d.name: conditions_expr(d.conditions) for d in config.derived}
    return BDD((p.name for p in config.propositions), derived)


def _refuse(
    bdd: BDD, rt: str, what: str, node: int, rule: ClassRule | None, config: RbrConfig
) -> DataError:
    example = bdd.format_assignment(bdd.sat_one(node)) or "for every answer"
    where = rule.where if rule is not None else config.rules_of(rt)[-1].where
    return DataError(
        f"{what} for response type {rt!r} when {example}",
        str(where),
        "the format's classes must be mutually exclusive and cover every answer; fix the "
        "conditions, or pass --resolve worst-first (a completion in several classes gets "
        "the worst) or --resolve best-first (the best); either puts a completion in no "
        "class into the worst",
    )


def _resolve_type(bdd: BDD, config: RbrConfig, rt: str, mode: Resolve) -> TypeRules:
    classes = config.rules_of(rt)
    exprs = [conditions_expr(c.conditions) for c in classes]
    nodes = [bdd.expr(e) for e in exprs]
    notes = []
    live = []
    for i, (rule, node) in enumerate(zip(classes, nodes, strict=True)):
        if node == FALSE:
            notes.append(f"class {rule.tier!r} can never hold for {rt!r}: its conditions conflict")
        else:
            live.append(i)
    overlaps = [
        (j, k) for n, j in enumerate(live) for k in live[n + 1 :] if bdd.AND(nodes[j], nodes[k])
    ]
    uncovered = bdd.NOT(bdd.OR(*nodes))
    if mode == "error":
        if overlaps:
            j, k = overlaps[0]
            both = bdd.AND(nodes[j], nodes[k])
            what = f"classes {classes[j].tier!r} and {classes[k].tier!r} both hold"
            raise _refuse(bdd, rt, what, both, classes[k], config)
        if uncovered != FALSE:
            raise _refuse(bdd, rt, "no class holds", uncovered, None, config)
    rules: list[tuple[str, ir.Expr | None]] = []
    for i in live:
        if mode == "worst-first":
            beaten_by = [k for j, k in overlaps if j == i]
        else:
            beaten_by = [j for j, k in overlaps if k == i]
        if beaten_by:
            own = bdd.AND(nodes[i], bdd.NOT(bdd.OR(*(nodes[k] for k in beaten_by))))
            if own == FALSE:
                other = "a worse" if mode == "worst-first" else "a better"
                notes.append(
                    f"class {classes[i].tier!r} never holds for {rt!r} ({mode}): every "
                    f"completion in it is also in {other} class"
                )
                continue
        rules.append((classes[i].tier, _and_not(exprs[i], [exprs[k] for k in beaten_by])))
    if overlaps:
        pairs = ", ".join(f"{classes[j].tier}/{classes[k].tier}" for j, k in overlaps)
        notes.append(f"{rt}: overlapping classes resolved {mode} ({pairs})")
    if uncovered != FALSE:
        worst = classes[-1].tier
        rules = [(tier, expr) for tier, expr in rules if tier != worst]
        rules.append((worst, None))
        example = bdd.format_assignment(bdd.sat_one(uncovered))
        notes.append(
            f"{rt}: completions in no class (e.g. {example}) go to its worst class {worst!r}"
        )
    return TypeRules(rt, tuple(rules), tuple(notes))


def resolve_classes(config: RbrConfig, mode: Resolve = "error") -> list[TypeRules]:
    """Tier rules for every response type of ``config`` (see the module docstring).

    Raises :class:`~specc.errors.DataError` at the class's YAML line when the classes
    overlap or leave a gap and ``mode`` is ``"error"``."""
    if mode not in RESOLVE_MODES:
        raise ValueError(f"unknown resolve mode {mode!r}")
    bdd = _bdd(config)
    try:
        return [_resolve_type(bdd, config, rt, mode) for rt in config.response_types()]
    except BDDTooLarge as exc:
        raise DataError(str(exc), config.path) from None
