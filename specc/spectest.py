"""``specc test``: run the ``test`` blocks of a policy or a test file.

A **rule test** gives answers (``given { apology = true ... }``) and expects a tier
(``expect ideal``, ``expect not disallowed``) or values of propositions
(``expect { polite_refusal = true }``). It is a proof, not a sample: it holds when
*every* reply that agrees with the givens meets the expectation, whatever the
propositions it leaves out are, and a failure shows one reply that does not (its
tier, the rule that put it there, the values that decided it, and which of them the
givens left open). Rule tests need no grader and import no numpy.

A **completion test** gives a reply (and optionally the conversation before it) and
expects the answers a grader must give (``P(yes) >= 0.5`` reads as true) and/or the
most probable tier. It runs only with a grader (``specc test --grader G``), through
the normal grading path and its cache; without one it is skipped.

>>> report = run_file("policies/minimal.rbr")     # doctest: +SKIP
>>> report.counts()                               # doctest: +SKIP
{'passed': 6, 'failed': 0, 'skipped': 1}
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from specc import ir
from specc.checker import check_file
from specc.errors import Diagnostic, UsageError

if TYPE_CHECKING:
    from specc.artifact import Artifact
    from specc.grade import FeatureRow, Row
    from specc.logic.bdd import BDD

__all__ = [
    "THRESHOLD",
    "Failure",
    "FileReport",
    "GraderOptions",
    "RuleHeld",
    "TestResult",
    "default_test_cache",
    "format_reports",
    "reports_json",
    "run_file",
]

Status = Literal["pass", "fail", "skip"]

#: A completion test reads P(yes) >= THRESHOLD as the answer "true".
THRESHOLD = 0.5


@dataclass(frozen=True)
class RuleHeld:
    """The rule that put a reply in its tier (``text`` is ``when ...`` or
    ``otherwise``) and the derived propositions it names whose value the reply fixes."""

    tier: str
    text: str
    span: ir.Span
    derived: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """One expectation that does not hold, and why."""

    expected: str  # "ideal", "not disallowed", "polite_refusal = true"
    actual: str  # "less_good", "polite_refusal = false"
    span: ir.Span  # of the `expect` entry
    when: dict[str, bool] = field(default_factory=dict)  # rule tests: a counterexample
    left_open: tuple[str, ...] = ()  # ... of which these are not fixed by the givens
    rule: RuleHeld | None = None
    also: tuple[str, ...] = ()  # other tiers the givens allow
    probability: float | None = None  # completion tests: P(yes) or P(tier)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "expected": self.expected,
            "actual": self.actual,
            "line": self.span.line,
            "col": self.span.col,
        }
        if self.when:
            out["when"] = dict(self.when)
            out["left_open"] = list(self.left_open)
        if self.rule is not None:
            out["rule"] = {
                "tier": self.rule.tier,
                "text": self.rule.text,
                "file": self.rule.span.file,
                "line": self.rule.span.line,
                "derived": dict(self.rule.derived),
            }
        if self.also:
            out["also"] = list(self.also)
        if self.probability is not None:
            out["probability"] = self.probability
        return out


@dataclass
class TestResult:
    """One test run against one response type (``None`` for a test that expects
    only values of propositions and names no response type)."""

    __test__ = False  # not a pytest class

    test: ir.SpecTest
    response_type: str | None
    kind: Literal["rules", "completion"]
    status: Status = "pass"
    failures: list[Failure] = field(default_factory=list)
    reason: str | None = None  # why it was skipped
    graded: dict[str, float] = field(default_factory=dict)  # completion: P(yes) by name
    tiers: dict[str, float] = field(default_factory=dict)  # completion: P(tier)
    grader: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.test.name,
            "file": self.test.span.file,
            "line": self.test.span.line,
            "col": self.test.span.col,
            "response_type": self.response_type,
            "kind": self.kind,
            "status": self.status,
            "failures": [f.to_json() for f in self.failures],
        }
        if self.reason is not None:
            out["reason"] = self.reason
        if self.kind == "completion" and self.status != "skip":
            out["graded"] = dict(self.graded)
            out["tiers"] = dict(self.tiers)
            out["grader"] = self.grader
        return out


@dataclass
class FileReport:
    """What ``specc test`` found in one file: spec diagnostics (tests run only when
    there is no error), and one result per test and response type."""

    path: str
    kind: Literal["policy", "library", "tests"]
    diagnostics: list[Diagnostic]
    sources: dict[str, str]
    results: list[TestResult] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def counts(self) -> dict[str, int]:
        return {
            "passed": sum(r.status == "pass" for r in self.results),
            "failed": sum(r.status == "fail" for r in self.results),
            "skipped": sum(r.status == "skip" for r in self.results),
        }

    @property
    def ok(self) -> bool:
        return not self.errors and not any(r.status == "fail" for r in self.results)


# --------------------------------------------------------------------------- rule tests


class _RuleContext:
    """The spec's BDD and each response type's rule nodes, built once per file."""

    def __init__(self, spec: ir.Spec):
        from specc.logic.bdd import FALSE
        from specc.logic.checks import rule_conditions, spec_bdd

        self.spec = spec
        self.bdd: BDD = spec_bdd(spec)
        self.order = spec.tier_names()
        self.types = {rt.name: rt for rt in spec.response_types}
        self.derived = {d.name for d in spec.derived}
        self.conds: dict[str, list[int]] = {}
        self.by_tier: dict[str, dict[str, int]] = {}
        for rt in spec.response_types:
            conds = rule_conditions(self.bdd, rt)
            by_tier: dict[str, int] = {}
            for rule, cond in zip(rt.rules, conds, strict=True):
                by_tier[rule.tier] = self.bdd.OR(by_tier.get(rule.tier, FALSE), cond)
            self.conds[rt.name] = conds
            self.by_tier[rt.name] = {t: by_tier[t] for t in self.order if t in by_tier}

    def rule_held(self, rt_name: str, tier: str, assignment: dict[str, bool]) -> RuleHeld | None:
        from specc.logic.checks import referenced_names

        rt = self.types[rt_name]
        for rule, cond in zip(rt.rules, self.conds[rt_name], strict=True):
            if rule.tier != tier or self.bdd.value_under(cond, assignment) is not True:
                continue
            if rule.when is None:
                text, exprs = "otherwise", [r.when for r in rt.rules if r.when is not None]
            else:
                text, exprs = f"when {rule.when}", [rule.when]
            derived: dict[str, bool] = {}
            for expr in exprs:
                for name in referenced_names(expr):
                    if name in self.derived and name not in derived:
                        value = self.bdd.value_under(self.bdd.derived(name), assignment)
                        if value is not None:
                            derived[name] = value
            return RuleHeld(rule.tier, text, rule.span, derived)
        return None


def _answer_text(name: str, value: bool) -> str:
    return f"{name} = {'true' if value else 'false'}"


def _prove(ctx: _RuleContext, test: ir.SpecTest, rt_name: str | None) -> TestResult:
    from specc.logic.bdd import FALSE
    from specc.logic.proofs import answer_node, answers_node, counterexample, witness

    bdd = ctx.bdd
    given = answers_node(bdd, test.given or ())
    result = TestResult(test, rt_name, "rules")
    for expect in test.expects:
        if isinstance(expect, ir.ExpectAnswers):
            for answer in expect.answers:
                cx = counterexample(bdd, given, answer_node(bdd, answer))
                if cx is not None:
                    result.failures.append(
                        Failure(
                            expected=_answer_text(answer.name, answer.value),
                            actual=_answer_text(answer.name, not answer.value),
                            span=answer.span,
                            when=cx.assignment,
                            left_open=cx.left_open,
                        )
                    )
            continue
        if rt_name is None:
            continue  # E302, reported by the checker
        tiers = ctx.by_tier[rt_name]
        if expect.negated:
            cx = witness(bdd, given, tiers.get(expect.tier, FALSE))
            if cx is not None:
                result.failures.append(
                    Failure(
                        expected=f"not {expect.tier}",
                        actual=expect.tier,
                        span=expect.span,
                        when=cx.assignment,
                        left_open=cx.left_open,
                        rule=ctx.rule_held(rt_name, expect.tier, cx.assignment),
                    )
                )
            continue
        reachable = [
            t for t, node in tiers.items() if t != expect.tier and bdd.AND(given, node) != FALSE
        ]
        if not reachable:
            continue
        actual = reachable[0]  # the best tier it can fall in instead
        cx = witness(bdd, given, tiers[actual])
        assert cx is not None  # reachable
        result.failures.append(
            Failure(
                expected=expect.tier,
                actual=actual,
                span=expect.span,
                when=cx.assignment,
                left_open=cx.left_open,
                rule=ctx.rule_held(rt_name, actual, cx.assignment),
                also=tuple(reachable[1:]),
            )
        )
    result.status = "fail" if result.failures else "pass"
    return result


def _targets(test: ir.SpecTest) -> list[str | None]:
    """The response types a test runs against: its own, or None (once) for a rule
    test that expects only values of propositions."""
    names = [ref.name for ref in test.response_types]
    if names:
        return list(dict.fromkeys(names))
    return [None]


# --------------------------------------------------------------------------- completion tests


@dataclass(frozen=True)
class GraderOptions:
    """How completion tests are graded (``specc test --grader ...``)."""

    grader: str
    cache: str | None = None  # None: default_test_cache()
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | None = None
    concurrency: int = 8


def default_test_cache() -> Path:
    """``$SPECC_GRADE_CACHE`` when set, else ``$XDG_CACHE_HOME/specc/test-grades.sqlite``
    (``~/.cache/...``): one cache for every test run, keyed by grader and prompt."""
    shared = os.environ.get("SPECC_GRADE_CACHE")
    if shared:
        return Path(shared)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no $HOME and no passwd entry (an arbitrary container user)
            raise UsageError(
                "no home folder for the default test grade cache\n"
                "  = hint: pass --cache PATH (or ':memory:'), or set $SPECC_GRADE_CACHE"
            ) from None
    return Path(base) / "specc" / "test-grades.sqlite"


def _expected_names(test: ir.SpecTest) -> list[ir.Answer]:
    return [a for e in test.expects if isinstance(e, ir.ExpectAnswers) for a in e.answers]


def _judge(result: TestResult, ordered_tiers: Sequence[str]) -> None:
    """Compare a graded completion test's answers and tiers with its expectations."""
    for answer in _expected_names(result.test):
        p = result.graded[answer.name]
        got = p >= THRESHOLD
        if got != answer.value:
            result.failures.append(
                Failure(
                    expected=_answer_text(answer.name, answer.value),
                    actual=_answer_text(answer.name, got),
                    span=answer.span,
                    probability=p,
                )
            )
    if result.tiers:
        best = max(ordered_tiers, key=lambda t: result.tiers[t])  # ties: the better tier
        for expect in result.test.expects:
            if not isinstance(expect, ir.ExpectTier):
                continue
            if (best == expect.tier) == expect.negated:
                result.failures.append(
                    Failure(
                        expected=("not " if expect.negated else "") + expect.tier,
                        actual=best,
                        span=expect.span,
                        probability=result.tiers[best],
                    )
                )
    result.status = "fail" if result.failures else "pass"


