"""``specc import``: an RBR proposition config (YAML) to a checked ``.rbr`` policy.

The pieces: :mod:`~specc.importer.config` reads and validates the YAML,
:mod:`~specc.importer.template` translates ``prompt_template`` into a grader
template, :mod:`~specc.importer.classes` turns completion classes into exclusive
and exhaustive tier rules, :mod:`~specc.importer.emit` writes canonical text and
parses it back. The result is checked like ``specc check`` would.

What maps to what:

==================================  ===============================================
``simple_propositions.X.prompt``    ``proposition X { question = ... }`` (verbatim)
``simple_propositions.X.examples``  ``example yes|no { ... }`` blocks
``derived_propositions.D``          ``derived D = a and not b ...``
``completion_class_order``          ``tiers { ... }``, best first
``completion_classes.T.R``          ``response_type R { T when ... }``
``prompt_template``                 ``grader { template = ... }``
a proposition no class uses         ``reward { extra = [...] }`` (still a feature)
==================================  ===============================================

>>> result = import_config("proposition_prompts.yaml")     # doctest: +SKIP
>>> write_policy(result, "safety.rbr")                     # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from specc import ir
from specc.artifact import COMPLETION_SLOT, CONVERSATION_SLOT
from specc.errors import DataError, Diagnostic, UsageError
from specc.files import write_bytes
from specc.importer.classes import RESOLVE_MODES, Resolve, TypeRules, resolve_classes
from specc.importer.config import RbrConfig, read_config
from specc.importer.emit import EmitBug, emit_policy
from specc.importer.template import strip_line_ends, translate_template

__all__ = [
    "RESOLVE_MODES",
    "EmitBug",
    "ImportResult",
    "Resolve",
    "display_name",
    "import_config",
    "translate_config",
    "write_policy",
]

_SPAN = ir.Span.unknown("<import>")


@dataclass
class ImportResult:
    """The policy text, its merged spec, what the import did and what the check said."""

    text: str
    spec: ir.Spec
    notes: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """Counts, notes and warnings as JSON-ready data."""
        return {
            "policy": self.spec.name,
            "propositions": len(self.spec.propositions),
            "derived": len(self.spec.derived),
            "response_types": [rt.name for rt in self.spec.response_types],
            "tiers": list(self.spec.tier_names()),
            "notes": list(self.notes),
            "warnings": [f"{d.code}: {d.message}" for d in self.diagnostics],
        }


def display_name(response_type: str) -> str:
    """``hard_refuse`` -> ``Hard Refuse``: words split at underscores, capitalised.

    >>> display_name("safe_refuse_2")
    'Safe Refuse 2'
    """
    return " ".join(w[:1].upper() + w[1:] for w in response_type.split("_") if w)


def _propositions(config: RbrConfig, stripped: list[int]) -> list[ir.Proposition]:
    def clean(value: str) -> str:
        text, changed = strip_line_ends(value)
        stripped[0] += changed
        return text

    out = []
    for p in config.propositions:
        examples = tuple(
            ir.Example(
                span=_SPAN,
                answer=e.label,
                conversation=tuple(
                    ir.Message(span=_SPAN, role=role, content=clean(content))
                    for role, content in e.messages
                ),
                completion=clean(e.completion),
                because=None if e.explanation is None else clean(e.explanation),
            )
            for e in p.examples
        )
        out.append(
            ir.Proposition(span=_SPAN, name=p.name, question=clean(p.prompt), examples=examples)
        )
    return out


def _unused(config: RbrConfig, types: list[TypeRules]) -> list[str]:
    """Names no rule uses, directly or through a derived proposition, in config order."""
    derived = {d.name: d for d in config.derived}
    used: set[str] = set()
    stack = [ref.name for t in types for _, expr in t.rules if expr for ref in ir.expr_names(expr)]
    while stack:
        name = stack.pop()
        if name not in used:
            used.add(name)
            if name in derived:
                stack.extend(c.name for c in derived[name].conditions)
    names = [p.name for p in config.propositions] + [d.name for d in config.derived]
    return [n for n in names if n not in used]


def _check_texts(config: RbrConfig) -> None:
    """Refuse text that holds the artifact's slot markers: grading fills them in."""
    for p in config.propositions:
        texts = [p.prompt]
        for e in p.examples:
            texts += [e.completion, e.explanation or "", *(c for _, c in e.messages)]
        for text in texts:
            for slot in (CONVERSATION_SLOT, COMPLETION_SLOT):
                if slot in text:
                    raise DataError(
                        f"simple proposition {p.name!r} contains {slot!r}, which specc's "
                        "prompts reserve for the text being graded",
                        str(p.where),
                        "reword it (for example with spaces inside the braces)",
                    )


