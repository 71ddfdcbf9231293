"""Text to IR: the cached Lark parser and the one Transformer to :mod:`specc.ir`.

This is the only module that imports lark. Syntax errors become
:class:`~specc.errors.Diagnostic` objects with the expected tokens in words;
setting-level problems (unknown setting, wrong value type, bad escape) are
collected as diagnostics while the rest of the file still parses.

>>> sf, diags = parse_source('policy "p" version "1"', "p.rbr")
>>> sf.header.name, diags
('p', [])
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import lark
from lark import Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from specc import ir
from specc.errors import Diagnostic, did_you_mean

__all__ = [
    "MAX_DEPTH",
    "MAX_SOURCE_BYTES",
    "build_tables",
    "grammar_text",
    "parse_source",
    "tokens",
    "write_tables",
]

MAX_DEPTH = 200
MAX_SOURCE_BYTES = 16 * 1024 * 1024


def grammar_text() -> str:
    """The grammar shipped in the wheel (``specc/grammar``), else the source tree's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammar" / "rbr.lark", here.parent / "grammar" / "rbr.lark"):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    # A zipped install: ask the import system.
    from importlib import resources

    return (resources.files("specc") / "grammar" / "rbr.lark").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- tables

#: How the parser is built; part of the tables' identity.
_PARSER_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "lexer": "contextual",
    "propagate_positions": True,
    "maybe_placeholders": True,
}
#: The LALR tables, generated from the grammar and shipped with the package (JSON:
#: data only, never executed or unpickled; never written at run time).
TABLES_PATH = Path(__file__).resolve().parent / "parser_tables.json"
TABLES_FORMAT = "specc.parser-tables/1"


def _grammar_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _encode(obj: Any) -> Any:
    """JSON for lark's serialized parser: tuples and int-keyed dicts are tagged."""
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _encode(v) for k, v in obj.items()}
        if not all(isinstance(k, int) and not isinstance(k, bool) for k in obj):
            raise TypeError("a table dict mixes key types")
        return {"__int_keys__": [[k, _encode(v)] for k, v in obj.items()]}
    if obj is None or isinstance(obj, (str, int, float)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in the parser tables")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "__tuple__" in obj:
            return tuple(obj["__tuple__"])
        if "__int_keys__" in obj:
            return {int(k): v for k, v in obj["__int_keys__"]}
    return obj


def build_tables() -> dict[str, Any]:
    """The tables of the current grammar, JSON-ready (see :func:`write_tables`)."""
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    text = grammar_text()
    data, memo = lark.Lark(text, **_PARSER_OPTIONS).memo_serialize([TerminalDef, Rule])
    return {
        "format": TABLES_FORMAT,
        "grammar_sha256": _grammar_sha256(text),
        "lark": lark.__version__,
        "options": _PARSER_OPTIONS,
        "data": _encode(data),
        "memo": _encode(memo),
    }


def write_tables(path: Path = TABLES_PATH) -> Path:
    """Regenerate the shipped tables after a grammar change:
    ``python -m specc.parser --write-tables`` (``tests/test_parser_tables.py`` fails
    until then; meanwhile the parser is built from the grammar, slower but right)."""
    text = json.dumps(build_tables(), separators=(",", ":"), sort_keys=True) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def _load_tables(grammar: str) -> lark.Lark | None:
    """The parser from the shipped tables, or None when they are missing, unreadable,
    or made for another grammar, lark version or options."""
    try:
        tables = json.loads(TABLES_PATH.read_text(encoding="utf-8"), object_hook=_decode)
    except (OSError, ValueError):
        return None
    if not (
        isinstance(tables, dict)
        and tables.get("format") == TABLES_FORMAT
        and tables.get("grammar_sha256") == _grammar_sha256(grammar)
        and tables.get("lark") == lark.__version__
        and tables.get("options") == _PARSER_OPTIONS
    ):
        return None
    try:
        # A dict, not a file: lark's loader then unpickles nothing.
        return lark.Lark.load({"data": tables["data"], "memo": tables["memo"]})
    except Exception:  # corrupt tables: build from the grammar instead
        return None


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    """The parser: from the shipped tables when they match the grammar, else built
    from the grammar (never cached on disk: no pickle in a shared temp dir)."""
    text = grammar_text()
    return _load_tables(text) or lark.Lark(text, **_PARSER_OPTIONS)


# --------------------------------------------------------------------------- words

_TOKEN_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "LONG_STRING": 'a """multi-line string"""',
    "SIGNED_NUMBER": "a number",
    "INT": "a whole number",
    "ANSWER": "'yes' or 'no'",
    "BOOL": "'true' or 'false'",
    "CMP": "a comparison (<, <=, >, >=, ==)",
    "LENGTH_UNIT": "'chars' or 'words'",
    "PERCENT": "'%'",
    "$END": "the end of the file",
}


