"""Grader prompts: the built-in template and how conversations become text.

Prompts are static-first. The template sees the proposition (``question``,
``examples``, ``name``, ``description``, ``yes``, ``no``) and two slot variables,
``conversation`` and ``completion``, that render as literal markers; grading fills
the markers verbatim. Everything before the first marker is identical for every
completion, so it is computed (or prefix-cached) once.

>>> render_conversation([{"role": "user", "content": "Hi"}])
'User: Hi'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from specc import ir
from specc.artifact import COMPLETION_SLOT, CONVERSATION_SLOT
from specc.errors import Diagnostic, SpecError

ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}

DEFAULT_EXAMPLE_TEMPLATE = """\
## Example {{ index }}
{% if conversation %}Conversation:
{{ conversation }}

{% endif %}Final assistant reply:
{{ completion }}

Answer: {{ answer }}{% if because %}
(Reason: {{ because }}){% endif %}
"""

DEFAULT_TEMPLATE = """\
You are reviewing a reply written by an AI assistant. Read the conversation and the \
assistant's final reply, then answer one question about that final reply only.

Question: {{ question }}

Answer with a single word: "{{ yes }}" or "{{ no }}".
{% for example in examples %}
{{ example }}{% endfor %}
## Now the reply to grade
Conversation:
{{ conversation }}

Final assistant reply:
{{ completion }}

Question: {{ question }}
Answer:"""


def render_conversation(messages: Iterable[Mapping[str, Any]]) -> str:
    """Render chat messages as ``Role: content`` blocks separated by blank lines."""
    parts = []
    for m in messages:
        role = str(m.get("role", "user"))
        label = ROLE_LABELS.get(role, role.capitalize())
        parts.append(f"{label}: {m.get('content', '')}")
    return "\n\n".join(parts)


def slot_variables() -> dict[str, str]:
    return {"conversation": CONVERSATION_SLOT, "completion": COMPLETION_SLOT}


def template_text(spec: ir.Spec) -> str:
    g = spec.grader
    if g is None:
        return DEFAULT_TEMPLATE
    if g.template_file is not None:
        path = Path(g.span.file).parent / g.template_file
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise SpecError(
                [Diagnostic("E012", f"cannot read template {g.template_file}", g.span)]
            ) from None
    return g.template or DEFAULT_TEMPLATE


def render_prompts(spec: ir.Spec) -> dict[str, str]:
    """Render every LLM proposition's prompt, slots left as literal markers."""
    from jinja2 import Environment, StrictUndefined, TemplateError

    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
    g = spec.grader or ir.GraderSettings(span=spec.span)
    span = g.span
    try:
        template = env.from_string(template_text(spec))
        example_template = env.from_string(g.example_template or DEFAULT_EXAMPLE_TEMPLATE)
    except TemplateError as exc:
        raise SpecError([Diagnostic("E012", f"grader template: {exc}", span)]) from None
    yes, no = g.yes[0], g.no[0]
    out: dict[str, str] = {}
    for p in spec.propositions:
        if p.question is None:
            continue
        examples = []
        try:
            for i, ex in enumerate(p.examples, 1):
                examples.append(
                    example_template.render(
                        index=i,
                        conversation=render_conversation(
                            {"role": m.role, "content": m.content} for m in ex.conversation
                        ),
                        completion=ex.completion,
                        answer=yes if ex.answer else no,
                        because=ex.because,
                    ).rstrip("\n")
                )
            text = template.render(
                name=p.name,
                description=p.description,
                question=p.question,
                examples=examples,
                yes=yes,
                no=no,
                **slot_variables(),
            )
        except TemplateError as exc:
            raise SpecError(
                [Diagnostic("E012", f"grader template for '{p.name}': {exc}", span)]
            ) from None
        # The answer slot is the very end: a template file's final newline would
        # otherwise come between "Answer:" and the graded answer token.
        text = text.rstrip("\r\n")
        conv, comp = text.count(CONVERSATION_SLOT), text.count(COMPLETION_SLOT)
        if conv != 1 or comp != 1 or text.find(CONVERSATION_SLOT) > text.find(COMPLETION_SLOT):
            raise SpecError(
                [
                    Diagnostic(
                        "E012",
                        f"the prompt for '{p.name}' must contain {{{{ conversation }}}} once "
                        f"and then {{{{ completion }}}} once (found {conv} and {comp})",
                        p.span,
                        "the slot markers may not appear in questions or examples",
                    )
                ]
            )
        out[p.name] = text
    return out
