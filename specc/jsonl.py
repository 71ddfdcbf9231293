"""Bounded JSON Lines: the one reader and writer for every ``.jsonl`` file specc touches.

Data files are untrusted input. A line is read with a length cap (never a whole
unbounded line into memory), decoded as strict UTF-8 and parsed with bounds:

* nesting deeper than :data:`MAX_DEPTH` containers is refused;
* a number literal longer than :data:`MAX_NUMBER_CHARS` characters, an integer
  outside the signed 64-bit range, a float that overflows to infinity, and the
  non-JSON constants ``NaN``/``Infinity`` are refused;
* a lone UTF-16 surrogate (``"\\ud800"`` with no partner) is refused, because it
  cannot be written back as UTF-8.

Lines are split on ``\\n`` only, so a row whose text holds U+2028 (LINE SEPARATOR)
is one row; :func:`dumps_line` escapes U+2028 and U+2029 anyway, so files specc
writes stay one row per line for every reader. Every failure is a
:class:`~specc.errors.DataError` whose ``where`` is ``file:line``.

>>> dumps_line({"id": "a\\u2028b"})
'{"id": "a\\\\u2028b"}\\n'
>>> parse_line(b'{"n": 1e999}', "d.jsonl:3")
Traceback (most recent call last):
...
specc.errors.DataError: d.jsonl:3: number 1e999 is out of range (it overflows to infinity)
  = hint: write numbers as finite floats or 64-bit integers of at most 64 characters; ...
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from specc.errors import DataError, UsageError
from specc.oserrors import os_error

__all__ = [
    "MAX_DEPTH",
    "MAX_LINE_BYTES",
    "MAX_NUMBER_CHARS",
    "dumps_line",
    "iter_jsonl",
    "open_jsonl",
    "parse_line",
    "read_json_file",
    "read_line",
]

#: The longest line read, in bytes (a row with a long conversation fits easily).
MAX_LINE_BYTES = 32 * 1024 * 1024
#: The deepest nesting of arrays and objects in one row.
MAX_DEPTH = 64
#: The longest number literal, in characters.
MAX_NUMBER_CHARS = 64
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1

_DEPTH_HINT = "flatten the row; no field of the data format nests this deep"
_NUMBER_HINT = (
    "write numbers as finite floats or 64-bit integers of at most "
    f"{MAX_NUMBER_CHARS} characters; an id can be a string"
)

_SURROGATE = re.compile("[\ud800-\udfff]")
_SEPARATORS = re.compile("[\u2028\u2029]")


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Bad(f"number {text[:20]}... has {len(text)} digits; at most {MAX_NUMBER_CHARS}")
    value = int(text)
    if not _INT_MIN <= value <= _INT_MAX:
        raise _Bad(f"integer {text} is out of range (signed 64-bit)")
    return value


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Bad(f"number {text[:20]}... has {len(text)} characters; at most {MAX_NUMBER_CHARS}")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Bad(f"number {text} is out of range (it overflows to infinity)")
    return value


def _parse_constant(text: str) -> Any:
    raise _Bad(f"{text} is not a JSON number; write a finite number or null")


class _Bad(ValueError):
    """A bound was crossed inside the decoder (turned into a DataError)."""


_DECODER = json.JSONDecoder(
    parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
)
# The bound checks above cost a Python call per number (most of the time of a line of
# probabilities). A line without a digit run of 19 or more and without a three-digit
# exponent has no number that could cross a bound (64-bit integers have at most 19
# digits, a float overflows only with an exponent of three digits or more, and a
# literal over 64 characters needs a run of 19 digits), so it is decoded with the
# C-level int/float: the same values. Other lines (a match inside a string too) take
# the checked decoder.
_FAST_DECODER = json.JSONDecoder(parse_constant=_parse_constant)
# Digits read as 0 and E as e, so that plain substring searches (C speed, unlike a
# regular expression over the line) find both kinds of risky literal.
_FOLD_NUMBERS = str.maketrans("0123456789E", "0000000000e")


def _risky_number(text: str) -> bool:
    """Whether ``text`` may hold a number literal that crosses a bound (or a match
    inside a string: then the checked decoder runs, which is only slower)."""
    folded = text.translate(_FOLD_NUMBERS)
    return "0" * 19 in folded or "e000" in folded or "e+000" in folded or "e-000" in folded


def _depth_exceeds(obj: Any, limit: int) -> bool:
    """True when ``obj`` nests more than ``limit`` containers (iterative walk)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))
    return False