@lru_cache(maxsize=1)
def _literal_words() -> dict[str, str]:
    words = dict(_TOKEN_WORDS)
    for term in _parser().terminals:
        if term.name in words:
            continue
        if term.pattern.type == "str":
            words[term.name] = f"'{term.pattern.value}'"
        elif term.name.startswith("_") and not term.name.startswith("__"):
            words[term.name] = f"'{term.name[1:].lower()}'"  # a keyword terminal
    return words


def _describe(names: set[str] | frozenset[str]) -> str:
    words = _literal_words()
    described = sorted({words.get(n, n.lower()) for n in names if not n.startswith("__")})
    if not described:
        return "something else"
    if len(described) > 8:
        return ", ".join(described[:8]) + ", ..."
    if len(described) == 1:
        return described[0]
    return ", ".join(described[:-1]) + " or " + described[-1]


# --------------------------------------------------------------------------- spans


def _span_meta(file: str, meta: Any) -> ir.Span:
    if getattr(meta, "empty", True):
        return ir.Span.unknown(file)
    return ir.Span.model_construct(
        file=file,
        line=meta.line,
        col=meta.column,
        end_line=meta.end_line,
        end_col=meta.end_column,
        start=meta.start_pos,
        end=meta.end_pos,
    )


def _span_tok(file: str, tok: Token) -> ir.Span:
    return ir.Span.model_construct(
        file=file,
        line=tok.line or 1,
        col=tok.column or 1,
        end_line=tok.end_line or tok.line or 1,
        end_col=tok.end_column or tok.column or 1,
        start=tok.start_pos or 0,
        end=tok.end_pos or 0,
    )


def _body_span(tok: Token, span: ir.Span) -> ir.Span:
    """Where a string's text begins: after its quotes, or on the next line for a
    long string that starts with a line break (that line break is not part of it)."""
    if tok.type == "LONG_STRING":
        if tok.value[3:4] in ("\n", "\r"):
            return span.model_copy(update={"line": span.line + 1, "col": 1})
        return span.model_copy(update={"col": span.col + 3})
    return span.model_copy(update={"col": span.col + 1})


# --------------------------------------------------------------------------- strings

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'", "0": "\0"}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.S)


@dataclass(frozen=True)
class _Value:
    kind: str  # string | number | bool | name | list | file
    value: Any
    span: ir.Span
    body: ir.Span | None = None  # a string's text: where its first line begins


