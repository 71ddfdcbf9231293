"""Input rows: one JSON object per line, compatible with the RBR gold data.

Fields (unknown fields such as ``category`` are ignored):

``prompt``
    a list of ``{"role", "content"}`` messages, or a string (one user message);
``completion``
    the list with the assistant message(s), or a string;
``response_type``
    a response type's identifier or display name (``"Hard Refuse"``);
``id`` (optional)
    a string or integer, unique in the file; ``line-<n>`` when absent;
``propositions`` (optional)
    ``{name: bool or probability in [0, 1]}``, the labels for ``--grader labels``;
``completion_label`` (optional), ``base_reward`` (optional)
    the tier of this completion, a base reward-model score.

Every problem is a :class:`~specc.errors.DataError` naming ``file:line`` and the field.

>>> rows = read_rows("data/train.jsonl")          # doctest: +SKIP
>>> rows[0].where, rows[0].response_type          # doctest: +SKIP
('data/train.jsonl:1', 'Hard Refuse')
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specc.errors import DataError
from specc.jsonl import iter_jsonl
from specc.prompts import render_conversation


@dataclass(frozen=True)
class Row:
    """One conversation and completion to grade."""

    id: str
    where: str  # "file:line"
    messages: tuple[tuple[str, str], ...]  # (role, content) of the prompt
    completion: str
    response_type: str  # as written in the row; resolve it with the artifact
    propositions: dict[str, float] | None = None
    completion_label: str | None = None
    base_reward: float | None = None

    @property
    def conversation_text(self) -> str:
        """The prompt messages as the grader sees them (``specc.prompts``)."""
        return render_conversation({"role": r, "content": c} for r, c in self.messages)

    def prompt_id(self, response_type: str) -> str:
        """Groups completions of the same prompt: sha256 of the canonical prompt
        messages and the response type identifier, first 16 hex digits."""
        canonical = json.dumps(
            [[r, c] for r, c in self.messages], ensure_ascii=False, separators=(",", ":")
        )
        data = f"{canonical}\x00{response_type}".encode()
        return hashlib.sha256(data).hexdigest()[:16]


def _text(value: Any, where: str, field: str) -> str:
    """A message content: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for i, part in enumerate(value):
            if isinstance(part, dict) and part.get("type", "text") == "text":
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
                    continue
            raise DataError(
                f"field '{field}' part {i} is not a text part",
                where,
                'use a string or [{"type": "text", "text": "..."}]',
            )
        return "".join(parts)
    raise DataError(
        f"field '{field}' must be a string, not {type(value).__name__}",
        where,
    )


def _messages(value: Any, where: str, field: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [("user" if field == "prompt" else "assistant", value)]
    if not isinstance(value, list):
        raise DataError(
            f"field '{field}' must be a list of messages or a string, not {type(value).__name__}",
            where,
        )
    out = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            raise DataError(
                f"field '{field}[{i}]' must be a message object, not {type(msg).__name__}",
                where,
                'write messages as {"role": "user", "content": "..."}',
            )
        role = msg.get("role", "assistant" if field == "completion" else None)
        if not isinstance(role, str):
            raise DataError(f"field '{field}[{i}].role' must be a string", where)
        if "content" not in msg:
            raise DataError(f"field '{field}[{i}]' has no 'content'", where)
        out.append((role, _text(msg["content"], where, f"{field}[{i}].content")))
    if not out:
        raise DataError(f"field '{field}' is an empty list", where)
    return out


def _labels(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise DataError(
            f"field 'propositions' must be an object, not {type(value).__name__}",
            where,
            'write {"apology": true, "judgement": 0.2}',
        )
    out: dict[str, float] = {}
    for name, v in value.items():
        if isinstance(v, bool):
            out[name] = 1.0 if v else 0.0
        elif isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= 1.0:
            out[name] = float(v)
        else:
            raise DataError(
                f"field 'propositions.{name}' must be true, false or a probability in "
                f"[0, 1], not {json.dumps(v)}",
                where,
            )
    return out


def parse_row(obj: Any, where: str, line: int) -> Row:
    """Validate one decoded JSON line."""
    if not isinstance(obj, dict):
        raise DataError(f"a row must be a JSON object, not {type(obj).__name__}", where)
    for field in ("prompt", "completion", "response_type"):
        if field not in obj:
            raise DataError(f"missing field '{field}'", where)
    rt = obj["response_type"]
    if not isinstance(rt, str):
        raise DataError(f"field 'response_type' must be a string, not {type(rt).__name__}", where)
    messages = _messages(obj["prompt"], where, "prompt")
    completion = "\n\n".join(c for _, c in _messages(obj["completion"], where, "completion"))
    raw_id = obj.get("id")
    if raw_id is None:
        row_id = f"line-{line}"
    elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
        row_id = str(raw_id)
    else:
        raise DataError(f"field 'id' must be a string or an integer, not {raw_id!r}", where)
    labels = _labels(obj["propositions"], where) if obj.get("propositions") is not None else None
    label = obj.get("completion_label")
    if label is not None and not isinstance(label, str):
        raise DataError(f"field 'completion_label' must be a tier name, not {label!r}", where)
    base = obj.get("base_reward")
    if base is not None and (
        isinstance(base, bool) or not isinstance(base, (int, float)) or not math.isfinite(base)
    ):
        raise DataError(f"field 'base_reward' must be a finite number, not {base!r}", where)
    return Row(
        id=row_id,
        where=where,
        messages=tuple(messages),
        completion=completion,
        response_type=rt,
        propositions=labels,
        completion_label=label,
        base_reward=None if base is None else float(base),
    )


def read_rows(path: str | Path, limit: int | None = None) -> list[Row]:
    """Read and validate a JSONL file of rows (blank lines are skipped).

    Lines go through :func:`specc.jsonl.iter_jsonl` (bounded line length, nesting
    depth and number size; strict UTF-8; no lone surrogates). ``limit`` keeps the
    first N rows. Raises :class:`~specc.errors.DataError` with ``file:line`` for
    malformed JSON, a crossed bound, wrong field types, duplicate ids or an empty
    file, and :class:`~specc.errors.UsageError` for a missing or unreadable file."""
    rows: list[Row] = []
    seen: dict[str, str] = {}
    if limit is None or limit > 0:
        for n, where, obj in iter_jsonl(path, "data file"):
            row = parse_row(obj, where, n)
            if row.id in seen:
                raise DataError(
                    f"duplicate id {row.id!r} (first at {seen[row.id]})",
                    where,
                    "give every row a unique 'id'",
                )
            seen[row.id] = where
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
    if not rows:
        raise DataError(
            "no rows: the file is empty" if limit != 0 else "no rows (--limit 0)",
            str(path),
            "write one JSON object per line with prompt, completion and response_type",
        )
    return rows
