"""Hypothesis strategies that write random, syntactically valid ``.rbr`` files as text.

Every construct of the grammar is covered, in random order, with random whitespace
and comments between any two tokens, strings full of characters that are hard to
quote (quotes, backslashes, newlines, tabs, carriage returns, non-printable and
non-ASCII characters, leading spaces), numbers in every notation the grammar takes
and expressions with random nesting and redundant parentheses. The strings are
encoded here, independently of the formatter, so that the formatter is not tested
against itself. Generated files parse without diagnostics (they need not pass
``specc check``: names need not resolve).

>>> from hypothesis import find
>>> text = find(specs(), lambda t: "proposition" in t)
>>> "proposition" in text
True
"""

from __future__ import annotations

import itertools

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn

__all__ = [
    "KEYWORDS",
    "comment_texts",
    "expressions",
    "names",
    "specs",
    "string_literals",
    "string_values",
]

#: Words the lexer may read as keywords; generated names avoid them.
KEYWORDS = frozenset(
    [
        *("policy", "version", "import", "grader", "tiers", "margin", "reward"),
        *("proposition", "example", "match", "regex", "keywords", "length", "derived"),
        *("response_type", "when", "otherwise", "constraint", "cost", "limit", "not"),
        *("and", "or", "file", "yes", "no", "true", "false", "chars", "words"),
        *("test", "given", "expect"),
    ]
)

Draw = DrawFn

#: Names, including ones that start with a keyword (``nothing``, ``true_story``).
names = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
    st.builds(
        lambda k, rest: k + rest,
        st.sampled_from(sorted(KEYWORDS)),
        st.from_regex(r"[A-Za-z0-9_]{1,4}", fullmatch=True),
    ),
).filter(lambda n: n not in KEYWORDS)

_TRICKY = [
    '"',
    '""',
    '"""',
    "\\",
    "\\n",
    "\n",
    "\n\n",
    "\t",
    "\r",
    "\r\n",
    " ",
    "  ",
    "#",
    "# not a comment",
    "{",
    "}",
    "é",
    "€",
    "😀",
    "\u00a0",
    "\u2028",
    "\u200d",
    "\x00",
    "\x0c",
    "\x1b",
    "\ufeff",
    "'",
    "\\u00e9",
]

#: Any text except lone surrogates (files are UTF-8), biased towards tricky pieces.
string_values = st.lists(
    st.one_of(
        st.sampled_from(_TRICKY),
        st.text(st.characters(codec="utf-8"), max_size=4),
        st.sampled_from(["word", "Line one", "  indented", "yes", "a b c"]),
    ),
    max_size=8,
).map("".join)

#: Comment text after '#' (anything but a newline).
comment_texts = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=20).map(
    lambda t: "#" + t
)


# --------------------------------------------------------------------------- literals


def _escape_char(ch: str, draw: Draw, long: bool) -> str:
    """One character of a string body: escaped when it must be, else at random."""
    if ch == "\\":
        return "\\\\"
    if ch == '"' and not long:
        return '\\"'
    if ch == "\n":
        return "\n" if long else "\\n"
    choice = draw(st.integers(0, 5))
    if choice == 0:
        if ch in "\t\r\0'\"":
            return {"\t": "\\t", "\r": "\\r", "\0": "\\0", "'": "\\'", '"': '\\"'}[ch]
        code = ord(ch)
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08X}"
    return ch


@st.composite
def string_literals(draw: Draw, multiline: bool = True) -> str:
    """A valid ``"..."`` or ``\"\"\"...\"\"\"`` literal of a random value."""
    value = str(draw(string_values))
    if not multiline or not draw(st.booleans()):
        return '"' + "".join(_escape_char(ch, draw, False) for ch in value) + '"'
    pieces = [_escape_char(ch, draw, True) for ch in value]
    # A raw quote may not be followed by two more, nor end the body: escape those.
    for i, piece in enumerate(pieces):
        if piece == '"' and (pieces[i + 1 : i + 3] == ['"', '"'] or i == len(pieces) - 1):
            pieces[i] = '\\"'
    body = "".join(pieces)
    layout = draw(st.integers(0, 2))
    if layout == 0:  # inline: """text"""
        return '"""' + body + '"""'
    indent = " " * int(draw(st.integers(0, 6)))
    content = "\n".join(indent + line if line else line for line in body.split("\n"))
    closing = "\n" + " " * int(draw(st.integers(0, 4))) if layout == 1 else ""
    return '"""\n' + content + closing + '"""'