class _ToIR(Transformer[Token, Any]):
    """Lark tree -> IR. Problems that do not stop parsing go to ``self.diagnostics``."""

    def __init__(self, file: str):
        super().__init__(visit_tokens=False)
        self.file = file
        self.diagnostics: list[Diagnostic] = []

    # ------------------------------------------------------------ helpers
    def _error(self, code: str, message: str, span: ir.Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint))

    def _unescape(self, body: str, tok: Token, offset: int) -> str:
        def repl(m: re.Match[str]) -> str:
            esc = m.group(1)
            if esc[0] in "uU" and len(esc) > 1:
                code = int(esc[1:], 16)
                if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                    return chr(code)
            elif esc in _ESCAPES:
                return _ESCAPES[esc]
            line = (tok.line or 1) + body.count("\n", 0, m.start())
            last_nl = body.rfind("\n", 0, m.start())
            col = (tok.column or 1) + offset + m.start() if last_nl < 0 else m.start() - last_nl
            span = ir.Span.model_construct(
                file=self.file, line=line, col=col, end_line=line, end_col=col + len(m.group(0))
            )
            self._error(
                "E008",
                f"invalid escape sequence '{m.group(0)}'",
                span,
                "valid escapes are \\n \\t \\r \\\" \\\\ and \\uXXXX; write '\\\\' for a backslash",
            )
            return m.group(0)

        return _ESCAPE_RE.sub(repl, body)

    def _string(self, tok: Token) -> str:
        if tok.type == "LONG_STRING":
            body = tok.value[3:-3]
            if body.startswith("\r\n"):
                body = body[2:]
            elif body.startswith("\n"):
                body = body[1:]
            lines = body.split("\n")
            if len(lines) > 1 and not lines[-1].strip():
                lines = lines[:-1]
            body = textwrap.dedent("\n".join(lines))
            return self._unescape(body, tok, 3)
        return self._unescape(tok.value[1:-1], tok, 1)

    def _value(self, item: Any) -> _Value:
        if isinstance(item, _Value):
            return item
        if isinstance(item, Token) and item.type in ("STRING", "LONG_STRING"):
            span = _span_tok(self.file, item)
            return _Value("string", self._string(item), span, _body_span(item, span))
        raise TypeError(f"unexpected value {item!r}")  # pragma: no cover - grammar guarantees

    # ------------------------------------------------------------ values
    @v_args(meta=True)
    def number(self, meta: Any, children: list[Token]) -> _Value:
        text = children[0].value
        value: float | int = float(text) if any(c in text for c in ".eE") else int(text)
        span = _span_meta(self.file, meta)
        if not math.isfinite(value):
            self._error("E009", f"the number {text} is too large", span, "use a finite value")
            return _Value("invalid", 0, span)  # reported once; later checks skip it
        return _Value("number", value, span)

    @v_args(meta=True)
    def bool_value(self, meta: Any, children: list[Token]) -> _Value:
        return _Value("bool", children[0].value in ("true", "yes"), _span_meta(self.file, meta))

    @v_args(meta=True)
    def name_value(self, meta: Any, children: list[Token]) -> _Value:
        return _Value("name", children[0].value, _span_meta(self.file, meta))

    @v_args(meta=True)
    def file_value(self, meta: Any, children: list[Token]) -> _Value:
        return _Value("file", self._string(children[0]), _span_meta(self.file, meta))

    @v_args(meta=True)
    def list_(self, meta: Any, children: list[Any]) -> _Value:
        items = [self._value(c) for c in children if c is not None]
        return _Value("list", items, _span_meta(self.file, meta))

    # ------------------------------------------------------------ expressions
    @v_args(meta=True)
    def ref(self, meta: Any, children: list[Token]) -> ir.Expr:
        return ir.Ref.model_construct(
            span=_span_tok(self.file, children[0]), name=children[0].value
        )

    @v_args(meta=True)
    def const(self, meta: Any, children: list[Token]) -> ir.Expr:
        return ir.Const.model_construct(
            span=_span_tok(self.file, children[0]), value=children[0] == "true"
        )

    @v_args(meta=True)
    def not_(self, meta: Any, children: list[Any]) -> ir.Expr:
        return ir.Not.model_construct(span=_span_meta(self.file, meta), operand=children[0])

    @v_args(meta=True)
    def and_(self, meta: Any, children: list[Any]) -> ir.Expr:
        if len(children) == 1:
            return children[0]  # type: ignore[no-any-return]
        return ir.And.model_construct(span=_span_meta(self.file, meta), operands=tuple(children))

    @v_args(meta=True)
    def or_(self, meta: Any, children: list[Any]) -> ir.Expr:
        if len(children) == 1:
            return children[0]  # type: ignore[no-any-return]
        return ir.Or.model_construct(span=_span_meta(self.file, meta), operands=tuple(children))

    # ------------------------------------------------------------ settings
    @v_args(meta=True)
    def setting(self, meta: Any, children: list[Any]) -> tuple[Token, _Value, ir.Span]:
        return (children[0], self._value(children[1]), _span_meta(self.file, meta))

    grader_field = setting

    def _settings(
        self,
        block: str,
        entries: list[tuple[Token, _Value, ir.Span]],
        schema: dict[str, Callable[[_Value], Any]],
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, ir.Span] = {}
        for name_tok, value, _span in entries:
            name = name_tok.value
            span = _span_tok(self.file, name_tok)
            if name not in schema:
                hint = did_you_mean(name, schema) or f"{block} settings are: {', '.join(schema)}"
                self._error("E010", f"unknown setting '{name}' in {block}", span, hint)
                continue
            if name in seen:
                self._error(
                    "E102",
                    f"setting '{name}' is given twice in {block}",
                    span,
                    f"first given at line {seen[name].line}; keep one",
                )
                continue
            seen[name] = span
            if value.kind == "invalid":
                continue
            try:
                out[name] = schema[name](value)
            except _BadValue as exc:
                self._error("E009", f"invalid value for '{name}': {exc.args[0]}", value.span)
        return out

    # ------------------------------------------------------------ items
    @v_args(meta=True)
    def policy(self, meta: Any, children: list[Token]) -> ir.PolicyHeader:
        return ir.PolicyHeader.model_construct(
            span=_span_meta(self.file, meta),
            name=self._string(children[0]),
            version=self._string(children[1]),
        )

    @v_args(meta=True)
    def import_(self, meta: Any, children: list[Token]) -> ir.Import:
        return ir.Import.model_construct(
            span=_span_meta(self.file, meta), path=self._string(children[0])
        )

    @v_args(meta=True)
    def grader(self, meta: Any, children: list[Any]) -> ir.GraderSettings:
        data = self._settings("grader", children, _GRADER_SCHEMA)
        fields: dict[str, Any] = {}
        for key in ("yes", "no", "example_template"):
            if key in data:
                fields[key] = data[key]
        if "template" in data:
            kind, text = data["template"]
            fields["template_file" if kind == "file" else "template"] = text
        for name_tok, value, _span in children:
            # Where the template's line 1 is; for file(...) where the file is named (the
            # loader moves it into the file once it has read it).
            at = value.span if value.kind == "file" else value.body
            if name_tok.value in ("template", "example_template") and at is not None:
                fields.setdefault(f"{name_tok.value}_at", at)
        return ir.GraderSettings.model_construct(span=_span_meta(self.file, meta), **fields)

    @v_args(meta=True)
    def tier_decl(self, meta: Any, children: list[Any]) -> ir.TierDecl:
        margin = children[1]
        if margin is not None and margin.kind == "invalid":
            margin = None
        if margin is not None and margin.value < 0:
            self._error("E009", "a tier margin cannot be negative", margin.span)
        return ir.TierDecl.model_construct(
            span=_span_meta(self.file, meta),
            name=children[0].value,
            margin=float(margin.value) if margin is not None else None,
        )

    @v_args(meta=True)
    def tiers(self, meta: Any, children: list[ir.TierDecl]) -> ir.TiersBlock:
        return ir.TiersBlock.model_construct(
            span=_span_meta(self.file, meta), tiers=tuple(children)
        )

    @v_args(meta=True)
    def reward(self, meta: Any, children: list[Any]) -> ir.RewardSettings:
        data = self._settings("reward", children, _REWARD_SCHEMA)
        return ir.RewardSettings.model_construct(span=_span_meta(self.file, meta), **data)

    @v_args(meta=True)
    def example(self, meta: Any, children: list[Any]) -> ir.Example:
        span = _span_meta(self.file, meta)
        answer = children[0].value == "yes"
        messages, texts = self._texts(children[1:], "example", _EXAMPLE_KEYS)
        completion = texts.get("completion")
        because = texts.get("because")
        if completion is None:
            self._error(
                "E009",
                "this example has no 'completion'",
                span,
                'add the graded reply: completion "..."',
            )
            completion = ""
        return ir.Example.model_construct(
            span=span,
            answer=answer,
            conversation=tuple(messages),
            completion=completion,
            because=because,
        )

    def _texts(
        self, entries: list[tuple[Token, Token]], kind: str, items: tuple[str, ...]
    ) -> tuple[list[ir.Message], dict[str, str]]:
        """The conversation turns (in order) and the other text items (``completion``,
        ``because``) of an example or a test (``kind``, whose ``items`` the hints list);
        misplaced, repeated and unknown items are diagnostics."""
        article = "an" if kind[0] in "aeiou" else "a"
        messages: list[ir.Message] = []
        found: dict[str, str] = {}
        for name_tok, text_tok in entries:
            key = name_tok.value
            text = self._string(text_tok)
            kspan = _span_tok(self.file, name_tok)
            if key in ("system", "user", "assistant"):
                if "completion" in found:
                    self._error(
                        "E009",
                        f"'{key}' comes after 'completion' in {article} {kind}",
                        kspan,
                        "list the conversation turns first; 'completion' is the graded reply",
                    )
                messages.append(ir.Message.model_construct(span=kspan, role=key, content=text))
            elif key in items and key in ("completion", "because"):
                if key in found:
                    self._error("E102", f"{article} {kind} has one '{key}'", kspan)
                found[key] = text
            else:
                hint = did_you_mean(key, items) or f"{kind} items are: " + ", ".join(items)
                self._error("E010", f"unknown {kind} item '{key}'", kspan, hint)
        return messages, found

    def example_item(self, children: list[Token]) -> tuple[Token, Token]:
        return (children[0], children[1])

    @v_args(meta=True)
    def match_regex(self, meta: Any, children: list[Token]) -> ir.RegexExtractor:
        return ir.RegexExtractor.model_construct(
            span=_span_meta(self.file, meta), pattern=self._string(children[0])
        )

    @v_args(meta=True)
    def match_keywords(self, meta: Any, children: list[_Value]) -> ir.KeywordsExtractor:
        span = _span_meta(self.file, meta)
        words = []
        for v in children[0].value:
            if v.kind != "string" or not v.value.strip():
                self._error("E009", "keywords must be non-empty strings", v.span)
                continue
            words.append(v.value)
        if not words:
            self._error("E009", "'match keywords' needs at least one keyword", span)
        return ir.KeywordsExtractor.model_construct(span=span, words=tuple(words))

    @v_args(meta=True)
    def match_length(self, meta: Any, children: list[Token]) -> ir.LengthExtractor:
        return ir.LengthExtractor.model_construct(
            span=_span_meta(self.file, meta),
            op=children[0].value,
            value=int(children[1].value),
            unit=children[2].value,
        )

    @v_args(meta=True)
    def proposition(self, meta: Any, children: list[Any]) -> ir.Proposition:
        span = _span_meta(self.file, meta)
        name = children[0].value
        settings = []
        examples = []
        extractors: list[ir.Extractor] = []
        for c in children[1:]:
            if isinstance(c, ir.Example):
                examples.append(c)
            elif isinstance(c, (ir.RegexExtractor, ir.KeywordsExtractor, ir.LengthExtractor)):
                extractors.append(c)
            else:
                settings.append(c)
        data = self._settings(f"proposition '{name}'", settings, _PROPOSITION_SCHEMA)
        if len(extractors) > 1:
            self._error(
                "E102",
                f"proposition '{name}' has more than one 'match'",
                extractors[1].span,
                "combine them in one regular expression, or define two propositions",
            )
        return ir.Proposition.model_construct(
            span=span,
            name=name,
            description=data.get("description"),
            question=data.get("question"),
            examples=tuple(examples),
            extractor=extractors[0] if extractors else None,
        )

    @v_args(meta=True)
    def derived(self, meta: Any, children: list[Any]) -> ir.Derived:
        name = children[0].value
        settings = [c for c in children[2:] if c is not None]
        data = self._settings(f"derived '{name}'", settings, _DERIVED_SCHEMA)
        return ir.Derived.model_construct(
            span=_span_meta(self.file, meta),
            name=name,
            expr=children[1],
            description=data.get("description"),
        )

    @v_args(meta=True)
    def when_rule(self, meta: Any, children: list[Any]) -> ir.TierRule:
        return ir.TierRule.model_construct(
            span=_span_meta(self.file, meta), tier=children[0].value, when=children[1]
        )

    @v_args(meta=True)
    def otherwise_rule(self, meta: Any, children: list[Any]) -> ir.TierRule:
        return ir.TierRule.model_construct(
            span=_span_meta(self.file, meta), tier=children[0].value, when=None
        )

    @v_args(meta=True)
    def response_type(self, meta: Any, children: list[Any]) -> ir.ResponseType:
        span = _span_meta(self.file, meta)
        name = children[0].value
        display = self._string(children[1]) if children[1] is not None else None
        rules = tuple(c for c in children[2:] if isinstance(c, ir.TierRule))
        rewards = [c for c in children[2:] if isinstance(c, ir.RewardSettings)]
        for extra in rewards[1:]:
            self._error(
                "E102", f"response type '{name}' has more than one reward block", extra.span
            )
        return ir.ResponseType.model_construct(
            span=span,
            name=name,
            display=display,
            rules=rules,
            reward=rewards[0] if rewards else None,
        )

    @v_args(meta=True)
    def cost(self, meta: Any, children: list[Any]) -> tuple[str, Any]:
        return ("cost", children[0])

    @v_args(meta=True)
    def limit(self, meta: Any, children: list[Any]) -> tuple[str, Any]:
        value: _Value = children[0]
        percent = children[1] is not None
        limit = float(value.value) / (100.0 if percent else 1.0)
        if not 0.0 <= limit <= 1.0:
            self._error(
                "E009",
                f"a limit is a share of completions between 0 and 1 (or 0% and 100%), "
                f"not {value.value}{'%' if percent else ''}",
                value.span,
            )
        return ("limit", (limit, value.span))

    @v_args(meta=True)
    def constraint(self, meta: Any, children: list[Any]) -> ir.Constraint:
        span = _span_meta(self.file, meta)
        name = children[0].value
        cost: ir.Expr | None = None
        limit: float | None = None
        settings = []
        for c in children[1:]:
            if isinstance(c, tuple) and c[0] in ("cost", "limit"):
                if (cost if c[0] == "cost" else limit) is not None:
                    where = c[1].span if c[0] == "cost" else c[1][1]
                    self._error("E102", f"constraint '{name}' has a second {c[0]}", where)
                    continue
                if c[0] == "cost":
                    cost = c[1]
                else:
                    limit = c[1][0]
            else:
                settings.append(c)
        data = self._settings(f"constraint '{name}'", settings, _CONSTRAINT_SCHEMA)
        if cost is None:
            self._error(
                "E009", f"constraint '{name}' has no cost", span, "add: cost = <expression>"
            )
            cost = ir.Const.model_construct(span=span, value=False)
        if limit is None:
            self._error("E009", f"constraint '{name}' has no limit", span, "add: limit = 2%")
            limit = 0.0
        return ir.Constraint.model_construct(
            span=span,
            name=name,
            cost=cost,
            limit=limit,
            description=data.get("description"),
            applies_to=data.get("applies_to", ()),
        )

    # ------------------------------------------------------------ tests
    def _answers(
        self, where: str, entries: list[tuple[Token, _Value, ir.Span]]
    ) -> tuple[ir.Answer, ...]:
        out: list[ir.Answer] = []
        seen: dict[str, ir.Span] = {}
        for name_tok, value, span in entries:
            name = name_tok.value
            nspan = _span_tok(self.file, name_tok)
            if name in seen:
                self._error(
                    "E102",
                    f"'{name}' is given twice in {where}",
                    nspan,
                    f"first given at line {seen[name].line}; keep one",
                )
                continue
            seen[name] = nspan
            if value.kind == "invalid":
                continue
            if value.kind != "bool":
                hint = "write true or false"
                if value.kind == "number":
                    hint = (
                        "tests pin the rules, which see each answer as true or false; "
                        "write true or false (a grader's probability is tested with a "
                        "completion test)"
                    )
                self._error(
                    "E009",
                    f"invalid value for '{name}': expected true or false, "
                    f"found {_kind_words(value)}",
                    value.span,
                    hint,
                )
                continue
            out.append(ir.Answer.model_construct(span=span, name=name, value=bool(value.value)))
        return tuple(out)

    @v_args(meta=True)
    def test_types(self, meta: Any, children: list[Any]) -> tuple[str, Any]:
        item = children[0]
        if isinstance(item, Token):
            return (
                "types",
                (ir.Ref.model_construct(span=_span_tok(self.file, item), name=item.value),),
            )
        try:
            return ("types", _as_refs(item))
        except _BadValue as exc:
            self._error("E009", f"invalid response types: {exc.args[0]}", item.span)
            return ("types", ())

    @v_args(meta=True)
    def given(self, meta: Any, children: list[Any]) -> tuple[str, Any]:
        span = _span_meta(self.file, meta)
        return ("given", (self._answers("a test's given block", children), span))

    @v_args(meta=True)
    def expect_tier(self, meta: Any, children: list[Token]) -> ir.ExpectTier:
        return ir.ExpectTier.model_construct(
            span=_span_meta(self.file, meta), tier=children[0].value, negated=False
        )

    @v_args(meta=True)
    def expect_not_tier(self, meta: Any, children: list[Token]) -> ir.ExpectTier:
        return ir.ExpectTier.model_construct(
            span=_span_meta(self.file, meta), tier=children[0].value, negated=True
        )

    @v_args(meta=True)
    def expect_answers(self, meta: Any, children: list[Any]) -> ir.ExpectAnswers:
        return ir.ExpectAnswers.model_construct(
            span=_span_meta(self.file, meta),
            answers=self._answers("a test's expect block", children),
        )

    def test_text(self, children: list[Token]) -> tuple[str, Any]:
        return ("text", (children[0], children[1]))

    @v_args(meta=True)
    def test(self, meta: Any, children: list[Any]) -> ir.SpecTest:
        span = _span_meta(self.file, meta)
        name = self._string(children[0])
        types: tuple[ir.Ref, ...] = ()
        types_seen = False
        given: tuple[ir.Answer, ...] | None = None
        texts: list[tuple[Token, Token]] = []
        expects: list[ir.ExpectTier | ir.ExpectAnswers] = []
        for c in children[1:]:
            if isinstance(c, (ir.ExpectTier, ir.ExpectAnswers)):
                expects.append(c)
                continue
            kind, value = c
            if kind == "types":
                if types_seen:
                    self._error(
                        "E102",
                        f'test "{name}" names its response types twice',
                        value[0].span if value else span,
                        "list them once: response_type [a, b]",
                    )
                    continue
                types_seen = True
                types = value
            elif kind == "given":
                answers, gspan = value
                if given is not None:
                    self._error(
                        "E102",
                        f'test "{name}" has more than one given block',
                        gspan,
                        "merge them into one",
                    )
                    continue
                given = answers
            else:
                texts.append(value)
        messages, found = self._texts(texts, "test", _TEST_KEYS)
        return ir.SpecTest.model_construct(
            span=span,
            name=name,
            response_types=types,
            given=given,
            conversation=tuple(messages),
            completion=found.get("completion"),
            expects=tuple(expects),
        )

    @v_args(meta=True)
    def start(self, meta: Any, children: list[Any]) -> ir.SourceFile:
        return ir.SourceFile.model_construct(
            span=_span_meta(self.file, meta), items=tuple(children)
        )