def _displays(config: RbrConfig) -> dict[str, str]:
    """Each response type's display name; two types may not share one."""
    given = dict(config.display_names)
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for rt in config.response_types():
        display = given.get(rt, display_name(rt))
        if display in seen:
            where = next(r.where for r in config.rules if r.response_type == rt)
            raise DataError(
                f"response types {seen[display]!r} and {rt!r} would both be shown as {display!r}",
                str(where),
                "give one another name under response_type_names",
            )
        seen[display] = rt
        out[rt] = display
    return out


def translate_config(
    config: RbrConfig,
    *,
    name: str,
    version: str = "1.0.0",
    resolve: Resolve = "error",
    answer_cue: str = "Answer:",
) -> ImportResult:
    """The policy for ``config``: canonical text, verified and checked."""
    from specc.checker import check_spec
    from specc.importer.classes import conditions_expr

    _check_texts(config)
    displays = _displays(config)
    notes: list[str] = []
    items: list[ir.Item] = [ir.PolicyHeader(span=_SPAN, name=name, version=version)]
    grader = None
    if config.prompt_template is not None:
        where = str(config.template_where or config.path)
        has_examples = any(p.examples for p in config.propositions)
        translated = translate_template(
            config.prompt_template, where, answer_cue=answer_cue, has_examples=has_examples
        )
        notes.extend(translated.notes)
        grader = ir.GraderSettings(span=_SPAN, template=translated.text)
        items.append(grader)
    tiers = tuple(ir.TierDecl(span=_SPAN, name=c.name) for c in config.class_order)
    items.append(ir.TiersBlock(span=_SPAN, tiers=tiers))
    types = resolve_classes(config, resolve)
    for t in types:
        notes.extend(t.notes)
    unused = _unused(config, types)
    reward = None
    if unused:
        extra = tuple(ir.Ref(span=_SPAN, name=n) for n in unused)
        reward = ir.RewardSettings(span=_SPAN, extra=extra)
        items.append(reward)
        notes.append(
            f"no class uses {', '.join(unused)}: listed in reward.extra, so they stay features"
        )
    stripped = [0]
    propositions = _propositions(config, stripped)
    if stripped[0]:
        notes.append(f"removed spaces at the end of {stripped[0]} line(s) of prompts and examples")
    derived = [
        ir.Derived(span=_SPAN, name=d.name, expr=conditions_expr(d.conditions))
        for d in config.derived
    ]
    response_types = [
        ir.ResponseType(
            span=_SPAN,
            name=t.response_type,
            display=displays[t.response_type],
            rules=tuple(ir.TierRule(span=_SPAN, tier=tier, when=when) for tier, when in t.rules),
        )
        for t in types
    ]
    items += [*propositions, *derived, *response_types]
    source_name = Path(config.path).name
    comment = "Imported by `specc import`"
    if source_name.isprintable():
        comment += f" from {source_name}"
    text = emit_policy(items, [comment + "."], file=source_name)
    spec = ir.Spec(
        span=_SPAN,
        name=name,
        version=version,
        grader=grader,
        tiers=tiers,
        reward=reward,
        propositions=tuple(propositions),
        derived=tuple(derived),
        response_types=tuple(response_types),
    )
    diagnostics = check_spec(spec)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise EmitBug(
            "the imported policy does not check ("
            + "; ".join(f"{d.code}: {d.message}" for d in errors[:5])
            + "). This is a bug in specc import: please report it with the config."
        )
    return ImportResult(text=text, spec=spec, notes=notes, diagnostics=diagnostics)


def import_config(
    path: str | Path,
    *,
    name: str | None = None,
    version: str = "1.0.0",
    resolve: Resolve = "error",
    answer_cue: str = "Answer:",
) -> ImportResult:
    """Read the config at ``path`` and translate it (``name`` defaults to the file's
    stem). Raises DataError (bad config), UsageError (unreadable file)."""
    config = read_config(path)
    return translate_config(
        config,
        name=name if name is not None else Path(path).stem,
        version=version,
        resolve=resolve,
        answer_cue=answer_cue,
    )


def write_policy(result: ImportResult, out: str | Path, *, force: bool = False) -> None:
    """Write the policy atomically; an existing file is replaced only with ``force``."""
    refuse_existing(out, force)
    write_bytes(out, result.text.encode("utf-8"))


def refuse_existing(path: str | Path, force: bool) -> None:
    """A UsageError for an output that exists, unless ``force`` (``--force``)."""
    if not force and (Path(path).exists() or Path(path).is_symlink()):
        raise UsageError(f"{path}: exists; pass --force to replace it")