def _has_surrogate(obj: Any) -> bool:
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_line(raw: bytes | str, where: str, *, document: bool = False) -> Any:
    """Decode one line (without or with its newline) into a JSON value, within bounds.

    Raises :class:`DataError` at ``where`` for bad UTF-8, bad JSON or a crossed bound.
    ``document=True`` reads a whole JSON text that is not a line of a JSONL file (an
    HTTP body, ``specc explain``'s row), and the hints say so."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"not UTF-8 text (byte {exc.start}: 0x{raw[exc.start]:02x})",
                where,
                "encode it as UTF-8" if document else "save the file as UTF-8",
            ) from None
    else:
        text = raw
    try:
        decoder = _DECODER if _risky_number(text) else _FAST_DECODER
        obj = decoder.decode(text)
    except json.JSONDecodeError as exc:
        if text.startswith("\ufeff"):  # Windows editors write one; it is not JSON
            raise DataError(
                f"the {'text' if document else 'line'} starts with a byte order mark "
                "(U+FEFF), which is not JSON",
                where,
                "drop the byte order mark" if document else "save the file as UTF-8 without a BOM",
            ) from None
        raise DataError(
            f"invalid JSON: {exc.msg} (column {exc.colno})",
            where,
            "send one complete JSON value"
            if document
            else "each line must be one complete JSON object",
        ) from None
    except _Bad as exc:
        raise DataError(str(exc), where, _NUMBER_HINT) from None
    except RecursionError:
        raise DataError(
            f"JSON nested too deeply (more than {MAX_DEPTH} levels)", where, _DEPTH_HINT
        ) from None
    # Depth can only exceed the limit when there are that many opening brackets.
    if (text.count("[") + text.count("{")) > MAX_DEPTH and _depth_exceeds(obj, MAX_DEPTH):
        raise DataError(
            f"JSON nested too deeply (more than {MAX_DEPTH} levels)", where, _DEPTH_HINT
        )
    if "\\u" in text and _has_surrogate(obj):
        raise DataError(
            "a string holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), "
            "which is not text",
            where,
            "fix the encoder that wrote this file, or drop the stray escape",
        )
    return obj


def read_json_file(path: str | Path, what: str, limit: int) -> Any:
    """The one JSON document in the regular file ``path`` (links followed: a path the
    user gave), at most ``limit`` bytes, parsed with the bounds of :func:`parse_line`.

    A file that cannot be read, is not a regular file, is larger, or is not such JSON
    is a :class:`DataError` at ``path``: ``cannot read {what}: {why}``."""
    from specc.files import PathRefused, read_regular

    try:
        raw = read_regular(path, limit)
    except (OSError, PathRefused) as exc:
        raise DataError(f"cannot read {what}: {exc}", str(path)) from None
    try:
        return parse_line(raw, "")
    except DataError as exc:
        reason = str(exc).splitlines()[0]  # the message, without parse_line's hint
        raise DataError(f"cannot read {what}: {reason}", str(path)) from None


def read_line(f: BinaryIO, where: str) -> bytes:
    """The next line of ``f`` (b"" at the end), refusing lines over the cap."""
    raw = f.readline(MAX_LINE_BYTES + 1)
    if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
        raise DataError(
            f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB",
            where,
            "is this a JSON Lines file (one object per line)?",
        )
    return raw


def open_jsonl(path: str | Path, what: str = "data file") -> BinaryIO:
    """Open a JSONL file for reading; a missing or unreadable file is a UsageError."""
    p = Path(path)
    try:
        if p.is_dir():
            raise UsageError(f"{path}: is a directory, not a {what}")
        f = p.open("rb")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such {what}") from None
    except OSError as exc:  # permission denied, ...: the reason and what to do
        raise os_error(exc, path, f"read the {what}") from None
    return f


def iter_jsonl(path: str | Path, what: str = "data file") -> Iterator[tuple[int, str, Any]]:
    """Yield ``(line number, "file:line", value)`` for every non-blank line."""
    with open_jsonl(path, what) as f:
        n = 0
        while True:
            n += 1
            where = f"{path}:{n}"
            try:
                raw = read_line(f, where)
            except OSError as exc:
                raise os_error(exc, path, f"read the {what}") from None
            if not raw:
                return
            if raw.isspace():
                continue
            yield n, where, parse_line(raw, where)


def dumps_line(obj: Any) -> str:
    """One JSONL line: compact-ish JSON, UTF-8 friendly, U+2028/U+2029 escaped, ``\\n``.

    Non-finite floats are refused (``ValueError``): they are not JSON."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    if "\u2028" in text or "\u2029" in text:
        text = _SEPARATORS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text + "\n"