# --------------------------------------------------------------------------- schemas


class _BadValue(Exception):
    pass


def _as_string(v: _Value) -> str:
    if v.kind != "string":
        raise _BadValue(f"expected a string, found {_kind_words(v)}")
    return str(v.value)


def _as_words(v: _Value) -> tuple[str, ...]:
    items = v.value if v.kind == "list" else [v]
    out = tuple(_as_string(i) for i in items)
    if not out or any(not w.strip() for w in out):
        raise _BadValue("expected one or more non-empty answer words")
    return out


def _as_template(v: _Value) -> tuple[str, str]:
    if v.kind == "file":
        return ("file", str(v.value))
    return ("inline", _as_string(v))


def _as_number(minimum: float, strict: bool = False) -> Callable[[_Value], float]:
    def convert(v: _Value) -> float:
        if v.kind != "number":
            raise _BadValue(f"expected a number, found {_kind_words(v)}")
        x = float(v.value)
        if x < minimum or (strict and x == minimum):
            raise _BadValue(f"must be {'greater than' if strict else 'at least'} {minimum:g}")
        return x

    return convert


def _as_positive_int(v: _Value) -> int:
    if v.kind != "number" or not isinstance(v.value, int) or v.value <= 0:
        raise _BadValue(f"expected a whole number above 0, found {_kind_words(v)}")
    return int(v.value)


