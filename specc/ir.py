"""The typed intermediate representation of a policy spec.

Every node is a frozen pydantic model carrying the :class:`Span` it was parsed
from. Nothing here imports lark: the parser (``specc.parser``) is the only module
that sees the Lark tree, and everything after it works on these models.

>>> from specc.ir import Ref, Not, And, Span
>>> s = Span.unknown()
>>> str(And(span=s, operands=(Ref(span=s, name="a"), Not(span=s, operand=Ref(span=s, name="b")))))
'a and not b'
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_TIERS",
    "And",
    "Answer",
    "Comment",
    "Const",
    "Constraint",
    "Derived",
    "Example",
    "ExpectAnswers",
    "ExpectTier",
    "Expectation",
    "Expr",
    "Extractor",
    "FeatureKind",
    "GraderSettings",
    "Import",
    "Item",
    "KeywordsExtractor",
    "LengthExtractor",
    "Message",
    "Node",
    "Not",
    "Or",
    "PolicyHeader",
    "Proposition",
    "Ref",
    "RegexExtractor",
    "ResponseType",
    "RewardSettings",
    "SourceFile",
    "Span",
    "Spec",
    "SpecTest",
    "TierDecl",
    "TierRule",
    "TiersBlock",
    "expr_names",
    "strip_spans",
]

DEFAULT_TIERS: tuple[str, ...] = ("ideal", "less_good", "unacceptable")


class _Frozen(BaseModel):
    # Schemas are built on first validation, not at import: the parser creates nodes
    # with ``model_construct`` (its grammar already guarantees the types), which keeps
    # ``specc check`` start-up fast.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Span(_Frozen):
    """A region of a source file. Lines and columns are 1-based; offsets 0-based."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int
    start: int = 0
    end: int = 0

    @classmethod
    def unknown(cls, file: str = "<unknown>") -> Span:
        return cls.model_construct(file=file, line=1, col=1, end_line=1, end_col=1, start=0, end=0)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Node(_Frozen):
    """Base of every IR node: it knows where it came from."""

    span: Span


# --------------------------------------------------------------------------- expressions


class Ref(Node):
    """A reference to a proposition or derived proposition by name."""

    kind: Literal["ref"] = "ref"
    name: str

    def __str__(self) -> str:
        return self.name


class Const(Node):
    kind: Literal["const"] = "const"
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


class Not(Node):
    kind: Literal["not"] = "not"
    operand: Expr

    def __str__(self) -> str:
        inner = str(self.operand)
        if isinstance(self.operand, (And, Or)):
            inner = f"({inner})"
        return f"not {inner}"


class And(Node):
    kind: Literal["and"] = "and"
    operands: tuple[Expr, ...]

    def __str__(self) -> str:
        return " and ".join(f"({o})" if isinstance(o, Or) else str(o) for o in self.operands)


class Or(Node):
    kind: Literal["or"] = "or"
    operands: tuple[Expr, ...]

    def __str__(self) -> str:
        return " or ".join(str(o) for o in self.operands)  # `and` binds tighter


Expr = Annotated[Union[Ref, Const, Not, And, Or], Field(discriminator="kind")]  # noqa: UP007


def expr_names(expr: Expr) -> Iterator[Ref]:
    """Yield every :class:`Ref` in ``expr``, left to right, duplicates included."""
    if isinstance(expr, Ref):
        yield expr
    elif isinstance(expr, Not):
        yield from expr_names(expr.operand)
    elif isinstance(expr, (And, Or)):
        for operand in expr.operands:
            yield from expr_names(operand)


# --------------------------------------------------------------------------- propositions


class Message(Node):
    role: Literal["system", "user", "assistant"]
    content: str


class Example(Node):
    """A few-shot example: an optional conversation, the graded reply, the answer."""

    answer: bool
    conversation: tuple[Message, ...] = ()
    completion: str
    because: str | None = None


class RegexExtractor(Node):
    """``match regex "pattern"``: true when the RE2 pattern is found (a search)."""

    kind: Literal["regex"] = "regex"
    pattern: str


class KeywordsExtractor(Node):
    """``match keywords ["a", "b"]``: true when any keyword occurs (case-insensitive,
    on word boundaries)."""

    kind: Literal["keywords"] = "keywords"
    words: tuple[str, ...]


class LengthExtractor(Node):
    """``match length < 400 words``: compares the completion's length."""

    kind: Literal["length"] = "length"
    op: Literal["<", "<=", ">", ">=", "=="]
    value: int
    unit: Literal["chars", "words"]


Extractor = Annotated[
    Union[RegexExtractor, KeywordsExtractor, LengthExtractor],  # noqa: UP007
    Field(discriminator="kind"),
]


class Proposition(Node):
    """A yes/no statement about a completion, answered by a grader or an extractor."""

    name: str
    description: str | None = None
    question: str | None = None
    examples: tuple[Example, ...] = ()
    extractor: Extractor | None = None
    source: str | None = None  # the file it was imported from, None when local


class Derived(Node):
    """``derived name = expr``: a boolean combination of other propositions."""

    name: str
    expr: Expr
    description: str | None = None
    source: str | None = None


# --------------------------------------------------------------------------- tiers, types


class TierDecl(Node):
    """A tier in the global order (best first) with an optional fitting margin."""

    name: str
    margin: float | None = None


class TierRule(Node):
    """``tier when expr`` inside a response type; ``when`` is None for ``otherwise``."""

    tier: str
    when: Expr | None


FeatureKind = Literal["propositions", "derived", "classes"]


