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

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from specc import ir
from specc.artifact import COMPLETION_SLOT, CONVERSATION_SLOT
from specc.errors import Diagnostic, SpecError
from specc.sandbox import TemplateFailure

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


#: The variables each template sees (and nothing else: see :mod:`specc.sandbox`).
TEMPLATE_VARIABLES = frozenset(
    {"name", "description", "question", "examples", "yes", "no", "conversation", "completion"}
)
EXAMPLE_VARIABLES = frozenset({"index", "conversation", "completion", "answer", "because"})


def template_text(spec: ir.Spec) -> str:
    """The grader template's text; a ``file(...)`` template is the text the loader read
    (through its confined reader), never read again here."""
    g = spec.grader
    if g is None:
        return DEFAULT_TEMPLATE
    if g.template_file is not None:
        if g.template_source is None:
            raise SpecError(
                [
                    Diagnostic(
                        "E012",
                        f"the template {g.template_file} was not read",
                        g.span,
                        "load the spec with specc.loader.load_spec, which reads it",
                    )
                ]
            )
        return g.template_source
    return g.template or DEFAULT_TEMPLATE


def template_span(at: ir.Span | None, fallback: ir.Span, line: int | None) -> ir.Span:
    """Where line ``line`` of a template is, given ``at``, where its line 1 begins (in
    the spec for an inline template, in its own file for ``file(...)``)."""
    if at is None:
        return fallback
    if line is None or line < 1 or at.line + line - 1 > at.end_line:
        return at.model_copy(update={"end_line": at.line, "end_col": at.col})
    target = at.line + line - 1
    col = at.col if line == 1 else 1
    return at.model_copy(update={"line": target, "col": col, "end_line": target, "end_col": col})


def _diagnostics(
    exc: TemplateFailure, label: str, at: ir.Span | None, fallback: ir.Span
) -> list[Diagnostic]:
    return [
        Diagnostic(p.code, f"{label}: {p.message}", template_span(at, fallback, p.line), p.hint)
        for p in exc.problems
    ]


def default_example(
    index: int, conversation: str, completion: str, answer: str, because: str | None
) -> str:
    """:data:`DEFAULT_EXAMPLE_TEMPLATE` in Python: the same text, without Jinja (a
    policy without templates of its own is checked without importing Jinja)."""
    text = f"## Example {index}\n"
    if conversation:
        text += f"Conversation:\n{conversation}\n\n"
    text += f"Final assistant reply:\n{completion}\n\nAnswer: {answer}"
    if because:
        text += f"\n(Reason: {because})"
    return text + "\n"


def default_prompt(
    name: str,
    description: str | None,
    question: str,
    examples: list[str],
    yes: str,
    no: str,
    conversation: str,
    completion: str,
) -> str:
    """:data:`DEFAULT_TEMPLATE` in Python: the same text, without Jinja."""
    head = DEFAULT_TEMPLATE[: DEFAULT_TEMPLATE.index("{{ question }}")]
    return (
        f'{head}{question}\n\nAnswer with a single word: "{yes}" or "{no}".\n'
        + "".join(f"\n{example}" for example in examples)
        + f"\n## Now the reply to grade\nConversation:\n{conversation}\n\n"
        f"Final assistant reply:\n{completion}\n\nQuestion: {question}\nAnswer:"
    )


_Render = Callable[[Mapping[str, Any]], str]


def _renderer(
    text: str, default: str, python: Callable[..., str], names: frozenset[str]
) -> _Render:
    """Render ``text`` in the sandbox, or the built-in template in Python; raises
    :class:`~specc.sandbox.TemplateFailure` for a template that does not compile."""
    if text is default:
        return lambda values: python(**values)
    from specc.sandbox import compile_template, render

    template = compile_template(text, names)
    return lambda values: render(template, values)


def build_prompts(spec: ir.Spec) -> tuple[dict[str, str], list[Diagnostic]]:
    """Render every LLM proposition's prompt, slots left as literal markers; problems
    come back as diagnostics (E012, E013) at the template's line.

    A template from the spec renders in :mod:`specc.sandbox`, compiled once (and
    cached by its text, so ``specc check`` and ``specc compile`` in one process
    compile it once); the built-in templates render in Python."""
    g = spec.grader or ir.GraderSettings.model_construct(span=spec.span)
    text = template_text(spec)
    at = g.template_at if text is not DEFAULT_TEMPLATE else None
    example_text = g.example_template or DEFAULT_EXAMPLE_TEMPLATE
    out: dict[str, str] = {}
    diags: list[Diagnostic] = []
    try:
        render_prompt = _renderer(text, DEFAULT_TEMPLATE, default_prompt, TEMPLATE_VARIABLES)
    except TemplateFailure as exc:
        diags += _diagnostics(exc, "grader template", at, g.span)
    try:
        render_example = _renderer(
            example_text, DEFAULT_EXAMPLE_TEMPLATE, default_example, EXAMPLE_VARIABLES
        )
    except TemplateFailure as exc:
        diags += _diagnostics(exc, "example_template", g.example_template_at, g.span)
    if diags:
        return out, diags
    yes, no = g.yes[0], g.no[0]
    for p in spec.propositions:
        if p.question is None:
            continue
        examples = []
        label, where = "example_template", g.example_template_at
        try:
            for i, ex in enumerate(p.examples, 1):
                examples.append(
                    render_example(
                        {
                            "index": i,
                            "conversation": render_conversation(
                                {"role": m.role, "content": m.content} for m in ex.conversation
                            ),
                            "completion": ex.completion,
                            "answer": yes if ex.answer else no,
                            "because": ex.because,
                        },
                    ).rstrip("\n")
                )
            label, where = "grader template", at
            prompt = render_prompt(
                {
                    "name": p.name,
                    "description": p.description,
                    "question": p.question,
                    "examples": examples,
                    "yes": yes,
                    "no": no,
                    **slot_variables(),
                },
            )
        except TemplateFailure as exc:
            # The same template fails the same way for the next proposition: once is enough.
            return out, _diagnostics(exc, f"{label} for '{p.name}'", where, g.span)
        # The answer slot is the very end: a template file's final newline would
        # otherwise come between "Answer:" and the graded answer token.
        prompt = prompt.rstrip("\r\n")
        conv, comp = prompt.count(CONVERSATION_SLOT), prompt.count(COMPLETION_SLOT)
        if conv != 1 or comp != 1 or prompt.find(CONVERSATION_SLOT) > prompt.find(COMPLETION_SLOT):
            diags.append(
                Diagnostic(
                    "E012",
                    f"the prompt for '{p.name}' must contain {{{{ conversation }}}} once "
                    f"and then {{{{ completion }}}} once (found {conv} and {comp})",
                    p.span,
                    "the slot markers may not appear in questions or examples",
                )
            )
            return out, diags
        out[p.name] = prompt
    return out, diags


def render_prompts(spec: ir.Spec) -> dict[str, str]:
    """Render every LLM proposition's prompt; raises SpecError on any problem."""
    prompts, diags = build_prompts(spec)
    if diags:
        raise SpecError(diags)
    return prompts
