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
from typing import Any

from specc.artifact import COMPLETION_SLOT, CONVERSATION_SLOT

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