class RewardSettings(Node):
    """Fitting settings. Every field is optional so that a response type's block can
    override only what it names; :meth:`merged` layers one block over another."""

    features: tuple[FeatureKind, ...] | None = None
    extra: tuple[Ref, ...] | None = None
    margin: float | None = None
    weight_decay: float | None = None
    steps: int | None = None
    lr: float | None = None
    optimizer: Literal["adamw", "lbfgs"] | None = None
    base_reward: bool | None = None

    def merged(self, override: RewardSettings | None) -> RewardSettings:
        if override is None:
            return self
        data = {
            k: getattr(override, k) if getattr(override, k) is not None else getattr(self, k)
            for k in type(self).model_fields
            if k != "span"
        }
        # Both sides are valid nodes already: constructing without validation keeps
        # pydantic from building this model's schema during `specc check`.
        return RewardSettings.model_construct(span=override.span, **data)


class ResponseType(Node):
    """A class of prompt (hard refusal, comply, ...) with one rule per tier."""

    name: str
    display: str | None = None
    rules: tuple[TierRule, ...]
    reward: RewardSettings | None = None


class Constraint(Node):
    """A Safe-RLHF cost: the expected value of ``cost`` must stay at or under ``limit``."""

    name: str
    cost: Expr
    limit: float
    description: str | None = None
    applies_to: tuple[Ref, ...] = ()  # response types; empty means all


class GraderSettings(Node):
    yes: tuple[str, ...] = ("yes",)
    no: tuple[str, ...] = ("no",)
    template: str | None = None  # inline Jinja2 template text
    template_file: str | None = None  # path relative to the spec file
    example_template: str | None = None  # Jinja2 for one few-shot example
    # Not part of the spec's meaning (left out of dumps, so of ir.json and spec_hash):
    # the text of ``template_file`` as the loader read it, and where line 1 of each
    # template is, so that template diagnostics point at the template's own line.
    template_source: str | None = Field(default=None, exclude=True)
    template_at: Span | None = Field(default=None, exclude=True)
    example_template_at: Span | None = Field(default=None, exclude=True)


class Import(Node):
    path: str


# --------------------------------------------------------------------------- tests


class Answer(Node):
    """``name = true`` in a test's ``given`` or ``expect { }`` block."""

    name: str
    value: bool


class ExpectTier(Node):
    """``expect ideal`` (``negated``: ``expect not ideal``)."""

    kind: Literal["tier"] = "tier"
    tier: str
    negated: bool = False


class ExpectAnswers(Node):
    """``expect { apology = true ... }``: values propositions must take."""

    kind: Literal["answers"] = "answers"
    answers: tuple[Answer, ...]


Expectation = Annotated[Union[ExpectTier, ExpectAnswers], Field(discriminator="kind")]  # noqa: UP007


class SpecTest(Node):
    """``test "name" { ... }``: an expectation about the rules, run by ``specc test``.

    A *rule test* (no ``completion``) assumes the ``given`` answers and is proved for
    every value of the propositions it leaves out. A *completion test* gives a reply
    (and optionally the conversation before it) that a grader answers. Tests are not
    part of a policy's meaning: compile ignores them.
    """

    __test__ = False  # not a pytest class

    name: str
    response_types: tuple[Ref, ...] = ()
    given: tuple[Answer, ...] | None = None  # None: no `given` block
    conversation: tuple[Message, ...] = ()
    completion: str | None = None
    expects: tuple[Expectation, ...] = ()

    @property
    def is_completion(self) -> bool:
        """A completion test (a reply, or conversation turns, to grade), not a rule test."""
        return self.completion is not None or bool(self.conversation)


class Spec(Node):
    """A whole policy, imports resolved into ``propositions`` and ``derived``.

    ``tests`` and ``library`` are excluded from ``model_dump`` (so from ``ir.json``
    and ``spec_hash``): tests do not change what a policy means, and a library (a
    file without a header, checked alone) is never compiled.
    """

    name: str
    version: str
    imports: tuple[Import, ...] = ()
    grader: GraderSettings | None = None
    tiers: tuple[TierDecl, ...] = ()
    reward: RewardSettings | None = None
    propositions: tuple[Proposition, ...] = ()
    derived: tuple[Derived, ...] = ()
    response_types: tuple[ResponseType, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    tests: tuple[SpecTest, ...] = Field(default=(), exclude=True)
    library: bool = Field(default=False, exclude=True)

    def tier_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiers) if self.tiers else DEFAULT_TIERS


class PolicyHeader(Node):
    name: str
    version: str


class TiersBlock(Node):
    tiers: tuple[TierDecl, ...]


class Comment(Node):
    """A ``#`` comment, kept so that the formatter can put it back."""

    text: str


Item = Union[  # noqa: UP007
    PolicyHeader,
    Import,
    GraderSettings,
    TiersBlock,
    RewardSettings,
    Proposition,
    Derived,
    ResponseType,
    Constraint,
    SpecTest,
]


class SourceFile(Node):
    """One parsed file, items in source order, before imports are resolved."""

    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = ()

    @property
    def header(self) -> PolicyHeader | None:
        return next((i for i in self.items if isinstance(i, PolicyHeader)), None)


def strip_spans(data: Any) -> Any:
    """Remove every ``span`` key from a ``model_dump()`` result (for comparisons)."""
    if isinstance(data, dict):
        return {k: strip_spans(v) for k, v in data.items() if k != "span"}
    if isinstance(data, (list, tuple)):
        return [strip_spans(v) for v in data]
    return data