def _as_bool(v: _Value) -> bool:
    if v.kind != "bool":
        raise _BadValue(f"expected true or false, found {_kind_words(v)}")
    return bool(v.value)


def _as_names(v: _Value) -> list[_Value]:
    items = v.value if v.kind == "list" else [v]
    for i in items:
        if i.kind != "name":
            raise _BadValue(f"expected a list of names, found {_kind_words(i)}")
    return list(items)


def _as_refs(v: _Value) -> tuple[ir.Ref, ...]:
    return tuple(ir.Ref.model_construct(span=i.span, name=i.value) for i in _as_names(v))


_FEATURE_KINDS = ("propositions", "derived", "classes")


def _as_features(v: _Value) -> tuple[str, ...]:
    out = []
    for i in _as_names(v):
        if i.value not in _FEATURE_KINDS:
            hint = did_you_mean(i.value, _FEATURE_KINDS)
            raise _BadValue(
                f"unknown feature kind '{i.value}' (use {', '.join(_FEATURE_KINDS)})"
                + (f"; {hint}" if hint else "")
            )
        out.append(i.value)
    return tuple(dict.fromkeys(out))


def _as_optimizer(v: _Value) -> str:
    name = v.value if v.kind in ("string", "name") else None
    if name not in ("adamw", "lbfgs"):
        raise _BadValue('expected "adamw" or "lbfgs"')
    return str(name)


