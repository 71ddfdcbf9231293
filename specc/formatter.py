"""``specc fmt``: one canonical layout for ``.rbr`` files, comments kept.

The formatter parses a file, re-emits every item from the IR in the author's order
and puts each comment back next to the item or setting it was written beside (see
docs/formatting.md for the rules). The output is checked before it is returned:
parsing it must give the same IR (spans aside) and the same comments in the same
order, so ``specc fmt`` can never change what a policy means.

>>> print(format_source('policy "p" version "1"  derived x = a and (b or not c)'), end="")
policy "p" version "1"
derived x = a and (b or not c)
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import math
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from specc import ir
from specc.errors import Diagnostic, SpecError, UsageError
from specc.parser import MAX_SOURCE_BYTES, parse_source

__all__ = [
    "WIDTH",
    "FormatResult",
    "format_expr",
    "format_file",
    "format_source",
    "format_string",
]

#: Lines longer than this are broken where the layout allows it (expressions, lists).
WIDTH = 100
_INDENT = "  "
_CONTINUATION = 4  # extra columns for the continuation lines of a broken expression


# --------------------------------------------------------------------------- literals

_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def _escape_char(ch: str, quote: bool) -> str:
    if ch in _SHORT_ESCAPES and (quote or ch != '"'):
        return _SHORT_ESCAPES[ch]
    if ch.isprintable() or "\ud800" <= ch <= "\udfff":  # a lone surrogate has no escape
        return ch
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _quote(value: str) -> str:
    """``value`` as a one-line ``"..."`` literal with the fewest escapes."""
    return '"' + "".join(_escape_char(ch, True) for ch in value) + '"'


_QUOTE_RUN = re.compile('"{3,}')


def _block_lines(value: str) -> list[str] | None:
    """The content lines of a ``\"\"\"`` block that parses back to ``value``, or None
    when no block can (a line of only spaces, every line indented, trailing spaces)."""
    if "\n" not in value.rstrip("\n"):
        return None
    lines = []
    for raw in value.split("\n"):
        line = "".join(_escape_char(ch, False) for ch in raw)
        # a run of three quotes would end the block: escape all but the last two
        line = _QUOTE_RUN.sub(lambda m: '\\"' * (len(m.group(0)) - 2) + '""', line)
        if line != line.rstrip(" ") or (line and not line.strip(" ")):
            return None  # trailing spaces vanish in editors; blank lines lose their spaces
        lines.append(line)
    if not any(line and not line.startswith(" ") for line in lines):
        return None  # dedent would also remove the common indentation of the text
    return lines


def format_string(value: str, prefix: str = "", indent: str = "", block: bool = True) -> list[str]:
    """Lines for ``prefix`` followed by the string ``value``.

    Text of several lines becomes a ``\"\"\"`` block whose lines sit one level deeper
    than ``indent`` (when ``block`` and the block reproduces the value exactly);
    everything else is one ``"..."`` literal.

    >>> format_string("one\\ntwo", "question = ", "  ")
    ['question = \"\"\"', '    one', '    two', '  \"\"\"']
    >>> format_string('say "hi"\\n')
    ['"say \\\\"hi\\\\"\\\\n"']
    """
    lines = _block_lines(value) if block else None
    if lines is None:
        return [prefix + _quote(value)]
    inner = indent + _INDENT
    return [prefix + '"""', *(inner + line if line else "" for line in lines), indent + '"""']


def _number(value: float | int) -> str:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "1e999" if value > 0 else "-1e999"
    return repr(value)


def _limit(value: float) -> str:
    """A constraint limit: a percentage with at most two decimals (``2%``, ``0.25%``)
    when that parses back to exactly ``value``, else the decimal."""
    percent = value * 100.0
    if math.isfinite(percent):
        for digits in range(3):
            text = f"{percent:.{digits}f}"
            if float(text) / 100.0 == value:
                return text + "%"
    return _number(value)


def _list(items: Sequence[str], prefix: str, indent: str, suffix: str = "") -> list[str]:
    """``prefix[a, b]suffix`` on one line when it fits, else one item a line."""
    flat = f"{prefix}[{', '.join(items)}]{suffix}"
    if len(flat) <= WIDTH or not items:
        return [flat]
    inner = indent + _INDENT
    return [prefix + "[", *(f"{inner}{item}," for item in items), indent + "]" + suffix]


# --------------------------------------------------------------------------- expressions


def _flat(expr: ir.Expr) -> str:
    """One-line text with the fewest parentheses that parse back to the same tree.

    ``not`` binds tighter than ``and``, which binds tighter than ``or``; an ``and``
    or ``or`` nested in another one is always parenthesised because the parser
    keeps ``a and (b and c)`` as a nested node.
    """
    if isinstance(expr, ir.Ref):
        return expr.name
    if isinstance(expr, ir.Const):
        return "true" if expr.value else "false"
    if isinstance(expr, ir.Not):
        return "not " + _operand(expr.operand, expr)
    sep = " and " if isinstance(expr, ir.And) else " or "
    parts = []
    for operand in expr.operands:
        parts.append(_operand(operand, expr))
    return sep.join(parts)


def _needs_parens(operand: ir.Expr, parent: ir.Expr) -> bool:
    """An ``or`` needs them inside ``and``/``not``/``or``; an ``and`` inside ``and``/``not``."""
    if isinstance(operand, ir.Or):
        return True
    return isinstance(operand, ir.And) and not isinstance(parent, ir.Or)


def _operand(expr: ir.Expr, parent: ir.Expr) -> str:
    text = _flat(expr)
    return f"({text})" if _needs_parens(expr, parent) else text


def format_expr(expr: ir.Expr, column: int = 0, indent: int = 0, suffix: str = "") -> list[str]:
    """Lines for ``expr`` starting at ``column``, followed by ``suffix``.

    An expression that does not fit in :data:`WIDTH` columns is broken after each
    ``and``/``or`` of its outermost operator, one operand a line, continuation lines
    at ``indent + 4`` columns; a parenthesised operand that still does not fit is
    broken the same way, four columns deeper. The first line has no indentation.

    >>> s = ir.Span.unknown()
    >>> e = ir.And(span=s, operands=(ir.Ref(span=s, name="a"), ir.Not(span=s,
    ...     operand=ir.Or(span=s, operands=(ir.Ref(span=s, name="b"), ir.Ref(span=s, name="c"))))))
    >>> format_expr(e)
    ['a and not (b or c)']
    >>> format_expr(e, column=95)
    ['a and', '    not (b or c)']
    """
    return _expr_lines(expr, column, indent + _CONTINUATION, suffix)


def _expr_lines(expr: ir.Expr, column: int, indent: int, suffix: str) -> list[str]:
    flat = _flat(expr)
    if column + len(flat) + len(suffix) <= WIDTH:
        return [flat + suffix]
    if not isinstance(expr, (ir.And, ir.Or)):
        return _operand_lines(expr, None, column, indent, suffix)
    op = " and" if isinstance(expr, ir.And) else " or"
    lines: list[str] = []
    last = len(expr.operands) - 1
    for i, operand in enumerate(expr.operands):
        sub = _operand_lines(
            operand, expr, column if i == 0 else indent, indent, suffix if i == last else op
        )
        if i == 0:
            lines.extend(sub)
        else:
            lines.append(" " * indent + sub[0])
            lines.extend(sub[1:])
    return lines


def _operand_lines(
    expr: ir.Expr, parent: ir.Expr | None, column: int, indent: int, suffix: str
) -> list[str]:
    """``expr`` as an operand of ``parent`` (None: at the top), parenthesised when the
    precedence needs it, and also when it is an ``and`` inside an ``or`` that has to
    be broken itself (so that the nesting shows)."""
    prefix = ""
    core = expr
    while isinstance(core, ir.Not):
        prefix += "not "
        parent = core
        core = core.operand
    flat = _flat(core)
    if not isinstance(core, (ir.And, ir.Or)):
        return [prefix + flat + suffix]
    fits = column + len(prefix) + len(flat) + len(suffix) <= WIDTH
    if fits and parent is not None and not _needs_parens(core, parent):
        return [prefix + flat + suffix]
    prefix += "("
    inner = _expr_lines(core, column + len(prefix), indent + _CONTINUATION, ")" + suffix)
    return [prefix + inner[0], *inner[1:]]


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Tok:
    kind: str  # comment | string | number | name | op
    text: str
    start: int
    end: int
    type: str = "COMMENT"  # the grammar's terminal (NAME, _EXPECT, ...)


def _kind(text: str) -> str:
    if text[0] == '"':
        return "string"
    if text[0].isalpha() or text[0] == "_":
        return "name"  # keywords included
    if text[0].isdigit() or (text[0] in "+-." and len(text) > 1):
        return "number"
    return "op"


def _tokenize(text: str, comments: Sequence[ir.Comment]) -> list[_Tok]:
    """The tokens of text that parsed, as the grammar's contextual lexer split them,
    with the comments in place.

    The lexer's split depends on the parser state (``otherwisereward`` is read as
    ``otherwise`` ``reward`` where a name cannot follow), so the tokens come from
    the parser itself rather than from a second, context-free tokenizer.
    """
    from specc.parser import tokens

    out = [
        _Tok(_kind(value), value, start, end, type_) for type_, value, start, end in tokens(text)
    ]
    out.extend(_Tok("comment", c.text, c.span.start, c.span.end) for c in comments)
    out.sort(key=lambda t: t.start)
    return out


# --------------------------------------------------------------------------- layout tree


@dataclass(eq=False)
class _Block:
    """The inside of ``{ ... }``: entries, and comments with no entry to go to."""

    inner_start: int  # just after '{'
    inner_end: int  # at '}'
    open_line: int
    indent: str  # of the entries
    children: list[_Node]
    open_comment: ir.Comment | None = None
    end_comments: list[ir.Comment] = field(default_factory=list)

    def empty(self) -> bool:
        return not self.children and self.open_comment is None and not self.end_comments


@dataclass(eq=False)
class _Node:
    """A top-level item or one entry of a block, with the comments that go with it."""

    start: int
    end: int
    indent: str
    head: Callable[[str], list[str]]  # brace suffix ('', ' {', ' {}') -> lines
    block: _Block | None = None
    optional_block: bool = False  # `derived x = a {}`: an empty block is left out
    leading: list[ir.Comment] = field(default_factory=list)
    hoisted: list[ir.Comment] = field(default_factory=list)  # from inside the entry
    trailing: ir.Comment | None = None
    _lines: list[str] | None = None

    def lines(self) -> list[str]:
        if self._lines is None:
            if self.block is None:
                self._lines = self.head("")
            elif self.block.empty():
                self._lines = self.head("" if self.optional_block else " {}")
            else:
                self._lines = self.head(" {")
        return self._lines

    def one_line(self) -> bool:
        return (self.block is None or self.block.empty()) and len(self.lines()) == 1


class _FormatterBug(RuntimeError):
    """The layout lost or changed something; nothing is written (an internal error)."""


class _Layout:
    """Builds the layout tree of one parsed file, places its comments, emits text."""

    def __init__(self, text: str, source: ir.SourceFile, file: str) -> None:
        self.text = text
        self.file = file
        self.toks = _tokenize(text, source.comments)
        self.by_start = {t.start: i for i, t in enumerate(self.toks)}
        self.by_end = {t.end: i for i, t in enumerate(self.toks)}
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.items = [self.item(item) for item in source.items]
        self.end_comments: list[ir.Comment] = []
        self.trailing: dict[int, str] = {}  # output line -> its trailing comment
        self.starts: dict[int, list[int]] = {}  # id(children) -> their start offsets
        for comment in source.comments:
            self.place(comment, self.items, None)

    # ------------------------------------------------------------ positions
    def line(self, offset: int) -> int:
        return bisect.bisect_left(self.newlines, offset)

    def blank_between(self, start: int, end: int) -> bool:
        return self.text.count("\n", start, end) >= 2

    def _index(self, table: dict[int, int], offset: int) -> int:
        try:
            return table[offset]
        except KeyError:
            raise _FormatterBug(f"no token at offset {offset}") from None

    def entries(
        self, span: ir.Span, is_start: Callable[[int], bool]
    ) -> tuple[int, int, list[tuple[int, int]]]:
        """The ``{`` and ``}`` of the block in ``span`` and the token ranges of its
        entries (each starts at a depth-0 token for which ``is_start`` holds)."""
        first = self._index(self.by_start, span.start)
        close = self._index(self.by_end, span.end)
        open_ = next(i for i in range(first, close) if self._is(i, "{"))
        ranges: list[tuple[int, int]] = []
        depth = 0
        begin = last = -1
        for i in range(open_ + 1, close):
            tok = self.toks[i]
            if tok.kind == "comment":
                continue
            if depth == 0 and is_start(i):
                if begin >= 0:
                    ranges.append((begin, last))
                begin = i
            elif begin < 0:
                raise _FormatterBug(f"token {tok.text!r} at offset {tok.start} is in no entry")
            if tok.kind == "op" and tok.text in "{[(":
                depth += 1
            elif tok.kind == "op" and tok.text in "}])":
                depth -= 1
            last = i
        if begin >= 0:
            ranges.append((begin, last))
        return open_, close, ranges

    def once(self, i: int, seen: set[str], where: str) -> str:
        """The key at token ``i``; a key given twice is an error here because the
        parser keeps only one of the values and formatting would lose the other."""
        tok = self.toks[i]
        if tok.text in seen:
            line = self.line(tok.start)
            col = tok.start - (self.newlines[line - 1] + 1 if line else 0) + 1
            span = ir.Span(
                file=self.file,
                line=line + 1,
                col=col,
                end_line=line + 1,
                end_col=col + len(tok.text),
                start=tok.start,
                end=tok.end,
            )
            message = f"'{tok.text}' is given twice in {where}"
            raise SpecError([Diagnostic("E102", message, span, "keep one")])
        seen.add(tok.text)
        return tok.text

    def next_is(self, i: int, text: str) -> bool:
        for j in range(i + 1, len(self.toks)):
            tok = self.toks[j]
            if tok.kind != "comment":
                return tok.kind == "op" and tok.text == text
        return False

    def next_kind(self, i: int) -> str | None:
        """The kind of the first token after ``i`` that is not a comment."""
        for j in range(i + 1, len(self.toks)):
            if self.toks[j].kind != "comment":
                return self.toks[j].kind
        return None

    def _is(self, i: int, op: str) -> bool:
        return self.toks[i].kind == "op" and self.toks[i].text == op

    def setting_start(self, i: int) -> bool:
        return self.toks[i].kind == "name" and self.next_is(i, "=")

    def block(
        self,
        span: ir.Span,
        depth: int,
        head: Callable[[str], list[str]],
        is_start: Callable[[int], bool],
        child: Callable[[int, int, str], _Node],
        optional: bool = False,
    ) -> _Node:
        open_, close, ranges = self.entries(span, is_start)
        indent = _INDENT * (depth + 1)
        children = [child(a, b, indent) for a, b in ranges]
        block = _Block(
            inner_start=self.toks[open_].end,
            inner_end=self.toks[close].start,
            open_line=self.line(self.toks[open_].start),
            indent=indent,
            children=children,
        )
        return _Node(span.start, span.end, _INDENT * depth, head, block, optional)

    def leaf(self, a: int, b: int, indent: str, head: Callable[[str], list[str]]) -> _Node:
        return _Node(self.toks[a].start, self.toks[b].end, indent, head)

    # ------------------------------------------------------------ items
    def item(self, item: ir.Item) -> _Node:
        if isinstance(item, ir.PolicyHeader):
            text = f"policy {_quote(item.name)} version {_quote(item.version)}"
            return _Node(item.span.start, item.span.end, "", lambda s: [text])
        if isinstance(item, ir.Import):
            text = f"import {_quote(item.path)}"
            return _Node(item.span.start, item.span.end, "", lambda s: [text])
        if isinstance(item, ir.GraderSettings):
            return self.settings(item.span, 0, "grader", self.grader_value(item))
        if isinstance(item, ir.TiersBlock):
            return self.tiers(item, 0)
        if isinstance(item, ir.RewardSettings):
            return self.reward(item, 0)
        if isinstance(item, ir.Proposition):
            return self.proposition(item)
        if isinstance(item, ir.Derived):
            return self.derived(item)
        if isinstance(item, ir.ResponseType):
            return self.response_type(item)
        if isinstance(item, ir.SpecTest):
            return self.test(item)
        return self.constraint(item)

    def settings(
        self,
        span: ir.Span,
        depth: int,
        title: str,
        value: Callable[[str, str], list[str]],
    ) -> _Node:
        """A block of ``name = value`` settings; ``value(key, indent)`` renders one."""

        seen: set[str] = set()
        kind, _, name = title.partition(" ")
        where = f"{kind} '{name}'" if name else title

        def child(a: int, b: int, indent: str) -> _Node:
            key = self.once(a, seen, where)
            return self.leaf(a, b, indent, lambda s: value(key, indent))

        head_text = _INDENT * depth + title
        return self.block(span, depth, lambda s: [head_text + s], self.setting_start, child)

    def grader_value(self, g: ir.GraderSettings) -> Callable[[str, str], list[str]]:
        def value(key: str, indent: str) -> list[str]:
            prefix = f"{indent}{key} = "
            if key in ("yes", "no"):
                return _list([_quote(w) for w in getattr(g, key)], prefix, indent)
            if key == "template" and g.template_file is not None:
                return [f"{prefix}file({_quote(g.template_file)})"]
            if key == "template" and g.template is not None:
                return format_string(g.template, prefix, indent)
            if key == "example_template" and g.example_template is not None:
                return format_string(g.example_template, prefix, indent)
            raise _FormatterBug(f"grader setting {key!r} is not in the IR")

        return value

    def reward(self, r: ir.RewardSettings, depth: int) -> _Node:
        def value(key: str, indent: str) -> list[str]:
            prefix = f"{indent}{key} = "
            got = getattr(r, key, None)
            if got is None:
                raise _FormatterBug(f"reward setting {key!r} is not in the IR")
            if key == "features":
                return _list(list(r.features or ()), prefix, indent)
            if key == "extra":
                return _list([ref.name for ref in r.extra or ()], prefix, indent)
            if key == "optimizer":
                return [prefix + _quote(str(got))]
            if key == "base_reward":
                return [prefix + ("true" if got else "false")]
            return [prefix + _number(got)]

        return self.settings(r.span, depth, "reward", value)

    def tiers(self, t: ir.TiersBlock, depth: int) -> _Node:
        starts = {tier.span.start: tier for tier in t.tiers}
        width = max(len(tier.name) for tier in t.tiers)

        def child(a: int, b: int, indent: str) -> _Node:
            tier = starts[self.toks[a].start]
            text = indent + tier.name
            if tier.margin is not None:
                text = f"{indent}{tier.name.ljust(width)} margin {_number(tier.margin)}"
            return self.leaf(a, b, indent, lambda s: [text])

        return self.block(
            t.span, depth, lambda s: ["tiers" + s], lambda i: self.toks[i].start in starts, child
        )

    def proposition(self, p: ir.Proposition) -> _Node:
        nodes: dict[int, ir.Example | ir.Extractor] = {e.span.start: e for e in p.examples}
        if p.extractor is not None:
            nodes[p.extractor.span.start] = p.extractor

        def child(a: int, b: int, indent: str) -> _Node:
            node = nodes.get(self.toks[a].start)
            if isinstance(node, ir.Example):
                return self.example(node, 1)
            if node is not None:
                text = _extractor(node, indent)
                return self.leaf(a, b, indent, lambda s: text)
            key = self.toks[a].text
            value = getattr(p, key) if key in ("description", "question") else None
            if not isinstance(value, str):
                raise _FormatterBug(f"proposition setting {key!r} is not in the IR")
            return self.leaf(
                a, b, indent, lambda s: format_string(value, f"{indent}{key} = ", indent)
            )

        def is_start(i: int) -> bool:
            return self.setting_start(i) or self.toks[i].start in nodes

        return self.block(p.span, 0, lambda s: [f"proposition {p.name}{s}"], is_start, child)

    def example(self, e: ir.Example, depth: int) -> _Node:
        messages = iter(e.conversation)
        seen: set[str] = set()

        def child(a: int, b: int, indent: str) -> _Node:
            key = self.toks[a].text
            text: str | None
            if key not in ("system", "user", "assistant"):
                self.once(a, seen, "an example")
            if key in ("system", "user", "assistant"):
                message = next(messages, None)
                if message is None or message.role != key:
                    raise _FormatterBug(f"example message {key!r} is not in the IR")
                text = message.content
            else:
                text = e.completion if key == "completion" else e.because
            if text is None:
                raise _FormatterBug(f"example item {key!r} is not in the IR")
            value = text
            return self.leaf(
                a, b, indent, lambda s: format_string(value, f"{indent}{key} ", indent)
            )

        head = _INDENT * depth + ("example yes" if e.answer else "example no")
        return self.block(
            e.span, depth, lambda s: [head + s], lambda i: self.toks[i].kind == "name", child
        )

    def derived(self, d: ir.Derived) -> _Node:
        prefix = f"derived {d.name} = "

        def head(suffix: str) -> list[str]:
            lines = format_expr(d.expr, len(prefix), 0, suffix)
            return [prefix + lines[0], *lines[1:]]

        has_block = any(
            self._is(i, "{") for i in range(self.by_start[d.span.start], self.by_end[d.span.end])
        )
        if not has_block:
            return _Node(d.span.start, d.span.end, "", head)

        def value(key: str, indent: str) -> list[str]:
            if key != "description" or d.description is None:
                raise _FormatterBug(f"derived setting {key!r} is not in the IR")
            return format_string(d.description, f"{indent}{key} = ", indent)

        def child(a: int, b: int, indent: str) -> _Node:
            key = self.toks[a].text
            return self.leaf(a, b, indent, lambda s: value(key, indent))

        return self.block(d.span, 0, head, self.setting_start, child, optional=True)

    def response_type(self, rt: ir.ResponseType) -> _Node:
        nodes: dict[int, ir.TierRule | ir.RewardSettings] = {r.span.start: r for r in rt.rules}
        if rt.reward is not None:
            nodes[rt.reward.span.start] = rt.reward
        width = max((len(r.tier) for r in rt.rules), default=0)

        def child(a: int, b: int, indent: str) -> _Node:
            node = nodes[self.toks[a].start]
            if isinstance(node, ir.RewardSettings):
                return self.reward(node, 1)
            rule = node
            lead = f"{indent}{rule.tier.ljust(width)} "

            def head(s: str) -> list[str]:
                if rule.when is None:
                    return [lead + "otherwise"]
                lines = format_expr(rule.when, len(lead) + 5, len(indent))
                return [lead + "when " + lines[0], *lines[1:]]

            return self.leaf(a, b, indent, head)

        title = f"response_type {rt.name}"
        if rt.display is not None:
            title += " " + _quote(rt.display)
        return self.block(
            rt.span, 0, lambda s: [title + s], lambda i: self.toks[i].start in nodes, child
        )

    def constraint(self, c: ir.Constraint) -> _Node:
        def value(key: str, indent: str) -> list[str]:
            prefix = f"{indent}{key} = "
            if key == "cost":
                lines = format_expr(c.cost, len(prefix), len(indent))
                return [prefix + lines[0], *lines[1:]]
            if key == "limit":
                return [prefix + _limit(c.limit)]
            if key == "description" and c.description is not None:
                return format_string(c.description, prefix, indent)
            if key == "applies_to":
                return _list([ref.name for ref in c.applies_to], prefix, indent)
            raise _FormatterBug(f"constraint setting {key!r} is not in the IR")

        return self.settings(c.span, 0, f"constraint {c.name}", value)

    def test(self, t: ir.SpecTest) -> _Node:
        """``test "name" { ... }``: entries in the author's order, one a line; a single
        response type bare, several as a list; given/expect blocks one answer a line."""
        expects = {e.span.start: e for e in t.expects}
        messages = {m.span.start: m for m in t.conversation}
        keywords = ("_RESPONSE_TYPE", "_GIVEN", "_EXPECT")

        def is_start(i: int) -> bool:
            tok = self.toks[i]
            return tok.type in keywords or (tok.type == "NAME" and self.next_kind(i) == "string")

        def child(a: int, b: int, indent: str) -> _Node:
            tok = self.toks[a]
            if tok.type == "_RESPONSE_TYPE":
                names = [ref.name for ref in t.response_types]
                prefix = f"{indent}response_type "
                lines = [prefix + names[0]] if len(names) == 1 else _list(names, prefix, indent)
                return self.leaf(a, b, indent, lambda s: lines)
            if tok.type == "_GIVEN":
                return self.answers(a, b, "given", t.given or ())
            if tok.type == "_EXPECT":
                expect = expects[tok.start]
                if isinstance(expect, ir.ExpectAnswers):
                    return self.answers(a, b, "expect", expect.answers)
                text = f"{indent}expect {'not ' if expect.negated else ''}{expect.tier}"
                return self.leaf(a, b, indent, lambda s: [text])
            key = tok.text
            value = t.completion if key == "completion" else messages[tok.start].content
            if value is None:
                raise _FormatterBug(f"test item {key!r} is not in the IR")
            text_value = value
            return self.leaf(
                a, b, indent, lambda s: format_string(text_value, f"{indent}{key} ", indent)
            )

        head = f"test {_quote(t.name)}"
        return self.block(t.span, 0, lambda s: [head + s], is_start, child)

    def answers(self, a: int, b: int, title: str, answers: Sequence[ir.Answer]) -> _Node:
        """A ``given { }`` or ``expect { }`` block of a test (tokens ``a`` to ``b``)."""
        values = {answer.name: answer.value for answer in answers}
        span = ir.Span.model_construct(
            file=self.file,
            line=1,
            col=1,
            end_line=1,
            end_col=1,
            start=self.toks[a].start,
            end=self.toks[b].end,
        )

        def value(key: str, indent: str) -> list[str]:
            if key not in values:
                raise _FormatterBug(f"answer {key!r} is not in the IR")
            return [f"{indent}{key} = {'true' if values[key] else 'false'}"]

        return self.settings(span, 1, title, value)

    # ------------------------------------------------------------ comments
    def place(self, comment: ir.Comment, children: list[_Node], block: _Block | None) -> None:
        """Give ``comment`` to the entry it is inside of, trails or precedes."""
        pos = comment.span.start
        starts = self.starts.get(id(children))
        if starts is None:
            starts = self.starts[id(children)] = [child.start for child in children]
        k = bisect.bisect_right(starts, pos) - 1  # the last child starting before pos
        if k >= 0 and pos < children[k].end:
            inner = children[k].block
            if inner is not None and inner.inner_start <= pos < inner.inner_end:
                self.place(comment, inner.children, inner)
            else:
                children[k].hoisted.append(comment)
            return
        line = self.line(pos)
        if k >= 0 and self.line(children[k].end - 1) == line:
            children[k].trailing = comment
        elif block is not None and k < 0 and line == block.open_line:
            block.open_comment = comment
        elif k + 1 < len(children):
            children[k + 1].leading.append(comment)
        elif block is not None:
            block.end_comments.append(comment)
        else:
            self.end_comments.append(comment)

    # ------------------------------------------------------------ output
    def emit(self) -> str:
        out: list[str] = []
        self.body(self.items, self.end_comments, "", out, top=True)
        # Trailing comments on adjacent lines of the same indentation line up, two
        # spaces after the longest of those lines.
        i = 0
        while i < len(out):
            if i not in self.trailing:
                i += 1
                continue
            j = i
            while j + 1 in self.trailing and _indent(out[j + 1]) == _indent(out[i]):
                j += 1
            column = max(len(out[k]) for k in range(i, j + 1)) + 2
            for k in range(i, j + 1):
                out[k] = out[k].ljust(column) + self.trailing[k]
            i = j + 1
        return "\n".join(out) + "\n" if out else ""

    def body(
        self,
        children: list[_Node],
        end_comments: list[ir.Comment],
        indent: str,
        out: list[str],
        top: bool = False,
    ) -> None:
        """Emit a file or a block's inside. Blank lines: one wherever the author had
        one or more; between top-level items always one, unless both are one-liners."""
        prev_end: int | None = None
        prev: _Node | None = None

        def blank_before(start: int) -> bool:
            return prev_end is not None and self.blank_between(prev_end, start)

        for child in children:
            forced = top and prev is not None and not (prev.one_line() and child.one_line())
            for comment in child.leading:
                if blank_before(comment.span.start) or forced:
                    out.append("")
                forced = False
                out.append(indent + comment.text)
                prev_end = comment.span.end
            if blank_before(child.start) or forced:
                out.append("")
            for comment in child.hoisted:
                out.append(indent + comment.text)
            self.node(child, out)
            prev_end = child.trailing.span.end if child.trailing else child.end
            prev = child
        for comment in end_comments:
            if blank_before(comment.span.start):
                out.append("")
            out.append(indent + comment.text)
            prev_end = comment.span.end

    def node(self, node: _Node, out: list[str]) -> None:
        lines = list(node.lines())
        block = node.block
        if block is not None and not block.empty():
            out.extend(lines)
            if block.open_comment is not None:
                self.trailing[len(out) - 1] = block.open_comment.text
            self.body(block.children, block.end_comments, block.indent, out)
            out.append(node.indent + "}")
        else:
            out.extend(lines)
        if node.trailing is not None:
            self.trailing[len(out) - 1] = node.trailing.text


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _extractor(x: ir.Extractor, indent: str) -> list[str]:
    if isinstance(x, ir.RegexExtractor):
        return [f"{indent}match regex {_quote(x.pattern)}"]
    if isinstance(x, ir.KeywordsExtractor):
        return _list([_quote(w) for w in x.words], f"{indent}match keywords ", indent)
    return [f"{indent}match length {x.op} {x.value} {x.unit}"]


# --------------------------------------------------------------------------- entry points


def _fingerprint(source: ir.SourceFile) -> tuple[object, list[str]]:
    items = ir.strip_spans([item.model_dump() for item in source.items])
    return items, [c.text for c in source.comments]


def format_source(text: str, file: str = "<string>") -> str:
    """The canonical text of one ``.rbr`` file.

    Raises :class:`~specc.errors.SpecError` when the text does not parse cleanly:
    a syntax error, or a value the parser had to drop (an unknown setting, a bad
    escape), since formatting would silently delete it.
    """
    if len(text) > MAX_SOURCE_BYTES // 4 and len(text.encode("utf-8", "replace")) > (
        MAX_SOURCE_BYTES
    ):
        raise SpecError(
            [
                Diagnostic(
                    "E004",
                    f"{file} is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MB",
                    ir.Span.unknown(file),
                    "split the policy into files joined with `import`",
                )
            ]
        )
    source, diagnostics = parse_source(text, file)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise SpecError(errors)
    try:
        formatted = _Layout(text, source, file).emit()
    except (_FormatterBug, KeyError, StopIteration) as exc:
        raise _FormatterBug(
            f"specc fmt could not lay out {file} ({exc}); the file is left unchanged. "
            "This is a bug in specc: please report it with the file."
        ) from exc
    again, diagnostics = parse_source(formatted, file)
    if diagnostics or _fingerprint(again) != _fingerprint(source):
        raise _FormatterBug(
            f"specc fmt produced text for {file} that parses differently from the original; "
            "the file is left unchanged. This is a bug in specc: please report it with the file."
        )
    return formatted


def _lines(text: str) -> list[str]:
    """Lines with their '\\n', split on '\\n' only (not on the other characters that
    :meth:`str.splitlines` treats as line breaks)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1] + "\n\\ No newline at end of file\n")
    return lines


