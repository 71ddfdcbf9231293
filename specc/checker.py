"""Static checks over a merged :class:`~specc.ir.Spec`.

Passes are plain functions run in order (:data:`PASSES`); each returns diagnostics
and all of them are reported together. The tier logic (exclusive, exhaustive,
satisfiable) lives in :mod:`specc.logic.checks` and runs only once names resolve,
so that one typo does not cascade into a page of logic errors.

>>> report = check_file("policies/minimal.rbr")     # doctest: +SKIP
>>> report.ok                                       # doctest: +SKIP
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from specc import ir
from specc.errors import Diagnostic, did_you_mean
from specc.loader import LoadResult, load_spec
from specc.patterns import PatternError, check_keywords, compile_pattern

__all__ = [
    "PASSES",
    "CheckReport",
    "check_file",
    "check_spec",
    "check_tests",
    "graded_propositions",
]


class _Names:
    """Name tables shared by the passes."""

    def __init__(self, spec: ir.Spec):
        self.props = {p.name: p for p in spec.propositions}
        self.derived = {d.name: d for d in spec.derived}
        self.all = {**self.props, **self.derived}
        self.tiers = spec.tier_names()
        self.types = {rt.name: rt for rt in spec.response_types}


def _unknown(ref: ir.Ref, names: _Names, what: str = "proposition") -> Diagnostic:
    hint = did_you_mean(ref.name, names.all)
    if hint is None and ref.name in names.tiers:
        hint = f"'{ref.name}' is a tier; rules refer to propositions"
    return Diagnostic("E101", f"unknown {what} '{ref.name}'", ref.span, hint)


def check_names(spec: ir.Spec, names: _Names) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    # Duplicates among local definitions (imports are resolved by the loader).
    seen: dict[str, ir.Node] = {}
    definitions: list[ir.Proposition | ir.Derived] = [*spec.propositions, *spec.derived]
    for item in definitions:
        if item.source is not None:
            seen.setdefault(item.name, item)
            continue
        prior = seen.get(item.name)
        if prior is not None and prior.span.file == item.span.file:
            out.append(
                Diagnostic(
                    "E102",
                    f"'{item.name}' is defined twice",
                    item.span,
                    f"the first definition is at line {prior.span.line}; rename one",
                )
            )
        seen[item.name] = item
    named: list[tuple[str, ir.ResponseType | ir.Constraint]] = [
        *(("response type", rt) for rt in spec.response_types),
        *(("constraint", c) for c in spec.constraints),
    ]
    first: dict[tuple[str, str], ir.Node] = {}
    for kind, node in named:
        key = (kind, node.name)
        if key in first:
            out.append(
                Diagnostic(
                    "E102",
                    f"{kind} '{node.name}' is defined twice",
                    node.span,
                    f"the first definition is at line {first[key].span.line}",
                )
            )
        first.setdefault(key, node)
    tier_seen: dict[str, ir.TierDecl] = {}
    for tier in spec.tiers:
        if tier.name in tier_seen:
            out.append(Diagnostic("E102", f"tier '{tier.name}' is listed twice", tier.span))
        tier_seen.setdefault(tier.name, tier)
    displays: dict[str, ir.ResponseType] = {}
    for rt in spec.response_types:
        if rt.display and rt.display in displays:
            out.append(
                Diagnostic(
                    "E102",
                    f'display name "{rt.display}" is used by two response types',
                    rt.span,
                )
            )
        if rt.display:
            displays.setdefault(rt.display, rt)

    # Unknown references.
    for d in spec.derived:
        out.extend(_unknown(r, names) for r in ir.expr_names(d.expr) if r.name not in names.all)
    for rt in spec.response_types:
        rules_seen: dict[str, ir.TierRule] = {}
        for rule in rt.rules:
            if rule.tier not in names.tiers:
                close = did_you_mean(rule.tier, names.tiers)
                hint = (f"{close} " if close else "") + (
                    f"the tiers are: {', '.join(names.tiers)}"
                    + ("" if spec.tiers else "; declare others in a `tiers { }` block")
                )
                out.append(Diagnostic("E104", f"unknown tier '{rule.tier}'", rule.span, hint))
            if rule.tier in rules_seen:
                out.append(
                    Diagnostic(
                        "E109",
                        f"tier '{rule.tier}' has two rules in response type '{rt.name}'",
                        rule.span,
                        "join the conditions with `or` in one rule",
                    )
                )
            rules_seen.setdefault(rule.tier, rule)
            if rule.when is not None:
                out.extend(
                    _unknown(r, names) for r in ir.expr_names(rule.when) if r.name not in names.all
                )
        if not rt.rules:
            out.append(
                Diagnostic(
                    "E202",
                    f"response type '{rt.name}' has no tier rules",
                    rt.span,
                    "add one rule per tier, e.g. `ideal when ...`",
                )
            )
    for settings in _reward_blocks(spec):
        for ref in settings.extra or ():
            if ref.name not in names.all:
                out.append(_unknown(ref, names))
    for c in spec.constraints:
        out.extend(_unknown(r, names) for r in ir.expr_names(c.cost) if r.name not in names.all)
        for ref in c.applies_to:
            if ref.name not in names.types:
                type_hint = did_you_mean(ref.name, names.types)
                out.append(
                    Diagnostic("E105", f"unknown response type '{ref.name}'", ref.span, type_hint)
                )
    return out


def _reward_blocks(spec: ir.Spec) -> Iterator[ir.RewardSettings]:
    if spec.reward is not None:
        yield spec.reward
    for rt in spec.response_types:
        if rt.reward is not None:
            yield rt.reward


def check_propositions(spec: ir.Spec, names: _Names) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for p in spec.propositions:
        if p.question is None and p.extractor is None:
            out.append(
                Diagnostic(
                    "E106",
                    f"proposition '{p.name}' has neither a question nor a `match`",
                    p.span,
                    'add question = """...""" for the grader, or a `match` extractor',
                )
            )
        elif p.question is not None and p.extractor is not None:
            out.append(
                Diagnostic(
                    "E107",
                    f"proposition '{p.name}' has both a question and a `match`",
                    p.extractor.span,
                    "keep one: an extractor needs no grader question",
                )
            )
        elif p.question is not None and not p.examples:
            out.append(
                Diagnostic(
                    "W004",
                    f"proposition '{p.name}' has no few-shot examples",
                    p.span,
                    "graders are more accurate with a `yes` and a `no` example",
                    severity="warning",
                )
            )
        if isinstance(p.extractor, (ir.RegexExtractor, ir.KeywordsExtractor)):
            problem = _pattern_problem(p.extractor)
            if problem is not None:
                out.append(Diagnostic("E108", str(problem), p.extractor.span, problem.hint))
    return out


def _pattern_problem(extractor: ir.RegexExtractor | ir.KeywordsExtractor) -> PatternError | None:
    """Compile a regex as grading will (RE2, through the same function); vet a keyword
    list as :func:`~specc.patterns.keyword_pattern` will, without the slow compile."""
    try:
        if isinstance(extractor, ir.RegexExtractor):
            compile_pattern(extractor.pattern)
        else:
            check_keywords(extractor.words)
    except PatternError as exc:
        return exc
    return None


def check_cycles(spec: ir.Spec, names: _Names) -> list[Diagnostic]:
    """Cycles among derived propositions, each reported once with its path."""
    out: list[Diagnostic] = []
    deps = {
        d.name: [r.name for r in ir.expr_names(d.expr) if r.name in names.derived]
        for d in spec.derived
    }
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    reported: set[frozenset[str]] = set()
    for start in deps:
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(deps[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                cycle = [*path[path.index(child) :], child]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    d = names.derived[child]
                    out.append(
                        Diagnostic(
                            "E103",
                            f"derived propositions form a cycle: {' -> '.join(cycle)}",
                            d.span,
                            "a derived proposition cannot depend on itself",
                        )
                    )
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(deps[child])))
    return out


def check_tier_logic(spec: ir.Spec, names: _Names) -> list[Diagnostic]:
    from specc.logic.bdd import BDDTooLarge
    from specc.logic.checks import check_response_types

    try:
        return check_response_types(spec)
    except BDDTooLarge as exc:
        return [
            Diagnostic(
                "E205",
                f"the tier rules are too large to analyse: {exc}",
                spec.span,
                "the analysis orders propositions as they are declared: declare the ones "
                "that appear together in a rule next to each other",
            )
        ]


def _base_props(expr: ir.Expr, names: _Names, acc: set[str], visiting: set[str]) -> None:
    for ref in ir.expr_names(expr):
        if ref.name in names.props:
            acc.add(ref.name)
        elif ref.name in names.derived and ref.name not in visiting:
            visiting.add(ref.name)
            _base_props(names.derived[ref.name].expr, names, acc, visiting)


def graded_propositions(spec: ir.Spec) -> dict[str, set[str]]:
    """For each response type, the base propositions its rules and features need."""
    names = _Names(spec)
    out: dict[str, set[str]] = {}
    for rt in spec.response_types:
        acc: set[str] = set()
        for rule in rt.rules:
            if rule.when is not None:
                _base_props(rule.when, names, acc, set())
        settings = (spec.reward or _EMPTY_REWARD).merged(rt.reward)
        for ref in settings.extra or ():
            _base_props(ref, names, acc, set())
        out[rt.name] = acc
    return out


_EMPTY_REWARD = ir.RewardSettings.model_construct(span=ir.Span.unknown())


def check_usage(spec: ir.Spec, names: _Names) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    used: set[str] = set()
    roots: list[ir.Expr] = []
    for rt in spec.response_types:
        roots.extend(r.when for r in rt.rules if r.when is not None)
    for settings in _reward_blocks(spec):
        roots.extend(settings.extra or ())
    roots.extend(c.cost for c in spec.constraints)
    for expr in roots:
        for ref in ir.expr_names(expr):
            used.add(ref.name)
    # Derived propositions pull in what they mention, transitively.
    frontier = [n for n in used if n in names.derived]
    while frontier:
        d = names.derived[frontier.pop()]
        for ref in ir.expr_names(d.expr):
            if ref.name not in used:
                used.add(ref.name)
                if ref.name in names.derived:
                    frontier.append(ref.name)
    definitions: list[ir.Proposition | ir.Derived] = [*spec.propositions, *spec.derived]
    for item in definitions:
        # A library exports its propositions: unused there is not a smell.
        if item.name not in used and item.source is None and not spec.library:
            kind = "proposition" if isinstance(item, ir.Proposition) else "derived proposition"
            out.append(
                Diagnostic(
                    "W001",
                    f"{kind} '{item.name}' is not used by any rule, feature or constraint",
                    item.span,
                    "use it in a rule, list it in `extra = [...]` of a reward block, or remove it",
                    severity="warning",
                )
            )
    graded = graded_propositions(spec)
    for c in spec.constraints:
        if any(r.name not in graded for r in c.applies_to):
            continue  # an unknown response type is already E105
        scope = [r.name for r in c.applies_to] or list(graded)
        produced = set().union(*(graded.get(t, set()) for t in scope)) if scope else set()
        needed: set[str] = set()
        _base_props(c.cost, names, needed, set())
        missing = sorted(needed - produced)
        if missing:
            out.append(
                Diagnostic(
                    "W002",
                    f"constraint '{c.name}' uses {', '.join(repr(m) for m in missing)}, "
                    "which no rule or reward feature of its response types grades",
                    c.cost.span,
                    "specc grades it for the cost alone (an extra grader call per completion); "
                    "list it in `extra = [...]` to also use it as a reward feature",
                    severity="warning",
                )
            )
    used_tiers = {r.tier for rt in spec.response_types for r in rt.rules}
    for tier in spec.tiers:
        if tier.name not in used_tiers and spec.response_types:
            out.append(
                Diagnostic(
                    "W005",
                    f"tier '{tier.name}' is not used by any response type",
                    tier.span,
                    severity="warning",
                )
            )
    return out


def check_grader(spec: ir.Spec, names: _Names) -> list[Diagnostic]:
    """Answer words, and the prompts rendered in the sandbox as the compiler will
    render them: syntax, unsafe templates, undefined variables, slot placement."""
    from specc.prompts import build_prompts, template_text

    g = spec.grader
    out: list[Diagnostic] = []
    if g is not None:
        overlap = {w.lower() for w in g.yes} & {w.lower() for w in g.no}
        if overlap:
            out.append(
                Diagnostic(
                    "E009", f"answer words used for both yes and no: {sorted(overlap)}", g.span
                )
            )
        if g.template_file is not None and g.template_source is None:
            return out  # the loader said why it could not read the file
    if g is None and not any(p.question is not None for p in spec.propositions):
        return out  # nothing to render, no template to check
    _, problems = build_prompts(spec)
    out.extend(problems)
    text = template_text(spec)
    if not problems and g is not None and not ("conversation" in text and "completion" in text):
        out.append(
            Diagnostic(
                "E012",
                "the grader template must place {{ conversation }} and {{ completion }}",
                g.template_at or g.span,
                "put them after the instructions and examples, with the answer slot last",
            )
        )
    return out


def _rule_tiers(rt: ir.ResponseType, names: _Names) -> list[str]:
    return [t for t in names.tiers if any(r.tier == t for r in rt.rules)]


def check_tests(spec: ir.Spec, names: _Names) -> list[Diagnostic]:
    """``test`` blocks: names resolve, each test is complete, givens are consistent
    and a completion test expects only answers its grading produces (E301-E303)."""
    out: list[Diagnostic] = []
    seen: dict[str, ir.SpecTest] = {}
    graded: dict[str, set[str]] | None = None
    for test in spec.tests:
        label = f'test "{test.name}"'
        prior = seen.setdefault(test.name, test)
        if prior is not test and prior.span.file == test.span.file:
            out.append(
                Diagnostic(
                    "E102",
                    f"{label} is defined twice",
                    test.span,
                    f"the first is at line {prior.span.line}; give each test its own name",
                )
            )
        completion = test.is_completion
        tiers_expected = [e for e in test.expects if isinstance(e, ir.ExpectTier)]
        if not test.expects:
            out.append(
                Diagnostic(
                    "E302",
                    f"{label} expects nothing",
                    test.span,
                    "add `expect TIER`, `expect not TIER` or `expect { proposition = true }`",
                )
            )
        if completion and test.completion is None:
            out.append(
                Diagnostic(
                    "E302",
                    f"{label} has conversation turns but no completion",
                    test.span,
                    'add the reply to grade: completion "..."',
                )
            )
        if completion and test.given is not None:
            out.append(
                Diagnostic(
                    "E302",
                    f"{label} has both givens and a completion",
                    test.span,
                    "a rule test gives the answers (`given`); a completion test has them "
                    "graded: split it in two",
                )
            )
        if not test.response_types and (completion or tiers_expected):
            out.append(
                Diagnostic(
                    "E302",
                    f"{label} names no response type",
                    test.span,
                    "add `response_type NAME` (or a list: `response_type [a, b]`); "
                    f"the response types are: {', '.join(names.types) or 'none'}",
                )
            )
        types: list[ir.ResponseType] = []
        for ref in test.response_types:
            rt = names.types.get(ref.name)
            if rt is None:
                hint = did_you_mean(ref.name, names.types)
                out.append(
                    Diagnostic("E105", f"unknown response type '{ref.name}'", ref.span, hint)
                )
            else:
                types.append(rt)
        unknown = False
        answers = [
            *(test.given or ()),
            *(a for e in test.expects if isinstance(e, ir.ExpectAnswers) for a in e.answers),
        ]
        for answer in answers:
            if answer.name not in names.all:
                unknown = True
                ref = ir.Ref.model_construct(span=answer.span, name=answer.name)
                out.append(_unknown(ref, names))
        for expect in tiers_expected:
            if expect.tier not in names.tiers:
                close = did_you_mean(expect.tier, names.tiers)
                out.append(
                    Diagnostic(
                        "E104",
                        f"unknown tier '{expect.tier}'",
                        expect.span,
                        (f"{close} " if close else "") + f"the tiers are: {', '.join(names.tiers)}",
                    )
                )
                continue
            for rt in types:
                if not any(r.tier == expect.tier for r in rt.rules):
                    out.append(
                        Diagnostic(
                            "E104",
                            f"response type '{rt.name}' has no tier '{expect.tier}'",
                            expect.span,
                            f"its tiers are: {', '.join(_rule_tiers(rt, names))}",
                        )
                    )
        if completion and not unknown:
            graded = graded if graded is not None else graded_propositions(spec)
            for expected in test.expects:
                if not isinstance(expected, ir.ExpectAnswers):
                    continue
                for answer in expected.answers:
                    needed: set[str] = set()
                    _base_props(
                        ir.Ref.model_construct(span=answer.span, name=answer.name),
                        names,
                        needed,
                        set(),
                    )
                    for rt in types:
                        missing = sorted(needed - graded.get(rt.name, set()))
                        if missing:
                            out.append(
                                Diagnostic(
                                    "E303",
                                    f"'{answer.name}' is not graded for response type '{rt.name}'",
                                    answer.span,
                                    "a completion test grades what its response type's rules "
                                    "and reward features use; test it under a response type "
                                    "that uses it, or add it to that type's `extra = [...]`",
                                    notes=(f"not graded: {', '.join(missing)}",)
                                    if missing != [answer.name]
                                    else (),
                                )
                            )
        if test.given and not unknown:
            out.extend(_contradiction(spec, test, test.given))
    return out


def _contradiction(
    spec: ir.Spec, test: ir.SpecTest, given: tuple[ir.Answer, ...]
) -> list[Diagnostic]:
    from specc.logic.bdd import BDDTooLarge
    from specc.logic.checks import spec_bdd
    from specc.logic.proofs import contradiction

    try:
        index = contradiction(spec_bdd(spec), given)
    except BDDTooLarge:
        return []  # E205 already says the rules are too large
    if index is None:
        return []
    bad = given[index]
    said = f"'{bad.name} = {'true' if bad.value else 'false'}'"
    earlier = ", ".join(f"{a.name} = {'true' if a.value else 'false'}" for a in given[:index])
    note = f"{said} cannot hold with {earlier}" if earlier else f"no reply can have {said}"
    return [
        Diagnostic(
            "E301",
            f'the givens of test "{test.name}" contradict each other',
            bad.span,
            "no reply has all these answers, so the test would check nothing; "
            "fix or drop one of them",
            notes=(note,),
        )
    ]


Pass = Callable[[ir.Spec, _Names], list[Diagnostic]]

#: The checks, in order. Tier logic runs only when the earlier passes found no error.
PASSES: tuple[Pass, ...] = (
    check_names,
    check_propositions,
    check_cycles,
    check_grader,
    check_tier_logic,
    check_usage,
    check_tests,
)


def check_spec(spec: ir.Spec) -> list[Diagnostic]:
    """Run every pass; diagnostics come back sorted by file and position."""
    names = _Names(spec)
    out: list[Diagnostic] = []
    for check in PASSES:
        if check is check_tier_logic and any(d.severity == "error" for d in out):
            continue
        out.extend(check(spec, names))
    return out


@dataclass
class CheckReport:
    load: LoadResult
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    @property
    def spec(self) -> ir.Spec | None:
        return self.load.spec


def _order(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.span.file, d.span.line, d.span.col, d.code)


def check_file(
    path: str | Path, allow_paths: Iterable[str | Path] = (), *, alone: bool = False
) -> CheckReport:
    """Load a spec and run every check; nothing is raised for a bad spec.

    ``allow_paths``: folders outside the spec's own from which it may import files and
    templates (``--allow-path``). With ``alone`` a file without a header is checked as a
    library or a test file (``specc check``, ``specc test``); without it, such a file is
    E011 (compile)."""
    result = load_spec(path, allow_paths, alone=alone)
    diags = list(result.diagnostics)
    syntax_failed = any(d.code in _FATAL for d in diags)
    if result.spec is not None and not syntax_failed:
        diags.extend(check_spec(result.spec))
    diags.sort(key=_order)
    return CheckReport(result, diags)


#: Codes after which name checks would only add noise (the file did not parse).
_FATAL = frozenset({"E001", "E002", "E003", "E004", "E005", "E006", "E007", "E014"})
