"""``make_grader``: a grader from its ``--grader`` spelling.

=============================  =====================================================
``hf:PATH``                    a local transformers causal LM (a directory, or a name
                               already in the Hugging Face cache; never downloaded)
``openai:URL#MODEL``           an OpenAI-compatible server, ``/v1/completions``
``openai-chat:URL#MODEL``      the same through ``/v1/chat/completions``
``openai:MODEL``               the URL from ``OPENAI_BASE_URL``
``labels``                     the rows' own ``propositions`` values
``rules``                      extractors only (every needed proposition has one)
=============================  =====================================================

>>> make_grader("labels")
LabelsGrader(kind='labels', source='labels')
>>> make_grader("hf:models/grader", device="cpu")     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from specc.errors import UsageError, did_you_mean
from specc.grade.base import Answers, AnyGrader, LabelsGrader, RulesGrader

SCHEMES = ("hf", "openai", "openai-chat", "labels", "rules")


def _drop(message: str) -> None:
    """Drops a notice."""


def notices(quiet: bool) -> Callable[[str], None] | None:
    """The ``notify`` of :func:`make_grader` for a command's ``-q``: None (the openai
    client's retry notices go to stderr) or, when ``quiet``, a sink that drops them."""
    return _drop if quiet else None


def close_grader(grader: AnyGrader) -> None:
    """Release what ``grader`` holds (an openai client's connections). Graders with
    nothing to release have no ``close``; a lazy hf grader's never loads its model."""
    close = getattr(grader, "close", None)
    if callable(close):
        close()


def make_grader(
    spec: str,
    *,
    answers: Answers | None = None,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int | None = None,
    concurrency: int = 8,
    timeout: float = 60.0,
    max_attempts: int = 6,
    api_key: str | None = None,
    top_logprobs: int = 20,
    notify: Callable[[str], None] | None = None,
) -> AnyGrader:
    """Build the grader ``spec`` names (see the module docstring).

    ``answers`` are the yes/no words (``extract_features`` switches them to the
    artifact's own with ``with_answers``, without reloading the model). ``device``,
    ``dtype`` are for hf; ``concurrency``, ``timeout`` (seconds per request, connect
    to last byte), ``max_attempts``, ``api_key``, ``top_logprobs`` and ``notify`` (where
    retry notices go, default stderr) for openai. Bad values are a UsageError."""
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise UsageError(f"batch_size must be a whole number of at least 1, not {batch_size!r}")
    scheme, sep, rest = spec.partition(":")
    if not sep:
        if spec in ("labels", "rules"):
            return LabelsGrader() if spec == "labels" else RulesGrader()
        raise UsageError(f"unknown grader {spec!r}" + _graders_hint(spec))
    if scheme == "hf":
        if not rest:
            raise UsageError("hf: needs a model path, e.g. hf:models/grader")
        from specc.grade.hf import LazyHFGrader

        return LazyHFGrader(
            rest, answers=answers, device=device, dtype=dtype, batch_size=batch_size or 16
        )
    if scheme in ("openai", "openai-chat"):
        from specc.grade.openai import OpenAIGrader

        url, hash_sep, model = rest.rpartition("#")
        if not hash_sep:
            if rest.startswith(("http://", "https://")):
                raise UsageError(
                    f"{spec!r}: no model name; write {scheme}:URL#MODEL "
                    "(e.g. openai:http://127.0.0.1:8000/v1#my-grader)"
                )
            url, model = "", rest
        grader = OpenAIGrader(
            url or None,
            model,
            api_key=api_key,
            endpoint="chat" if scheme == "openai-chat" else "completions",
            answers=answers,
            top_logprobs=top_logprobs,
            concurrency=concurrency,
            timeout=timeout,
            max_attempts=max_attempts,
            notify=notify,
        )
        if batch_size:
            grader.batch_size = batch_size
        return grader
    raise UsageError(f"unknown grader backend {scheme!r}" + _graders_hint(scheme))


def _graders_hint(name: str) -> str:
    """The hint of an unknown grader: the closest name, and every form a grader takes."""
    close = did_you_mean(name, SCHEMES)
    return (
        "\n  = hint: "
        + (f"{close} " if close else "")
        + "a grader is hf:PATH, openai:URL#MODEL, openai-chat:URL#MODEL, labels or rules"
    )