@dataclass
class FormatResult:
    """What ``specc fmt`` found for one file."""

    path: str
    original: str | None = None
    formatted: str | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def sources(self) -> dict[str, str]:
        """The file's text by name, for rendering diagnostics with carets."""
        return {self.path: self.original} if self.original is not None else {}

    @property
    def changed(self) -> bool:
        return self.formatted is not None and self.formatted != self.original

    def diff(self) -> str:
        """A unified diff from the file to its canonical layout ('' when unchanged)."""
        if not self.changed or self.original is None or self.formatted is None:
            return ""
        return "".join(
            difflib.unified_diff(
                _lines(self.original),
                _lines(self.formatted),
                fromfile=self.path,
                tofile=f"{self.path} (formatted)",
            )
        )


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` via a temporary file in the same folder, keeping
    its permissions; a symlink keeps pointing at the (rewritten) file."""
    target = Path(os.path.realpath(path))
    mode = target.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def format_file(path: str | Path, write: bool = True) -> FormatResult:
    """Format one file; with ``write``, rewrite it in place when it changes.

    A file that cannot be read or does not parse cleanly is never written: its
    problems are in ``result.diagnostics``.
    """
    from specc.loader import display_path, read_source

    file = Path(path)
    shown = display_path(file)
    text, diagnostics = read_source(file, shown)
    result = FormatResult(path=shown, original=text, diagnostics=list(diagnostics))
    if text is None or diagnostics:
        return result
    try:
        result.formatted = format_source(text, shown)
    except SpecError as exc:
        result.diagnostics = list(exc.diagnostics)
        return result
    if write and result.changed:
        try:
            _write_atomically(file, result.formatted)
        except OSError as exc:
            raise UsageError(f"cannot write {shown}: {exc.strerror or exc}") from exc
    return result
