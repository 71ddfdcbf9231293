"""Reading an RBR proposition config (the YAML format of OpenAI's RBR release).

The file is untrusted: it is read with a size cap, composed by PyYAML's *safe*
composer into nodes (nothing is constructed, so no tag can run code), and walked
against the format's schema here. Aliases (``*name``) are refused, nesting is capped,
and every problem is a :class:`~specc.errors.DataError` at ``file:line:col`` with a
hint. The format::

    prompt_template: |-            # optional; Python-format placeholders
      ... {question} ... {response}
    completion_class_order: [ideal, less_good, bad]       # best first
    completion_classes:            # class -> response type -> {proposition: bool}
      ideal: {hard_refuse: {good_refusal: true}}
    derived_propositions:          # name -> {proposition: bool}, an AND
      good_refusal: {refuses: true, judgemental: false}
    simple_propositions:           # name -> {prompt, examples (specc's addition)}
      refuses: {prompt: "Does the reply decline?"}
    response_type_names:           # optional (specc's addition): display names
      hard_refuse: Hard Refuse

>>> config = read_config("config/proposition_prompts.yaml")   # doctest: +SKIP
>>> [c.name for c in config.class_order]                       # doctest: +SKIP
['ideal', 'minimum_acceptable_style', ...]
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from specc.errors import DataError, UsageError, did_you_mean
from specc.jsonl import open_jsonl

__all__ = [
    "MAX_CONFIG_BYTES",
    "ClassDecl",
    "ClassRule",
    "Condition",
    "DerivedProposition",
    "ExampleConfig",
    "RbrConfig",
    "SimpleProposition",
    "Where",
    "parse_config",
    "read_config",
]

#: The largest config read (OpenAI's published one is about 50 KB).
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: The deepest nesting of YAML collections accepted (the format needs 4).
MAX_NESTING = 32

_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TOP_KEYS = (
    "prompt_template",
    "completion_class_order",
    "completion_classes",
    "derived_propositions",
    "simple_propositions",
    "response_type_names",
)
_PROPOSITION_KEYS = ("prompt", "examples")
_EXAMPLE_KEYS = ("label", "prompt", "completion", "explanation")
Role = Literal["system", "user", "assistant"]
_ROLES: tuple[Role, ...] = ("system", "user", "assistant")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Where:
    """A place in the config: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Condition:
    """``name: value`` in a class or derived proposition: ``name`` must be ``value``."""

    name: str
    value: bool
    where: Where


@dataclass(frozen=True)
class ExampleConfig:
    """One structured few-shot example of a simple proposition (specc's addition)."""

    label: bool
    messages: tuple[tuple[Role, str], ...]  # (role, content) before the completion
    completion: str
    explanation: str | None
    where: Where


@dataclass(frozen=True)
class SimpleProposition:
    name: str
    prompt: str
    examples: tuple[ExampleConfig, ...]
    where: Where


@dataclass(frozen=True)
class DerivedProposition:
    """The AND of its conditions."""

    name: str
    conditions: tuple[Condition, ...]
    where: Where


@dataclass(frozen=True)
class ClassDecl:
    """One entry of ``completion_class_order`` (best first)."""

    name: str
    where: Where


@dataclass(frozen=True)
class ClassRule:
    """``completion_classes[tier][response_type]``: the class holds for a completion
    of that response type when every condition holds."""

    tier: str
    response_type: str
    conditions: tuple[Condition, ...]
    where: Where  # of the response type's key
    class_where: Where  # of the class's key


@dataclass(frozen=True)
class RbrConfig:
    """A validated config: every name it uses is defined, every class is ordered."""

    path: str
    prompt_template: str | None
    template_where: Where | None
    class_order: tuple[ClassDecl, ...]
    rules: tuple[ClassRule, ...]
    derived: tuple[DerivedProposition, ...]
    propositions: tuple[SimpleProposition, ...]
    display_names: tuple[tuple[str, str], ...]  # (response type, display name)

    def response_types(self) -> tuple[str, ...]:
        """Response types in the order they first appear under the classes."""
        return tuple(dict.fromkeys(r.response_type for r in self.rules))

    def rules_of(self, response_type: str) -> tuple[ClassRule, ...]:
        """The classes of ``response_type``, best first."""
        rank = {c.name: i for i, c in enumerate(self.class_order)}
        found = [r for r in self.rules if r.response_type == response_type]
        return tuple(sorted(found, key=lambda r: rank[r.tier]))


# --------------------------------------------------------------------------- YAML


class _AliasFound(Exception):
    def __init__(self, mark: Any):
        self.mark = mark