def _kind_words(v: _Value) -> str:
    return {
        "string": "a string",
        "number": "a number",
        "bool": "true/false",
        "name": f"the name '{v.value}'",
        "list": "a list",
        "file": "file(...)",
    }.get(v.kind, v.kind)


_GRADER_SCHEMA: dict[str, Callable[[_Value], Any]] = {
    "yes": _as_words,
    "no": _as_words,
    "template": _as_template,
    "example_template": _as_string,
}
_REWARD_SCHEMA: dict[str, Callable[[_Value], Any]] = {
    "features": _as_features,
    "extra": _as_refs,
    "margin": _as_number(0.0),
    "weight_decay": _as_number(0.0),
    "steps": _as_positive_int,
    "lr": _as_number(0.0, strict=True),
    "optimizer": _as_optimizer,
    "base_reward": _as_bool,
}
_PROPOSITION_SCHEMA: dict[str, Callable[[_Value], Any]] = {
    "description": _as_string,
    "question": _as_string,
}
_DERIVED_SCHEMA: dict[str, Callable[[_Value], Any]] = {"description": _as_string}
_CONSTRAINT_SCHEMA: dict[str, Callable[[_Value], Any]] = {
    "description": _as_string,
    "applies_to": _as_refs,
}
_EXAMPLE_KEYS = ("system", "user", "assistant", "completion", "because")
_TEST_KEYS = ("response_type", "given", "expect", "system", "user", "assistant", "completion")