def _rules_grade(artifact: Artifact, row: Row, result: TestResult) -> None:
    """``--grader rules``: the extractors alone; a test that needs a model is skipped."""
    import numpy as np

    from specc.grade.rules import Extractor

    assert result.response_type is not None
    rt = artifact.response_type(result.response_type)
    wants_tier = any(isinstance(e, ir.ExpectTier) for e in result.test.expects)
    derived = {d.name: d for d in artifact.manifest.derived}
    needed: list[str] = list(rt.propositions) if wants_tier else []
    for answer in _expected_names(result.test):
        needed += derived[answer.name].propositions if answer.name in derived else [answer.name]
    needed = list(dict.fromkeys(needed))
    models = [n for n in needed if artifact.proposition(n).kind != "rules"]
    if models:
        result.status = "skip"
        result.reason = (
            f"{', '.join(models)} need a model grader; --grader rules runs extractors only"
        )
        return
    values: dict[str, float] = {}
    for name in needed:
        spec = artifact.proposition(name).extractor
        assert spec is not None
        values[name] = Extractor.from_spec(spec, name)(row.completion)
    probs = {n: np.array([v]) for n, v in values.items()}
    result.graded = dict(values)
    for answer in _expected_names(result.test):
        if answer.name in derived:
            node = artifact.rules.evaluate_many([f"derived:{answer.name}"], probs)
            result.graded[answer.name] = float(node[f"derived:{answer.name}"][0])
    if wants_tier:
        row_tiers = artifact.rules.tier_probabilities(rt.name, probs, n=1)[0]
        result.tiers = {t: float(p) for t, p in zip(rt.tiers, row_tiers, strict=True)}
    result.grader = "rules"
    _judge(result, rt.tiers)


