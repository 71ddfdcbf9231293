"""The wire formats of ``specc serve``: request bodies in, rows out, every check.

Nothing here touches the network or the model; every problem is a
:class:`RequestError` carrying the HTTP status (4xx) and a message for the client.

``POST /get_reward`` is OpenRLHF's remote reward protocol (0.11.2,
``openrlhf.utils.agent.SingleTurnAgentExecutor._fetch_rewards_via_http``)::

    {"query": [prompt + response], "prompts": [prompt], "labels": [response type]}

Each query is the chat-templated prompt followed by the generated response, special
tokens kept. The response is the query minus its prompt, with trailing
end-of-sequence texts stripped:

>>> response_from_query("<|user|>Hi<|assistant|>Hello!<|im_end|>", "<|user|>Hi<|assistant|>")
'Hello!<|im_end|>'
>>> strip_eos("Hello!<|im_end|>\\n", ("<|im_end|>",))
'Hello!'

``POST /score`` takes plain rows (``prompt``, ``completion``, ``response_type``,
optional ``propositions``, ``base_reward``, ``id``) in ``{"rows": [...]}``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from specc.errors import DataError
from specc.grade.data import Row, parse_row
from specc.jsonl import parse_line

#: Characters of the query's start that must match the prompt's tail when OpenRLHF
#: cut the prompt from the left (``max_len``); and how many places to try.
MIN_TAIL = 32
MAX_TAIL_TRIES = 64


class RequestError(Exception):
    """A bad request: answered with ``status`` (4xx) and ``message``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def decode_json(body: bytes) -> Any:
    """The body as JSON, with the bounds of every JSON specc reads (``specc.jsonl``:
    strict UTF-8, nesting depth, number sizes, no NaN, no lone surrogates); 400
    otherwise."""
    try:
        return parse_line(body, "request body", document=True)
    except DataError as exc:
        raise RequestError(400, str(exc)) from None


def strip_eos(text: str, eos_texts: Sequence[str]) -> str:
    """Remove end-of-sequence texts from the end of ``text``, repeatedly, ignoring
    whitespace after each; ``text`` is returned unchanged when it ends in none.

    Linear in ``text``: one match over the reversed text, then one cut (cutting at
    each step made a response of 500,000 ``</s>`` hold the event loop for seconds)."""
    found = _eos_run(tuple(eos_texts)).match(text[::-1])
    return text[: len(text) - found.end()] if found else text


@functools.lru_cache(maxsize=16)
def _eos_run(eos_texts: tuple[str, ...]) -> re.Pattern[str]:
    """Reversed: a run of end-of-sequence texts, each with the whitespace after it,
    tried in the given order. Each repetition consumes an end-of-sequence text, so
    the match does not backtrack."""
    texts = "|".join(re.escape(eos[::-1]) for eos in eos_texts if eos)
    return re.compile(f"(?:\\s*(?:{texts}))*" if texts else "(?!)")


def response_from_query(query: str, prompt: str) -> str:
    """The response in ``query``: what follows ``prompt``.

    OpenRLHF cuts an over-long prompt's tokens from the left, so when the query does
    not start with the whole prompt it must start with a tail of it at least
    :data:`MIN_TAIL` characters long."""
    if query.startswith(prompt):
        return query[len(prompt) :]
    if len(prompt) > MIN_TAIL and len(query) >= MIN_TAIL:
        probe = query[:MIN_TAIL]
        start = prompt.find(probe, 1)
        for _ in range(MAX_TAIL_TRIES):
            if start < 0:
                break
            tail = prompt[start:]
            if query.startswith(tail):
                return query[len(tail) :]
            start = prompt.find(probe, start + 1)
    raise RequestError(
        422,
        "the query does not start with its prompt (nor with a tail of it, as when the "
        "prompt was cut to fit); send the prompt text exactly as it begins the query",
    )