# --------------------------------------------------------------------------- entry point


def _depth_exceeded(tree: Tree[Token]) -> Tree[Token] | None:
    """Return a node nested deeper than MAX_DEPTH (iteratively), or None."""
    stack: list[tuple[Tree[Token], int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return node
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))
    return None


def _syntax_diagnostic(exc: UnexpectedInput, file: str, text: str) -> Diagnostic:
    line = getattr(exc, "line", 1) or 1
    col = getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        span = ir.Span.model_construct(
            file=file, line=line, col=col, end_line=line, end_col=col + 1
        )
        if char == '"':
            return Diagnostic(
                "E002",
                "unterminated string",
                span,
                'close the string with " on the same line, or use """...""" for several lines',
            )
        if not char.isprintable() or char == "\ufffd":
            return Diagnostic(
                "E003",
                f"invalid character {char!r}",
                span,
                "is this a text file? .rbr files are UTF-8 text",
            )
        expected = _describe(exc.allowed or set())
        return Diagnostic("E001", f"unexpected character {char!r}", span, f"expected {expected}")
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            lines = text.splitlines() or [""]
            line, col = len(lines), len(lines[-1]) + 1
            span = ir.Span.model_construct(
                file=file, line=line, col=col, end_line=line, end_col=col + 1
            )
            return Diagnostic(
                "E001",
                "unexpected end of file",
                span,
                f"expected {_describe(exc.expected)}; is a '}}' or ')' missing?",
            )
        span = _span_tok(file, tok)
        found = f"'{tok.value}'" if len(tok.value) <= 40 else f"'{tok.value[:40]}...'"
        hint = f"expected {_describe(exc.expected)}"
        if tok.type == "NAME" and tok.value in _KEYWORDS_USED_AS_NAMES:
            hint += f"; '{tok.value}' is a keyword here"
        return Diagnostic("E001", f"unexpected {found}", span, hint)
    if isinstance(exc, UnexpectedEOF):
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        span = ir.Span.model_construct(
            file=file, line=line, col=col, end_line=line, end_col=col + 1
        )
        return Diagnostic("E001", "unexpected end of file", span, None)
    span = ir.Span.model_construct(file=file, line=line, col=col, end_line=line, end_col=col + 1)
    return Diagnostic("E001", "syntax error", span)