def _compile_to(spec: ir.Spec, directory: Path, allow_paths: Sequence[str | Path]) -> Artifact:
    """The artifact of the policy under test, written by ``specc compile`` itself (so
    that it is exactly what ``specc grade`` would read) into ``directory``."""
    from specc.artifact import load_artifact
    from specc.compiler import compile_spec

    compile_spec(spec.span.file, directory, allow_paths=allow_paths)
    return load_artifact(directory)


def _grade_completion_tests(
    spec: ir.Spec,
    results: Sequence[TestResult],
    options: GraderOptions,
    allow_paths: Sequence[str | Path] = (),
) -> None:
    """Grade every completion test of one spec in one batch and judge each."""
    from specc.grade import GradeCache, LabelsGrader, Row, RulesGrader, extract_features
    from specc.grade.graders import close_grader, make_grader

    if not results:
        return
    grader = make_grader(
        options.grader,
        device=options.device,
        dtype=options.dtype,
        batch_size=options.batch_size,
        concurrency=options.concurrency,
    )
    if isinstance(grader, LabelsGrader):
        raise UsageError(
            "--grader labels has no answers for a test's completion (it reads them from "
            "data rows); use rules, hf:PATH or openai:URL#MODEL"
        )
    rows = [
        Row(
            id=f"{r.test.span}:{r.response_type}",
            where=str(r.test.span),
            messages=tuple((m.role, m.content) for m in r.test.conversation),
            completion=r.test.completion or "",
            response_type=r.response_type or "",
        )
        for r in results
    ]
    with tempfile.TemporaryDirectory(prefix="specc-test-") as tmp:
        artifact = _compile_to(spec, Path(tmp) / "artifact", allow_paths)
        if isinstance(grader, RulesGrader):
            for row, result in zip(rows, results, strict=True):
                _rules_grade(artifact, row, result)
            return
        cache = GradeCache(options.cache or default_test_cache())
        try:
            feats = extract_features(artifact, rows, grader, cache=cache)
        finally:
            cache.close()
            close_grader(grader)
        for feat, result in zip(feats, results, strict=True):
            _take(feat, result, artifact)


