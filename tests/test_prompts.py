"""Prompts: the built-in templates in Python are the Jinja templates, character for
character (a policy without templates of its own is checked without Jinja)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from specc.prompts import (
    DEFAULT_EXAMPLE_TEMPLATE,
    DEFAULT_TEMPLATE,
    EXAMPLE_VARIABLES,
    TEMPLATE_VARIABLES,
    default_example,
    default_prompt,
)
from specc.sandbox import compile_template, render

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(
    index=st.integers(1, 50),
    conversation=_text,
    completion=_text,
    answer=_text,
    because=st.none() | _text,
)
def test_default_example_matches_its_jinja_template(
    index: int, conversation: str, completion: str, answer: str, because: str | None
) -> None:
    values = dict(index=index, conversation=conversation, completion=completion, answer=answer)
    jinja = render(
        compile_template(DEFAULT_EXAMPLE_TEMPLATE, EXAMPLE_VARIABLES),
        {**values, "because": because},
    )
    assert default_example(**values, because=because) == jinja


@settings(max_examples=150, deadline=None)
@given(
    question=_text,
    description=st.none() | _text,
    examples=st.lists(_text, max_size=3),
    yes=_text,
    no=_text,
)
def test_default_prompt_matches_its_jinja_template(
    question: str, description: str | None, examples: list[str], yes: str, no: str
) -> None:
    values = dict(
        name="p",
        description=description,
        question=question,
        examples=examples,
        yes=yes,
        no=no,
        conversation="<<C>>",
        completion="<<R>>",
    )
    jinja = render(compile_template(DEFAULT_TEMPLATE, TEMPLATE_VARIABLES), values)
    assert default_prompt(**values) == jinja