_KEYWORDS_USED_AS_NAMES = frozenset(
    {
        *("policy", "import", "grader", "tiers", "reward", "proposition", "derived"),
        *("constraint", "test", "given", "expect"),
    }
)


def parse_source(text: str, file: str = "<string>") -> tuple[ir.SourceFile, list[Diagnostic]]:
    """Parse one file's text. On a syntax error the SourceFile is empty and the
    diagnostics say why; otherwise diagnostics hold value-level problems only."""
    empty = ir.SourceFile.model_construct(span=ir.Span.unknown(file), items=())
    comments: list[Token] = []
    parser = _parser()
    try:
        tree = _parse(parser, text, comments)
    except UnexpectedInput as exc:
        return empty, [_syntax_diagnostic(exc, file, text)]
    deep = _depth_exceeded(tree)
    if deep is not None:
        span = _span_meta(file, deep.meta)
        return empty, [
            Diagnostic(
                "E007",
                f"expression nested more than {MAX_DEPTH} levels deep",
                span,
                "split it into derived propositions",
            )
        ]
    transformer = _ToIR(file)
    source = transformer.transform(tree)
    kept = tuple(
        ir.Comment.model_construct(span=_span_tok(file, c), text=c.value.rstrip()) for c in comments
    )
    return source.model_copy(update={"comments": kept}), transformer.diagnostics


def tokens(text: str) -> list[tuple[str, str, int, int]]:
    """``(type, value, start, end)`` of each token, as the contextual lexer splits the
    text while parsing it (comments excluded). Raises lark's errors on bad input, so
    call it on text that :func:`parse_source` accepted."""
    return [
        (tok.type, tok.value, tok.start_pos or 0, tok.end_pos or 0)
        for tok in _parser().parse_interactive(text).iter_parse()
    ]


def _parse(parser: lark.Lark, text: str, comments: list[Token]) -> Tree[Token]:
    # The contextual lexer's callbacks are set at construction; comments are
    # recovered by a cheap scan of the token stream positions instead.
    tree = parser.parse(text)
    comments.extend(_scan_comments(text))
    return tree


_COMMENT_SCAN = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*', re.S)


def _scan_comments(text: str) -> list[Token]:
    """Find ``#`` comments outside strings, with their positions."""
    out: list[Token] = []
    line_starts = [0]
    for m in re.finditer("\n", text):
        line_starts.append(m.end())
    for m in _COMMENT_SCAN.finditer(text):
        if not m.group(0).startswith("#"):
            continue
        pos = m.start()
        line = bisect.bisect_right(line_starts, pos)
        col = pos - line_starts[line - 1] + 1
        out.append(
            Token(
                "COMMENT",
                m.group(0),
                start_pos=pos,
                line=line,
                column=col,
                end_line=line,
                end_column=col + len(m.group(0)),
                end_pos=m.end(),
            )
        )
    return out


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--write-tables"]:
        sys.exit("usage: python -m specc.parser --write-tables")
    print(f"wrote {write_tables()}")