def _take(feat: FeatureRow, result: TestResult, artifact: Artifact) -> None:
    rt = artifact.response_type(feat.response_type)
    result.graded = {**feat.propositions, **feat.derived}
    if any(isinstance(e, ir.ExpectTier) for e in result.test.expects):
        result.tiers = dict(feat.classes)
    result.grader = next(iter(feat.sources.values()), None)
    _judge(result, rt.tiers)


# --------------------------------------------------------------------------- entry point


def run_file(
    path: str | Path,
    options: GraderOptions | None = None,
    allow_paths: Sequence[str | Path] = (),
) -> FileReport:
    """Check ``path`` (a policy, a test file or a library) and run its tests;
    ``allow_paths`` as for :func:`specc.checker.check_file`.

    Tests run only when the check finds no error: a test of rules that overlap or
    leave a gap would prove nothing. Completion tests are skipped without
    ``options`` (a grader)."""
    check = check_file(path, allow_paths, alone=True)
    report = FileReport(
        path=str(path),
        kind=check.load.kind,
        diagnostics=check.diagnostics,
        sources=check.load.sources,
    )
    spec = check.spec
    if report.errors or spec is None:
        return report
    ctx: _RuleContext | None = None
    to_grade: list[TestResult] = []
    for test in spec.tests:
        for rt_name in _targets(test):
            if test.is_completion:
                result = TestResult(test, rt_name, "completion")
                if options is None:
                    result.status = "skip"
                    result.reason = "a completion test: run with --grader to grade it"
                else:
                    to_grade.append(result)
            else:
                ctx = ctx or _RuleContext(spec)
                result = _prove(ctx, test, rt_name)
            report.results.append(result)
    if options is not None:
        _grade_completion_tests(spec, to_grade, options, allow_paths)
    return report