def _strict_escape(body: str) -> str:
    return body.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_nonblank_words = st.text(
    st.characters(exclude_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=6
).map(lambda w: '"' + _strict_escape(w) + '"')


def _number_text(draw: Draw, value: float, positive: bool = False) -> str:
    """``value`` (>= 0) in one of the notations SIGNED_NUMBER takes."""
    text = repr(float(value))
    forms = [text, f"{value:.6f}", f"{value:e}", "+" + text]
    if float(value).is_integer():
        forms += [str(int(value)), f"{int(value)}.", f"{int(value)}E0"]
    if text.startswith("0."):
        forms.append(text[1:])
    if positive:
        forms = [f for f in forms if float(f) > 0]
    return str(draw(st.sampled_from(forms)))


_small_floats = st.floats(0, 1000, allow_nan=False, allow_infinity=False)


# --------------------------------------------------------------------------- expressions

# Precedence levels: 0 or, 1 and, 2 not, 3 atom.


def _paren(text: str, level: int, needed: int) -> tuple[str, int]:
    return (f"({text})", 3) if level < needed else (text, level)


@st.composite
def _expr_extend(draw: Draw, children: st.SearchStrategy[tuple[str, int]]) -> tuple[str, int]:
    kind = draw(st.sampled_from(["not", "and", "or", "paren"]))
    if kind == "paren":
        text, _ = draw(children)
        return f"({text})", 3
    if kind == "not":
        text, _ = _paren(*draw(children), needed=2)
        return f"not {text}", 2
    operands = draw(st.lists(children, min_size=2, max_size=4))
    needed = 2 if kind == "and" else 1
    parts = [_paren(t, lvl, needed)[0] for t, lvl in operands]
    return f" {kind} ".join(parts), (1 if kind == "and" else 0)


expressions: st.SearchStrategy[str] = st.recursive(
    st.one_of(names.map(lambda n: (n, 3)), st.sampled_from([("true", 3), ("false", 3)])),
    _expr_extend,
    max_leaves=12,
).map(lambda pair: pair[0])


# --------------------------------------------------------------------------- layout

_PUNCT = set("{}[](),=%<>")


@st.composite
def _separator(draw: Draw, tight: bool) -> str:
    """Whitespace, maybe with a comment; empty only next to punctuation."""
    kind = draw(st.integers(0, 9))
    if kind == 0 and tight:
        return ""
    if kind <= 4:
        return " "
    if kind == 5:
        return "\n" + " " * int(draw(st.integers(0, 6)))
    if kind == 6:
        return "\n\n"
    if kind == 7:
        return str(draw(st.sampled_from(["  ", "\t", "\n\n\n  ", " \r\n"])))
    return " " + str(draw(comment_texts)) + "\n" + " " * int(draw(st.integers(0, 4)))


def _tokens_of(expr: str) -> list[str]:
    out: list[str] = []
    for word in expr.replace("(", " ( ").replace(")", " ) ").split():
        out.append(word)
    return out


@st.composite
def _join(draw: Draw, tokens: list[str]) -> str:
    """The tokens with a random separator between each two."""
    out = [tokens[0]]
    for prev, tok in itertools.pairwise(tokens):
        tight = prev[-1] in _PUNCT or tok[0] in _PUNCT
        out.append(str(draw(_separator(tight))))
        out.append(tok)
    return "".join(out)


def _shuffled(draw: Draw, entries: list[list[str]]) -> list[str]:
    order = draw(st.permutations(range(len(entries)))) if entries else []
    return [tok for i in order for tok in entries[i]]


# --------------------------------------------------------------------------- items


def _list_tokens(draw: Draw, items: list[str]) -> list[str]:
    toks = ["["]
    for i, item in enumerate(items):
        if i:
            toks.append(",")
        toks.append(item)
    if draw(st.booleans()) and items:
        toks.append(",")
    return [*toks, "]"]


def _names_value(draw: Draw, choices: st.SearchStrategy[str], single_ok: bool) -> list[str]:
    """A list of names, or (when ``single_ok``) sometimes one bare name."""
    items = draw(st.lists(choices, max_size=3))
    if single_ok and len(items) == 1 and draw(st.booleans()):
        return [items[0]]
    return _list_tokens(draw, items)


@st.composite
def _policy(draw: Draw) -> list[str]:
    return ["policy", draw(string_literals(False)), "version", draw(string_literals(False))]


@st.composite
def _import(draw: Draw) -> list[str]:
    return ["import", draw(string_literals(False))]


@st.composite
def _grader(draw: Draw) -> list[str]:
    entries: list[list[str]] = []
    for key in ("yes", "no"):
        if draw(st.booleans()):
            words = draw(st.lists(_nonblank_words, min_size=1, max_size=3))
            if len(words) == 1 and draw(st.booleans()):
                entries.append([key, "=", words[0]])
            else:
                entries.append([key, "=", *_list_tokens(draw, words)])
    if draw(st.booleans()):
        if draw(st.booleans()):
            entries.append(["template", "=", "file", "(", draw(string_literals(False)), ")"])
        else:
            entries.append(["template", "=", draw(string_literals())])
    if draw(st.booleans()):
        entries.append(["example_template", "=", draw(string_literals())])
    return ["grader", "{", *_shuffled(draw, entries), "}"]


@st.composite
def _tiers(draw: Draw) -> list[str]:
    toks = ["tiers", "{"]
    for name in draw(st.lists(names, min_size=1, max_size=5)):
        toks.append(name)
        if draw(st.booleans()):
            toks += ["margin", _number_text(draw, draw(_small_floats))]
    return [*toks, "}"]


@st.composite
def _reward(draw: Draw) -> list[str]:
    entries: list[list[str]] = []
    kinds = st.sampled_from(["propositions", "derived", "classes"])
    if draw(st.booleans()):
        entries.append(["features", "=", *_names_value(draw, kinds, True)])
    if draw(st.booleans()):
        entries.append(["extra", "=", *_names_value(draw, names, True)])
    for key in ("margin", "weight_decay"):
        if draw(st.booleans()):
            entries.append([key, "=", _number_text(draw, draw(_small_floats))])
    if draw(st.booleans()):
        entries.append(["steps", "=", str(draw(st.integers(1, 10**6)))])
    if draw(st.booleans()):
        lr = draw(st.floats(1e-9, 10, allow_nan=False))
        entries.append(["lr", "=", _number_text(draw, lr, positive=True)])
    if draw(st.booleans()):
        entries.append(["optimizer", "=", draw(st.sampled_from(['"adamw"', "lbfgs", "adamw"]))])
    if draw(st.booleans()):
        entries.append(["base_reward", "=", draw(st.sampled_from(["true", "false", "yes", "no"]))])
    return ["reward", "{", *_shuffled(draw, entries), "}"]


@st.composite
def _example(draw: Draw) -> list[str]:
    toks = ["example", draw(st.sampled_from(["yes", "no"])), "{"]
    items: list[list[str]] = []
    for _ in range(int(draw(st.integers(0, 3)))):
        role = draw(st.sampled_from(["system", "user", "assistant"]))
        items.append([role, draw(string_literals())])
    items.append(["completion", draw(string_literals())])
    if draw(st.booleans()):
        because = ["because", draw(string_literals())]
        items.insert(int(draw(st.integers(0, len(items)))), because)
    return [*toks, *(t for item in items for t in item), "}"]


@st.composite
def _extractor(draw: Draw) -> list[str]:
    kind = draw(st.sampled_from(["regex", "keywords", "length"]))
    if kind == "regex":
        return ["match", "regex", draw(string_literals())]
    if kind == "keywords":
        words = draw(st.lists(_nonblank_words, min_size=1, max_size=4))
        return ["match", "keywords", *_list_tokens(draw, words)]
    op = draw(st.sampled_from(["<", "<=", ">", ">=", "=="]))
    unit = draw(st.sampled_from(["chars", "words"]))
    return ["match", "length", op, str(draw(st.integers(0, 10**6))), unit]


@st.composite
def _proposition(draw: Draw) -> list[str]:
    entries: list[list[str]] = []
    for key in ("description", "question"):
        if draw(st.booleans()):
            entries.append([key, "=", draw(string_literals())])
    entries += draw(st.lists(_example(), max_size=3))
    if draw(st.booleans()):
        entries.append(draw(_extractor()))
    return ["proposition", draw(names), "{", *_shuffled(draw, entries), "}"]


@st.composite
def _derived(draw: Draw) -> list[str]:
    toks = ["derived", draw(names), "=", *_tokens_of(draw(expressions))]
    block = draw(st.integers(0, 2))
    if block == 1:
        toks += ["{", "}"]
    elif block == 2:
        toks += ["{", "description", "=", draw(string_literals()), "}"]
    return toks


@st.composite
def _response_type(draw: Draw) -> list[str]:
    toks = ["response_type", draw(names)]
    if draw(st.booleans()):
        toks.append(draw(string_literals()))
    entries: list[list[str]] = []
    for _ in range(int(draw(st.integers(0, 4)))):
        tier = draw(names)
        if draw(st.integers(0, 3)) == 0:
            entries.append([tier, "otherwise"])
        else:
            entries.append([tier, "when", *_tokens_of(draw(expressions))])
    if draw(st.booleans()):
        entries.insert(int(draw(st.integers(0, len(entries)))), draw(_reward()))
    return [*toks, "{", *(t for e in entries for t in e), "}"]


@st.composite
def _constraint(draw: Draw) -> list[str]:
    entries: list[list[str]] = [["cost", "=", *_tokens_of(draw(expressions))]]
    if draw(st.booleans()):
        percent = draw(st.floats(0, 100, allow_nan=False))
        entries.append(["limit", "=", _number_text(draw, percent), "%"])
    else:
        entries.append(["limit", "=", _number_text(draw, draw(st.floats(0, 1)))])
    if draw(st.booleans()):
        entries.append(["description", "=", draw(string_literals())])
    if draw(st.booleans()):
        entries.append(["applies_to", "=", *_names_value(draw, names, True)])
    return ["constraint", draw(names), "{", *_shuffled(draw, entries), "}"]


def _answers_block(draw: Draw, keyword: str) -> list[str]:
    """``given { a = true ... }`` or ``expect { ... }``: distinct names, any spelling
    of a boolean."""
    keys = draw(st.lists(names, max_size=3, unique=True))
    toks = [keyword, "{"]
    for key in keys:
        toks += [key, "=", draw(st.sampled_from(["true", "false", "yes", "no"]))]
    return [*toks, "}"]


@st.composite
def _test(draw: Draw) -> list[str]:
    """A ``test`` block: a rule test (maybe a given block) or a completion test (turns,
    then the completion), a response type or a list of them, and expectations, in
    random order (turns stay before the completion, which the parser requires)."""
    entries: list[list[str]] = []
    if draw(st.booleans()):
        entries.append(["response_type", *_names_value(draw, names, True)])
    turns: list[list[str]] = []
    if draw(st.booleans()):
        for _ in range(int(draw(st.integers(0, 2)))):
            role = draw(st.sampled_from(["system", "user", "assistant"]))
            turns.append([role, draw(string_literals())])
        turns.append(["completion", draw(string_literals())])
    elif draw(st.booleans()):
        entries.append(_answers_block(draw, "given"))
    for _ in range(int(draw(st.integers(0, 3)))):
        kind = draw(st.integers(0, 2))
        if kind == 0:
            entries.append(["expect", draw(names)])
        elif kind == 1:
            entries.append(["expect", "not", draw(names)])
        else:
            entries.append(_answers_block(draw, "expect"))
    toks = _shuffled(draw, entries)
    conversation = [tok for turn in turns for tok in turn]
    toks = _splice(toks, int(draw(st.integers(0, len(toks)))), conversation)
    return ["test", draw(string_literals()), "{", *toks, "}"]


def _splice(toks: list[str], at: int, inner: list[str]) -> list[str]:
    """``inner`` inserted into ``toks`` at an entry boundary at or before ``at``."""
    starts = {0, len(toks)}
    depth = 0
    for i, tok in enumerate(toks):
        if tok in ("{", "["):
            depth += 1
        elif tok in ("}", "]"):
            depth -= 1
        elif depth == 0 and tok in ("response_type", "given", "expect"):
            starts.add(i)
    at = max(s for s in starts if s <= at)
    return [*toks[:at], *inner, *toks[at:]]


_ITEMS = [
    _policy(),
    _import(),
    _grader(),
    _tiers(),
    _reward(),
    _proposition(),
    _derived(),
    _response_type(),
    _constraint(),
    _test(),
]


@st.composite
def specs(draw: Draw, max_items: int = 6) -> str:
    """A whole file: items in random order, separated by whitespace and comments,
    maybe with comments before the first item and after the last."""
    items = draw(st.lists(st.one_of(_ITEMS), max_size=max_items))
    parts: list[str] = []
    if draw(st.booleans()):
        parts.append(str(draw(comment_texts)) + "\n")
    for i, toks in enumerate(items):
        if i:
            parts.append(str(draw(st.sampled_from(["\n", "\n\n", " ", "\n\n\n"]))))
        parts.append(str(draw(_join(toks))))
    if draw(st.booleans()):
        parts.append(str(draw(st.sampled_from(["\n", "\n\n", " "]))) + str(draw(comment_texts)))
    if draw(st.booleans()):
        parts.append("\n")
    return "".join(parts)
