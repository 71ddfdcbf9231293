"""The config's ``prompt_template`` (Python format) as a specc grader template (Jinja2).

A placeholder becomes a template variable; everything else is literal text, escaped
so that Jinja2 renders it back character for character (no config text is ever
evaluated as a template):

=============================  ==============================================
``{question}``                 ``{{ question }}``
``{response}``, ``{completion}``  ``{{ completion }}`` (the graded reply)
``{conversation}``, ``{prompt}``  ``{{ conversation }}`` (the turns before it)
``{examples}``                 the proposition's structured examples, if any
``{{`` and ``}}``              a literal ``{`` and ``}``, as in Python
=============================  ==============================================

specc's prompts need the conversation before the reply; a template without it gets
a ``Conversation:`` paragraph just before the paragraph that holds the reply. The
prompt must end where the answer goes, so ``answer_cue`` (``Answer:``) is appended
unless the template already ends with it.

>>> translate_template("Q: {question}\\nA: {response}", answer_cue="Answer:").text
'Q: {{ question }}\\nConversation:\\n{{ conversation }}\\n\\nA: {{ completion }}\\n\\nAnswer:'
>>> jinja_literal("{{ not a tag }}")
'{{ "{" }}{ not a tag }}'
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from specc.artifact import COMPLETION_SLOT, CONVERSATION_SLOT
from specc.errors import DataError, did_you_mean

__all__ = ["PLACEHOLDERS", "Translated", "jinja_literal", "strip_line_ends", "translate_template"]

#: Placeholder -> the template variable it becomes.
PLACEHOLDERS: dict[str, str] = {
    "question": "question",
    "response": "completion",
    "completion": "completion",
    "conversation": "conversation",
    "prompt": "conversation",
    "examples": "examples",
}
_JINJA = {
    "question": "{{ question }}",
    "completion": "{{ completion }}",
    "conversation": "{{ conversation }}",
    "examples": (
        "{% for example in examples %}{{ example }}{% if not loop.last %}\n\n{% endif %}"
        "{% endfor %}"
    ),
}
_OPENERS = "{%#"
_LINE_END_SPACE = re.compile(r"[ \t]+(?=\n)")


def jinja_literal(text: str, before_tag: bool = False) -> str:
    """``text`` escaped for a Jinja2 template: every ``{`` that would open a tag
    (followed by ``{``, ``%`` or ``#``, or, with ``before_tag``, the text's last
    character, since a tag follows) is written ``{{ "{" }}``."""
    out = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        opens = ch == "{" and (text[i + 1] in _OPENERS if i < last else before_tag)
        out.append('{{ "{" }}' if opens else ch)
    return "".join(out)


def strip_line_ends(text: str) -> tuple[str, int]:
    """``text`` without spaces and tabs at line ends, and how many lines changed."""
    changed = len(_LINE_END_SPACE.findall(text))
    return _LINE_END_SPACE.sub("", text), changed


@dataclass(frozen=True)
class Translated:
    """The Jinja2 template and what the translation did, in words."""

    text: str
    notes: tuple[str, ...]


def _parts(template: str, where: str) -> list[tuple[str, str]]:
    """``("text", literal)`` and ``("var", variable)`` parts of a Python format string."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise DataError(
            f"prompt_template is not a valid format string: {exc}",
            where,
            "placeholders are {question} and {response}; write a literal brace as {{ or }}",
        ) from None
    parts: list[tuple[str, str]] = []
    for literal, field, spec, conversion in parsed:
        if literal and parts and parts[-1][0] == "text":
            parts[-1] = ("text", parts[-1][1] + literal)  # "a {{ b" comes in pieces
        elif literal:
            parts.append(("text", literal))
        if field is None:
            continue
        shown = (
            "{"
            + field
            + ("!" + conversion if conversion else "")
            + (":" + spec if spec else "")
            + "}"
        )
        if field not in PLACEHOLDERS:
            hint = did_you_mean(field, PLACEHOLDERS) or (
                f"known placeholders: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}; "
                "write a literal brace as {{ or }}"
            )
            raise DataError(f"prompt_template: unknown placeholder {shown}", where, hint)
        if spec or conversion:
            raise DataError(
                f"prompt_template: {shown} has a format spec or conversion",
                where,
                f"write plain {{{field}}}",
            )
        parts.append(("var", PLACEHOLDERS[field]))
    return parts


def _insert_conversation(parts: list[tuple[str, str]]) -> None:
    """Put ``Conversation:`` and the conversation just before the paragraph (else the
    line) that holds the completion."""
    at = next(i for i, (kind, value) in enumerate(parts) if (kind, value) == ("var", "completion"))
    block = [("text", "Conversation:\n"), ("var", "conversation"), ("text", "\n\n")]
    if at > 0 and parts[at - 1][0] == "text":
        text = parts[at - 1][1]
        cut = text.rfind("\n\n")
        cut = cut + 2 if cut >= 0 else text.rfind("\n") + 1
        parts[at - 1 : at] = [("text", text[:cut]), *block, ("text", text[cut:])]
    else:
        parts[at:at] = block


def translate_template(
    template: str,
    where: str = "<config>",
    *,
    answer_cue: str = "Answer:",
    has_examples: bool = False,
) -> Translated:
    """Translate ``template`` (see the module docstring); raises DataError at ``where``."""
    parts = _parts(template, where)
    count = {v: sum(1 for kind, value in parts if (kind, value) == ("var", v)) for v in _JINJA}
    if count["question"] == 0:
        raise DataError(
            "prompt_template has no {question}",
            where,
            "the grader must see each proposition's question",
        )
    if count["completion"] != 1:
        raise DataError(
            f"prompt_template must hold the reply ({{response}}) exactly once, not "
            f"{count['completion']} times",
            where,
        )
    for name in ("conversation", "examples"):
        if count[name] > 1:
            raise DataError(f"prompt_template holds {{{name}}} {count[name]} times", where, "once")
    if has_examples and count["examples"] == 0:
        raise DataError(
            "propositions have structured examples but prompt_template has no {examples}",
            where,
            "put {examples} where the few-shot examples go",
        )
    for kind, value in parts:
        for slot in (CONVERSATION_SLOT, COMPLETION_SLOT):
            if kind == "text" and slot in value:
                raise DataError(
                    f"prompt_template holds the text {slot!r}, which specc's prompts reserve "
                    "for the text being graded",
                    where,
                    "use the placeholders {conversation} and {response} instead",
                )
    notes = []
    positions = [value for kind, value in parts if kind == "var"]
    if count["conversation"] and positions.index("conversation") > positions.index("completion"):
        raise DataError(
            "prompt_template puts the conversation after the reply",
            where,
            "specc prompts show the conversation, then the reply",
        )
    if not count["conversation"]:
        _insert_conversation(parts)
        notes.append("the template had no {conversation}: a Conversation: paragraph was added")
    stripped = 0
    for i, (kind, value) in enumerate(parts):
        if kind == "text":
            value, n = strip_line_ends(value)
            stripped += n
            parts[i] = (kind, value)
    if stripped:
        notes.append(f"removed spaces at the end of {stripped} template line(s)")
    if answer_cue:
        tail = parts[-1][1] if parts[-1][0] == "text" else ""
        if not tail.rstrip().endswith(answer_cue):
            parts.append(("text", "\n\n" + answer_cue))
            notes.append(f"appended {answer_cue!r}: the prompt must end where the answer goes")
    merged: list[tuple[str, str]] = []
    for kind, value in parts:
        if kind == "text" and merged and merged[-1][0] == "text":
            merged[-1] = ("text", merged[-1][1] + value)
        elif kind == "var" or value:
            merged.append((kind, value))
    out = []
    for i, (kind, value) in enumerate(merged):
        if kind == "var":
            out.append(_JINJA[value])
        else:  # a text part is followed by a tag or by nothing
            out.append(jinja_literal(value, before_tag=i + 1 < len(merged)))
    return Translated("".join(out), tuple(notes))