class _TooDeep(Exception):
    def __init__(self, mark: Any):
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """PyYAML's safe composer, refusing aliases and deep nesting (no construction)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _AliasFound(self.peek_event().start_mark)  # type: ignore[no-untyped-call]
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise _TooDeep(self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Reader:
    """Schema checks over composed nodes; every error names ``file:line:col``."""

    def __init__(self, file: str):
        self.file = file

    def where(self, node: yaml.Node) -> Where:
        mark = node.start_mark
        return Where(self.file, mark.line + 1, mark.column + 1)

    def fail(self, node: yaml.Node | Where, message: str, hint: str | None = None) -> DataError:
        at = node if isinstance(node, Where) else self.where(node)
        return DataError(message, str(at), hint)

    def mapping(self, node: yaml.Node, what: str) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
        """``(key, key node, value node)`` of a mapping, duplicate keys refused."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping (key: value lines)")
        seen: dict[str, Where] = {}
        for key_node, value in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, f"keys of {what} must be plain names")
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail(key_node, "YAML merge keys (<<) are not supported", "write it out")
            key = key_node.value
            if key in seen:
                first = seen[key]
                raise self.fail(
                    key_node,
                    f"{key!r} is given twice in {what}",
                    f"the first is at line {first.line}; keep one",
                )
            seen[key] = self.where(key_node)
            yield key, key_node, value

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return list(node.value)

    def text(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
            raise self.fail(node, f"{what} must be text", "quote it if YAML reads it otherwise")
        return str(node.value)

    def boolean(self, node: yaml.Node, what: str) -> bool:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _BOOL:
            raise self.fail(node, f"{what} must be true or false")
        return bool(yaml.SafeLoader.bool_values[node.value.lower()])

    def name(self, key: str, key_node: yaml.Node, what: str) -> str:
        if not _NAME.fullmatch(key) or not _usable_name(key):
            raise self.fail(
                key_node,
                f"{what} {key!r} cannot be a name in a .rbr policy",
                "names are letters, digits and underscores, start with a letter or _, and "
                "are not keywords of the language (docs/language.md, section 15); rename it",
            )
        return key

    def unknown(self, key: str, key_node: yaml.Node, known: tuple[str, ...], what: str) -> None:
        if key not in known:
            hint = did_you_mean(key, known) or f"known keys: {', '.join(known)}"
            raise self.fail(key_node, f"unknown key {key!r} in {what}", hint)

    def conditions(self, node: yaml.Node, what: str) -> tuple[Condition, ...]:
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
            raise self.fail(
                node,
                f"{what} has no conditions",
                "write {} for one that always holds, or list `proposition: true|false` lines",
            )
        return tuple(
            Condition(
                self.name(key, key_node, "proposition"),
                self.boolean(value, f"the value of {key!r} in {what}"),
                self.where(key_node),
            )
            for key, key_node, value in self.mapping(node, what)
        )


@lru_cache(maxsize=4096)
def _usable_name(name: str) -> bool:
    """True when the .rbr parser reads ``name`` as a name in every place the importer
    writes one (a tier, a proposition, a derived one, a response type, an expression,
    a list); keywords such as ``not`` or ``policy`` are not."""
    from specc import ir
    from specc.parser import parse_source

    probe = (
        f"tiers {{ {name} }}\nreward {{ extra = [{name}] }}\n"
        f'proposition {name} {{ question = "q" }}\nderived {name} = not {name}\n'
        f"response_type {name} {{\n  {name} when {name}\n  {name} otherwise\n}}\n"
    )
    source, diagnostics = parse_source(probe)
    if diagnostics:
        return False
    s = ir.Span.unknown()
    ref = ir.Ref(span=s, name=name)
    expected = [
        ir.TiersBlock(span=s, tiers=(ir.TierDecl(span=s, name=name),)),
        ir.RewardSettings(span=s, extra=(ref,)),
        ir.Proposition(span=s, name=name, question="q"),
        ir.Derived(span=s, name=name, expr=ir.Not(span=s, operand=ref)),
        ir.ResponseType(
            span=s,
            name=name,
            rules=(
                ir.TierRule(span=s, tier=name, when=ref),
                ir.TierRule(span=s, tier=name, when=None),
            ),
        ),
    ]
    dump = [ir.strip_spans(i.model_dump()) for i in source.items]
    return dump == [ir.strip_spans(i.model_dump()) for i in expected]


# --------------------------------------------------------------------------- sections


def _examples(r: _Reader, node: yaml.Node, prop: str) -> tuple[ExampleConfig, ...]:
    out = []
    for i, item in enumerate(r.sequence(node, f"examples of {prop!r}"), start=1):
        what = f"example {i} of {prop!r}"
        fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, key_node, value in r.mapping(item, what):
            r.unknown(key, key_node, _EXAMPLE_KEYS, what)
            fields[key] = (key_node, value)
        for required in ("label", "completion"):
            if required not in fields:
                raise r.fail(item, f"{what} has no {required!r}", "write label: true|false")
        messages: list[tuple[Role, str]] = []
        if "prompt" in fields:
            value = fields["prompt"][1]
            if isinstance(value, yaml.ScalarNode):
                messages.append(("user", r.text(value, f"the prompt of {what}")))
            else:
                for j, msg in enumerate(r.sequence(value, f"the prompt of {what}"), start=1):
                    parts = dict((k, v) for k, _, v in r.mapping(msg, f"message {j} of {what}"))
                    if set(parts) != {"role", "content"}:
                        raise r.fail(msg, f"message {j} of {what} needs exactly role and content")
                    role = r.text(parts["role"], "a role")
                    if role not in _ROLES:
                        raise r.fail(
                            parts["role"], f"unknown role {role!r}", "use " + ", ".join(_ROLES)
                        )
                    content = r.text(parts["content"], "a message's content")
                    messages.append((role, content))
        explanation = fields.get("explanation")
        out.append(
            ExampleConfig(
                label=r.boolean(fields["label"][1], f"the label of {what}"),
                messages=tuple(messages),
                completion=r.text(fields["completion"][1], f"the completion of {what}"),
                explanation=None if explanation is None else r.text(explanation[1], "explanation"),
                where=r.where(item),
            )
        )
    return tuple(out)


def _propositions(r: _Reader, node: yaml.Node) -> tuple[SimpleProposition, ...]:
    out = []
    for name, key_node, value in r.mapping(node, "simple_propositions"):
        r.name(name, key_node, "simple proposition")
        what = f"simple proposition {name!r}"
        prompt: str | None = None
        examples: tuple[ExampleConfig, ...] = ()
        for key, k_node, v_node in r.mapping(value, what):
            r.unknown(key, k_node, _PROPOSITION_KEYS, what)
            if key == "prompt":
                prompt = r.text(v_node, f"the prompt of {name!r}")
            else:
                examples = _examples(r, v_node, name)
        if prompt is None or not prompt.strip():
            raise r.fail(key_node, f"{what} has no prompt", "add prompt: the grader's question")
        out.append(SimpleProposition(name, prompt, examples, r.where(key_node)))
    return tuple(out)


def _class_order(r: _Reader, node: yaml.Node) -> tuple[ClassDecl, ...]:
    out: list[ClassDecl] = []
    for item in r.sequence(node, "completion_class_order"):
        name = r.text(item, "a completion class")
        r.name(name, item, "completion class")
        if any(c.name == name for c in out):
            raise r.fail(item, f"class {name!r} is listed twice in completion_class_order")
        out.append(ClassDecl(name, r.where(item)))
    if not out:
        raise r.fail(node, "completion_class_order is empty", "list the classes, best first")
    return tuple(out)


def _classes(r: _Reader, node: yaml.Node) -> tuple[ClassRule, ...]:
    out = []
    for tier, tier_node, types in r.mapping(node, "completion_classes"):
        r.name(tier, tier_node, "completion class")
        for rt, rt_node, conditions in r.mapping(types, f"class {tier!r}"):
            r.name(rt, rt_node, "response type")
            what = f"class {tier!r} of response type {rt!r}"
            conds = r.conditions(conditions, what)
            out.append(ClassRule(tier, rt, conds, r.where(rt_node), r.where(tier_node)))
    return tuple(out)


def _derived(r: _Reader, node: yaml.Node) -> tuple[DerivedProposition, ...]:
    out = []
    for name, key_node, value in r.mapping(node, "derived_propositions"):
        r.name(name, key_node, "derived proposition")
        conditions = r.conditions(value, f"derived proposition {name!r}")
        out.append(DerivedProposition(name, conditions, r.where(key_node)))
    return tuple(out)


# --------------------------------------------------------------------------- validation


def _validate(r: _Reader, config: RbrConfig, order_node: yaml.Node) -> None:
    simple = {p.name: p for p in config.propositions}
    derived_at: dict[str, int] = {}
    for i, d in enumerate(config.derived):
        if d.name in simple:
            raise r.fail(
                d.where,
                f"{d.name!r} is both a simple and a derived proposition",
                f"the simple one is at line {simple[d.name].where.line}; rename one",
            )
        derived_at[d.name] = i
    defined = [*simple, *derived_at]

    def check(cond: Condition, what: str) -> None:
        if cond.name not in simple and cond.name not in derived_at:
            hint = did_you_mean(cond.name, defined) or "define it under simple_propositions"
            raise r.fail(cond.where, f"unknown proposition {cond.name!r} in {what}", hint)

    for i, d in enumerate(config.derived):
        for cond in d.conditions:
            check(cond, f"derived proposition {d.name!r}")
            if derived_at.get(cond.name, -1) >= i:
                raise r.fail(
                    cond.where,
                    f"derived proposition {d.name!r} uses {cond.name!r}, which is not defined "
                    "above it",
                    "the format defines a derived proposition before its first use; move it up",
                )
    order = {c.name for c in config.class_order}
    used_classes = set()
    for rule in config.rules:
        if rule.tier not in order:
            raise r.fail(
                rule.class_where,
                f"class {rule.tier!r} is not in completion_class_order",
                "add it to completion_class_order, in its place (best first)",
            )
        used_classes.add(rule.tier)
        for cond in rule.conditions:
            check(cond, f"class {rule.tier!r} of response type {rule.response_type!r}")
    for decl in config.class_order:
        if decl.name not in used_classes:
            raise r.fail(
                decl.where,
                f"class {decl.name!r} has no entry in completion_classes",
                "define it for at least one response type, or remove it from the order",
            )
    if not config.rules:
        raise r.fail(order_node, "completion_classes defines no class for any response type")
    types = set(config.response_types())
    displays: dict[str, str] = {}
    for rt, display in config.display_names:
        if rt not in types:
            hint = did_you_mean(rt, types) or f"response types: {', '.join(sorted(types))}"
            raise DataError(f"response_type_names: unknown response type {rt!r}", r.file, hint)
        if display in displays:
            raise DataError(
                f"response_type_names: {rt!r} and {displays[display]!r} share the display name "
                f"{display!r}",
                r.file,
                "display names must be unique",
            )
        displays[display] = rt


# --------------------------------------------------------------------------- entry points


def parse_config(text: str, file: str = "<config>") -> RbrConfig:
    """Validate a config's text (see the module docstring); raises DataError."""
    r = _Reader(file)
    try:
        root = yaml.compose(text, Loader=_Loader)  # the safe composer: nothing is constructed
    except _AliasFound as exc:
        mark = exc.mark
        raise DataError(
            "YAML aliases (*name) are not supported",
            f"{file}:{mark.line + 1}:{mark.column + 1}",
            "write the value out in full",
        ) from None
    except _TooDeep as exc:
        mark = exc.mark
        raise DataError(
            f"YAML nested more than {MAX_NESTING} levels deep",
            f"{file}:{mark.line + 1}:{mark.column + 1}",
            "the config format needs four levels",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else file
        problem = exc.problem or exc.context or "malformed YAML"
        raise DataError(
            f"invalid YAML: {problem}", where, "check the indentation and quoting"
        ) from None
    except yaml.YAMLError as exc:
        raise DataError(f"invalid YAML: {exc}", file) from None
    except RecursionError:
        raise DataError("YAML nested too deeply", file) from None
    if root is None:
        raise DataError("the config is empty", file, "see docs/authoring.md for the format")
    sections: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, key_node, value in r.mapping(root, "the config"):
        r.unknown(key, key_node, _TOP_KEYS, "the config")
        sections[key] = (key_node, value)
    for required in ("completion_class_order", "completion_classes", "simple_propositions"):
        if required not in sections:
            raise r.fail(root, f"the config has no {required!r}", "see docs/authoring.md")
    template = template_where = None
    if "prompt_template" in sections:
        node = sections["prompt_template"][1]
        template, template_where = r.text(node, "prompt_template"), r.where(node)
    display: list[tuple[str, str]] = []
    if "response_type_names" in sections:
        for rt, _, value in r.mapping(sections["response_type_names"][1], "response_type_names"):
            display.append((rt, r.text(value, f"the display name of {rt!r}")))
    order_node = sections["completion_class_order"][1]
    config = RbrConfig(
        path=file,
        prompt_template=template,
        template_where=template_where,
        class_order=_class_order(r, order_node),
        rules=_classes(r, sections["completion_classes"][1]),
        derived=_derived(r, sections["derived_propositions"][1])
        if "derived_propositions" in sections
        else (),
        propositions=_propositions(r, sections["simple_propositions"][1]),
        display_names=tuple(display),
    )
    _validate(r, config, sections["completion_classes"][1])
    return config


def read_config(path: str | Path) -> RbrConfig:
    """Read and validate a config file (UTF-8, at most :data:`MAX_CONFIG_BYTES`)."""
    with open_jsonl(path, "config file") as f:  # any file: the same errors, located
        try:
            data = f.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise DataError(
            f"the config is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB", str(path)
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x})", f"{path}:{line}:{col}"
        ) from None
    return parse_config(text, str(path))