def _check_text(value: str, where: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(422, f"{where} holds an unpaired surrogate (not valid text)") from None
    return value


def _string_list(obj: dict[str, Any], key: str, limit: int) -> list[str]:
    if key not in obj:
        raise RequestError(422, f"missing field '{key}' (a list of strings)")
    value = obj[key]
    if not isinstance(value, list):
        raise RequestError(422, f"field '{key}' must be a list, not {_kind(value)}")
    if not value:
        raise RequestError(422, f"field '{key}' is an empty list")
    if len(value) > limit:
        raise RequestError(422, f"field '{key}' has {len(value)} items; at most {limit} a request")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise RequestError(422, f"field '{key}[{i}]' must be a string, not {_kind(item)}")
        _check_text(item, f"field '{key}[{i}]'")
    return value


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


def _object(body: Any, endpoint: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestError(422, f"{endpoint} takes a JSON object, not {_kind(body)}")
    return body


@dataclass(frozen=True)
class RewardRequest:
    """A parsed ``/get_reward`` body: one row per query, in order."""

    rows: list[Row]


def parse_get_reward(
    body: Any,
    *,
    eos_texts: Sequence[str],
    max_rows: int,
    default_response_type: str | None = None,
) -> RewardRequest:
    """Rows from an OpenRLHF body (``query``, ``prompts``, ``labels``, same lengths).

    A label is the response type (identifier or display name); an empty one falls
    back to ``default_response_type`` when the server has one."""
    obj = _object(body, "/get_reward")
    queries = _string_list(obj, "query", max_rows)
    prompts = _string_list(obj, "prompts", max_rows)
    if "labels" not in obj and default_response_type is not None:
        labels: list[Any] = [""] * len(queries)
    else:
        raw = obj.get("labels")
        if not isinstance(raw, list):
            raise RequestError(
                422,
                f"field 'labels' must be a list of response types, not {_kind(raw)}; "
                "run OpenRLHF with --data.label_key naming the column that holds them",
            )
        labels = raw
    if not len(queries) == len(prompts) == len(labels):
        raise RequestError(
            422,
            f"'query', 'prompts' and 'labels' must have the same length, not "
            f"{len(queries)}, {len(prompts)} and {len(labels)}",
        )
    rows = []
    for i, (query, prompt, label) in enumerate(zip(queries, prompts, labels, strict=True)):
        if label is None or label == "":
            if default_response_type is None:
                raise RequestError(
                    422,
                    f"labels[{i}] is empty: each label must name the sample's response "
                    "type (OpenRLHF: --data.label_key; or start the server with "
                    "--response-type)",
                )
            label = default_response_type
        if not isinstance(label, str):
            raise RequestError(422, f"labels[{i}] must be a response type name, not {_kind(label)}")
        _check_text(label, f"labels[{i}]")
        try:
            response = strip_eos(response_from_query(query, prompt), eos_texts)
        except RequestError as exc:
            raise RequestError(exc.status, f"query[{i}]: {exc.message}") from None
        where = f"query[{i}]"
        rows.append(
            Row(
                id=str(i),
                where=where,
                messages=(("user", prompt),),
                completion=response,
                response_type=label,
            )
        )
    return RewardRequest(rows)


@dataclass(frozen=True)
class ScoreRequest:
    """A parsed ``/score`` body."""

    rows: list[Row]
    observe: bool  # count these completions towards the Lagrange multipliers


def parse_score(body: Any, *, max_rows: int) -> ScoreRequest:
    """Rows in the data format of ``specc grade`` (see docs/grading.md)."""
    obj = _object(body, "/score")
    rows = obj.get("rows")
    if not isinstance(rows, list):
        raise RequestError(422, f"field 'rows' must be a list of row objects, not {_kind(rows)}")
    if not rows:
        raise RequestError(422, "field 'rows' is an empty list")
    if len(rows) > max_rows:
        raise RequestError(422, f"field 'rows' has {len(rows)} rows; at most {max_rows} a request")
    observe = obj.get("observe", True)
    if not isinstance(observe, bool):
        raise RequestError(422, f"field 'observe' must be true or false, not {_kind(observe)}")
    parsed = []
    for i, raw in enumerate(rows):
        where = f"rows[{i}]"
        try:
            row = parse_row(raw, where, i)
        except DataError as exc:
            raise RequestError(422, str(exc)) from None
        for role, content in row.messages:
            _check_text(role, f"{where}.prompt")
            _check_text(content, f"{where}.prompt")
        _check_text(row.completion, f"{where}.completion")
        _check_text(row.response_type, f"{where}.response_type")
        parsed.append(row)
    return ScoreRequest(parsed, observe)