# --------------------------------------------------------------------------- output


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[k]} {k}" for k in ("passed", "failed", "skipped"))


def _failure_lines(f: Failure, result: TestResult, pad: str) -> Iterator[str]:
    yield f"{pad}expected  {f.expected}"
    got = f.actual
    if f.probability is not None:
        if result.tiers and f.actual in result.tiers:
            others = ", ".join(f"{t} {p:.2f}" for t, p in result.tiers.items() if t != f.actual)
            got += f"  (P = {f.probability:.2f}; {others})"
        else:
            got += f"  (P(yes) = {f.probability:.2f} from {result.grader}; true from {THRESHOLD})"
    yield f"{pad}got       {got}"
    if f.when:
        # The givens fix the other values of the counterexample.
        values = ", ".join(f"{k}={'true' if f.when[k] else 'false'}" for k in f.left_open)
        if values:
            yield f"{pad}when      {values}  (not given: a test holds for every value)"
        else:
            yield f"{pad}when      any reply with these givens"
    if f.rule is not None:
        yield f"{pad}rule      {f.rule.tier} {f.rule.text}  ({f.rule.span.file}:{f.rule.span.line})"
        if f.rule.derived:
            values = ", ".join(f"{k}={'true' if v else 'false'}" for k, v in f.rule.derived.items())
            yield f"{pad}which makes {values}"
    if f.also:
        yield f"{pad}also      the givens allow {', '.join(f.also)}"


def format_reports(reports: Sequence[FileReport], *, verbose: bool = True) -> str:
    """The text ``specc test`` prints: per file, one line per test (failures
    explained below theirs), then the counts. ``verbose=False`` drops passing lines."""
    out: list[str] = []
    total = {"passed": 0, "failed": 0, "skipped": 0}
    for report in reports:
        if report.errors:
            out.append(f"{report.path}: not run: the spec has errors (see above)")
            continue
        if not report.results:
            what = "a library" if report.kind == "library" else "a policy"
            out.append(f"{report.path}: no tests ({what} without test blocks)")
            continue
        out.append(report.path)
        for result in report.results:
            if result.status == "pass" and not verbose:
                continue
            where = f"{result.test.span.file}:{result.test.span.line}"
            rt = f"{result.response_type}  " if result.response_type else ""
            line = f"  {result.status.upper():4}  {rt}{result.test.name}"
            if result.status == "skip":
                line += f"  ({result.reason})"
            elif result.status == "fail":
                line += f"  [{where}]"
            out.append(line)
            for f in result.failures:
                out.extend(_failure_lines(f, result, " " * 8))
        counts = report.counts()
        for k, v in counts.items():
            total[k] += v
        out.append(f"{report.path}: {_summary(counts)}")
        out.append("")
    if len(reports) > 1:
        out.append(f"total: {_summary(total)}")
    return "\n".join(out).rstrip("\n") + "\n"


def reports_json(reports: Sequence[FileReport]) -> dict[str, Any]:
    """``specc test --format json``: every file's diagnostics and results, and totals."""
    total = {"passed": 0, "failed": 0, "skipped": 0}
    files = []
    for report in reports:
        counts = report.counts()
        for k, v in counts.items():
            total[k] += v
        files.append(
            {
                "file": report.path,
                "kind": report.kind,
                "diagnostics": [d.to_json() for d in report.diagnostics],
                "ran": not report.errors,
                "tests": [r.to_json() for r in report.results],
                **counts,
            }
        )
    return {"files": files, **total, "ok": all(r.ok for r in reports)}
