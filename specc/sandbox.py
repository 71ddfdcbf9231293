"""The sandbox every template from a spec renders in.

A spec's grader template and example template are untrusted code: a policy shared by
another team, or proposed in a pull request that CI checks. They render in Jinja2's
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` with

* no loader (``include``, ``import`` and ``extends`` are refused at their line),
* no globals but the variables specc passes and a bounded ``range`` (none of Jinja's
  ``lipsum``, ``cycler``, ``joiner``, ``namespace`` or ``dict``),
* no attribute that starts with ``_``, no ``str.format``, and only the read-only
  methods of strings, lists and dicts; the filters that could not loop or grow
  without bound are kept, each with its size arguments checked,
* :class:`~jinja2.StrictUndefined`, and
* a budget per render: :data:`MAX_STEPS` steps (loop iterations, calls, filters,
  operators, output expressions), :data:`MAX_VALUE_CHARS` characters for any one value,
  :data:`MAX_WORK_CHARS` characters built in all, :data:`MAX_OUTPUT_CHARS` of output
  and :data:`MAX_RENDER_SECONDS` of wall time. Every hook checks the budget and the
  deadline, so ``"x" * 10**9``, ``range(10**10)``, nested loops and huge joins stop
  at once.

A template that does something unsafe or crosses a limit raises
:class:`TemplateFailure` with code ``E013``; an ordinary error (bad syntax, an
undefined variable) has code ``E012``. Each problem carries the template's own line.

>>> t = compile_template("{{ question }}?", frozenset({"question"}))
>>> render(t, {"question": "Is it polite"})
'Is it polite?'
>>> compile_template("{{ lipsum.__globals__ }}", frozenset())
Traceback (most recent call last):
...
specc.sandbox.TemplateFailure: line 1: 'lipsum' is not available in specc templates
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from specc.errors import SpecccError

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "MAX_OUTPUT_CHARS",
    "MAX_RENDER_SECONDS",
    "MAX_STEPS",
    "MAX_TEMPLATE_CHARS",
    "MAX_VALUE_CHARS",
    "MAX_WORK_CHARS",
    "Problem",
    "TemplateFailure",
    "compile_template",
    "render",
]

#: Steps one render may take: loop iterations, calls, filters, operators, outputs.
MAX_STEPS = 100_000
#: Characters of one rendered prompt.
MAX_OUTPUT_CHARS = 1 << 20
#: Characters of any one value a template builds (a string, a list's items).
MAX_VALUE_CHARS = 1 << 20
#: Characters built by one render in all (outputs, joins, filters, operators).
MAX_WORK_CHARS = 16 << 20
#: Wall time of one render, a backstop behind the step budget.
MAX_RENDER_SECONDS = 2.0
#: Characters of one template's source.
MAX_TEMPLATE_CHARS = 1 << 20
#: Bits of an integer built by ``*``, ``**`` or ``+`` (about 1,200 decimal digits).
MAX_INT_BITS = 4096
#: Characters of one level of ``tojson(indent=...)``.
MAX_JSON_INDENT = 64

UNSAFE = "E013"
ERROR = "E012"

#: Jinja's default globals, none of which a specc template has.
_JINJA_GLOBALS = frozenset({"lipsum", "cycler", "joiner", "namespace", "dict"})


@dataclass(frozen=True)
class Problem:
    """One problem in a template: a code (E012 or E013), what, the template's line
    (None when unknown) and a hint."""

    code: str
    message: str
    line: int | None = None
    hint: str | None = None


class TemplateFailure(SpecccError):
    """A template failed to compile or render; ``problems`` says where and why."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        first = self.problems[0]
        where = f"line {first.line}: " if first.line is not None else ""
        super().__init__(f"{where}{first.message}")


class _LimitExceeded(Exception):
    """Raised by a budget hook; never caught by anything inside a render."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


# --------------------------------------------------------------------------- budget


class _Budget:
    """The work one render may still do; shared by every hook through a ContextVar."""

    __slots__ = ("deadline", "failed", "sizes", "steps", "work")

    def __init__(self) -> None:
        self.steps = 0
        self.work = 0
        #: id -> (list, tuple or dict, its size or a size over the limit): see _size
        self.sizes: dict[int, tuple[Any, int]] = {}
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS
        self.failed: _LimitExceeded | None = None

    def _fail(self, message: str, hint: str | None = None) -> None:
        # Sticky: a hook that something inside Jinja swallowed raises again next time.
        self.failed = _LimitExceeded(message, hint)
        raise self.failed

    def step(self, produced: int = 0) -> None:
        if self.failed is not None:
            raise self.failed
        self.steps += 1
        self.work += produced
        if self.steps > MAX_STEPS:
            self._fail(
                f"the template took more than {MAX_STEPS:,} steps (loop iterations, "
                "calls, filters, operators)",
                "a grader prompt needs no more than a loop over the examples",
            )
        if self.work > MAX_WORK_CHARS:
            self._fail(f"the template built more than {MAX_WORK_CHARS:,} characters")
        if time.monotonic() > self.deadline:
            self._fail(f"the template ran for more than {MAX_RENDER_SECONDS:g} seconds")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "specc_template_budget", default=None
)


def _step(produced: int = 0) -> None:
    budget = _BUDGET.get()
    if budget is not None:  # None while Jinja folds constants at compile time
        budget.step(produced)


def _too_big(size: int, what: str = "a value") -> _LimitExceeded:
    return _LimitExceeded(
        f"{what} of {size:,} characters is over the limit of {MAX_VALUE_CHARS:,}",
        "templates build prompts, not large data",
    )


def _size(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """The length of ``str(value)``, roughly and without building it; counting stops
    once it passes ``limit``. A render's values cannot change (the sandbox is
    immutable), so the size of each list, tuple and dict is remembered for the rest
    of the render: checking the same large list at every call costs nothing."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        budget = _BUDGET.get()
        known = budget.sizes.get(id(value)) if budget is not None else None
        if known is not None and known[0] is value:
            return known[1]
        total = 2
        exact = True
        pairs = value.items() if isinstance(value, dict) else ((item, "") for item in value)
        for key, item in pairs:
            total += _size(key) + _size(item) + 2
            if total > limit:
                exact = False
                break
        if budget is not None and (exact or total > MAX_VALUE_CHARS):
            budget.sizes[id(value)] = (value, total)  # the value kept: its id stays its own
        return total
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3 + 2
    return 32  # numbers, None, macros, loop objects: short reprs


def _check_size(value: Any, what: str = "a value") -> int:
    size = _size(value)
    if size > MAX_VALUE_CHARS:
        raise _too_big(size, what)
    return size


def _check_int(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise _LimitExceeded(
            f"an integer of about {bits:,} bits is over the limit of {MAX_INT_BITS:,}"
        )


def _check_printf(fmt: str, args: Any = ()) -> None:
    """Refuse a %-format whose width or precision is ``*`` or too large, or whose
    result would be too large: each conversion counts its width or precision and the
    size of the value it formats (``%(a)s`` written 200,000 times formats ``a``
    200,000 times). A plain scan (a regular expression here could backtrack on a
    format of a million ``%(``)."""
    positional = args if isinstance(args, tuple) else (args,)
    mapping = args if isinstance(args, Mapping) else None
    total = len(fmt)
    n = 0
    i = fmt.find("%")
    while i >= 0:
        j = i + 1
        key: str | None = None
        if fmt.startswith("(", j):  # a mapping key runs to the next ")"
            k = fmt.find(")", j)
            if k < 0:
                return  # "incomplete format key": Python refuses the format itself
            key = fmt[j + 1 : k]
            j = k + 1
        while j < len(fmt) and fmt[j] in "-#0 +":
            j += 1
        widest = 0
        for part in range(2):  # the width, then the precision
            if part == 1:
                if not fmt.startswith(".", j):
                    break
                j += 1
            if fmt.startswith("*", j):
                raise _LimitExceeded(
                    "a '*' width in a %-format is not allowed", "write the width as a number"
                )
            start = j
            while j < len(fmt) and fmt[j].isdigit() and fmt[j].isascii():
                j += 1
            width = int(fmt[start:j]) if 0 < j - start <= 18 else 10**18 if j > start else 0
            if width > MAX_VALUE_CHARS:
                raise _too_big(width, "a %-format width")
            widest = max(widest, width)
        while j < len(fmt) and fmt[j] in "hlL":
            j += 1
        if fmt.startswith("%", j):
            j += 1
        else:
            if key is not None:
                value = mapping.get(key) if mapping is not None else None
            else:
                value = positional[n] if n < len(positional) else None
                n += 1
            # A float's digits are not in _size (%f of 1e308 has 309 of them).
            total += widest + (_FLOAT_CHARS if isinstance(value, float) else _size(value))
            if total > MAX_VALUE_CHARS:
                raise _too_big(total, "a %-format result")
        i = fmt.find("%", j)


#: The most characters a float formats to without a width or precision (``%f`` of
#: the largest float).
_FLOAT_CHARS = 320


def _sized(n: Any) -> int:
    """An integer argument that sets a size (a width, a count), or 0 when not an int."""
    return int(n) if isinstance(n, int) else 0


def _check_replace(s: str, old: Any, new: Any, count: Any = None) -> None:
    if not (isinstance(old, str) and isinstance(new, str)):
        return
    hits = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    size = len(s) + hits * (len(new) - len(old))
    if size > MAX_VALUE_CHARS:
        raise _too_big(size, "a replace() result")


def _check_wordwrap(value: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a wrap that would break a long word into short lines: textwrap copies
    the rest of the word at each break, about ``length ** 2 / (2 * width)``
    characters, which counts as characters built (``'-' * 500000`` at width 1 took
    seconds in one call, past any deadline)."""
    width = _sized(args[0] if args else kwargs.get("width", 79))
    breaks = args[1] if len(args) > 1 else kwargs.get("break_long_words", True)
    if not breaks:
        return
    longest = max(map(len, value.split()), default=0)
    copied = longest * longest // (2 * max(width, 1))
    if copied > MAX_WORK_CHARS:
        raise _LimitExceeded(
            f"wordwrap() at width {width} would copy about {copied:,} characters to break "
            f"a word of {longest:,}; the limit is {MAX_WORK_CHARS:,}",
            "wrap at a larger width, or pass break_long_words=false",
        )


def _check_join(items: list[Any], sep: Any, what: str = "a join() result") -> None:
    size = len(items) * (_size(sep) if sep else 0)
    for item in items:
        size += _size(item)
        if size > MAX_VALUE_CHARS:
            raise _too_big(size, what)


def _check_repeat(left: Any, right: Any) -> None:
    for seq, n in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
            size = _size(seq) * max(n, 0)
            if size > MAX_VALUE_CHARS:
                raise _too_big(size, "a repeated string or list")
            return
    if isinstance(left, int) and isinstance(right, int):
        _check_int(abs(left).bit_length() + abs(right).bit_length())


def _check_json(value: Any, indent: Any) -> None:
    """Refuse a ``tojson`` result over the limit before it is built: an indent repeats
    on every line, once per level of nesting, so it is at most :data:`MAX_JSON_INDENT`
    characters; then the JSON is counted as it is encoded, with the filter's own
    settings, and the count stops at the limit."""
    import json

    width = len(indent) if isinstance(indent, str) else _sized(indent)
    if width > MAX_JSON_INDENT:
        raise _LimitExceeded(
            f"a tojson() indent of {width:,} is over the limit of {MAX_JSON_INDENT}",
            "indent JSON by a few spaces",
        )
    size = 0
    try:
        for chunk in json.JSONEncoder(sort_keys=True, indent=indent).iterencode(value):
            size += len(chunk)
            if size > MAX_VALUE_CHARS:
                raise _too_big(size, "a tojson() result")
    except (TypeError, ValueError):
        return  # the filter itself refuses what cannot be encoded


# --------------------------------------------------------------------------- filters

#: Filters that could not loop or grow without bound, or are wrapped below. Left
#: out: ``random`` (prompts must be reproducible), ``pprint``, ``xmlattr``, and
#: ``striptags``/``urlize`` (regular expressions that backtrack).
_SAFE_FILTERS = (
    "abs",
    "attr",
    "batch",
    "capitalize",
    "center",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "filesizeformat",
    "first",
    "float",
    "forceescape",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "truncate",
    "unique",
    "upper",
    "urlencode",
    "wordcount",
    "wordwrap",
)


def _precheck_filter(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Check a filter's size arguments before it runs; may return a materialised value."""
    if name == "center" and _sized(args[0] if args else kwargs.get("width", 80)) > MAX_VALUE_CHARS:
        raise _too_big(_sized(args[0] if args else kwargs["width"]), "a center() width")
    if name == "indent" and isinstance(value, str):
        width = args[0] if args else kwargs.get("width", 4)
        pad = len(width) if isinstance(width, str) else _sized(width)
        size = len(value) + (value.count("\n") + 1) * pad
        if size > MAX_VALUE_CHARS:
            raise _too_big(size, "an indent() result")
    if name == "wordwrap" and isinstance(value, str):
        wrap = args[2] if len(args) > 2 else kwargs.get("wrapstring")
        size = len(value) * (1 + (len(wrap) if isinstance(wrap, str) else 1))
        if size > MAX_VALUE_CHARS:
            raise _too_big(size, "a wordwrap() result")
        _check_wordwrap(value, args, kwargs)
    if name == "format" and isinstance(value, str):
        _check_printf(value, kwargs or args)
    if name == "tojson":
        _check_json(value, args[0] if args else kwargs.get("indent"))
    if name == "replace" and isinstance(value, str) and len(args) >= 2:
        _check_replace(value, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count"))
    if name in ("batch", "slice"):
        n = _sized(args[0] if args else kwargs.get("linecount", kwargs.get("slices", 0)))
        if n > MAX_STEPS:
            raise _LimitExceeded(f"{name}({n:,}) is over the limit of {MAX_STEPS:,}")
    if name == "sum":
        start = args[1] if len(args) > 1 else kwargs.get("start", 0)
        if not isinstance(start, (int, float)):
            raise _LimitExceeded("sum() adds numbers; its start must be a number")
    if name == "join" and not isinstance(value, str):
        items = list(value) if isinstance(value, Iterable) else value
        _check_join(items if isinstance(items, list) else [], args[0] if args else "")
        return items
    return value


def _wrap_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    from jinja2.utils import _PassArg

    lead = 1 if _PassArg.from_obj(func) is not None else 0

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _step()
        value = args[lead] if len(args) > lead else None
        value = _precheck_filter(name, value, args[lead + 1 :], kwargs)
        if len(args) > lead:
            args = (*args[:lead], value, *args[lead + 1 :])
        result = func(*args, **kwargs)
        if isinstance(result, (str, list, tuple)):
            _step(_check_size(result, f"the result of the {name} filter"))
        elif isinstance(result, Iterator):  # batch, slice, map, select, ...: each item
            return _checked_items(result, f"an item of the {name} filter")
        return result

    return wrapper


def _checked_items(items: Iterator[Any], what: str) -> Iterator[Any]:
    """``items``, each checked as it is made (``batch(n, fill_with)`` makes lists)."""
    for item in items:
        _check_size(item, what)
        yield item


def _loop(iterable: Any) -> Iterator[Any]:
    """Every ``{% for %}`` iterates through this: one step per iteration."""
    for item in iterable:
        _step()
        yield item


def _concat(parts: list[Any]) -> str:
    """Every ``a ~ b`` goes through this, sizes checked before joining."""
    _check_join(parts, "", "a ~ result")
    text = "".join(str(p) for p in parts)
    _step(len(text))
    return text


def _literal(value: Any) -> Any:
    """Every list, tuple and dict written in the template (``[a, a, a]``) passes
    through this: it holds references, so it is cheap to build however large the
    values it repeats, but not to print, compare or encode."""
    _step()
    _check_size(value, "a list or dict written in the template")
    return value


def _finalize(value: Any) -> Any:
    """Every ``{{ expression }}`` passes through this before it becomes output."""
    _step(_check_size(value, "an output value"))
    return value


class _Range:
    """``range()``, refused beyond :data:`MAX_STEPS` items (its loops are budgeted too)."""

    def __call__(self, *args: int) -> range:
        values = range(*args)
        try:
            n = len(values)
        except OverflowError:
            n = MAX_STEPS + 1
        if n > MAX_STEPS:
            raise _LimitExceeded(
                f"range() of more than {MAX_STEPS:,} items: a template may loop at most "
                f"{MAX_STEPS:,} times"
            )
        return values

    def __repr__(self) -> str:
        return "range"


# --------------------------------------------------------------------------- environment

#: Read-only methods a template may call on strings, lists and dicts.
_STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "center",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "isidentifier",
        "islower",
        "isnumeric",
        "isprintable",
        "isspace",
        "istitle",
        "isupper",
        "join",
        "ljust",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "replace",
        "rfind",
        "rindex",
        "rjust",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
        "zfill",
    }
)
_SEQ_METHODS = frozenset({"count", "index"})
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})


def _check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str):  # str's methods, and Markup's (Python functions)
        return
    name = getattr(method, "__name__", "")
    if name in ("center", "ljust", "rjust", "zfill") and args:
        if _sized(args[0]) > MAX_VALUE_CHARS:
            raise _too_big(_sized(args[0]), f"a {name}() width")
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else None)
    elif name == "join" and args:
        items = args[0]
        _check_join(list(items) if isinstance(items, Iterable) else [], owner)


@functools.lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    """The one sandboxed environment (built on first use)."""
    from jinja2 import StrictUndefined
    from jinja2.filters import FILTERS
    from jinja2.runtime import Context, Macro
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

        def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
            if isinstance(obj, str):
                return attr in _STR_METHODS
            if isinstance(obj, (list, tuple)):
                return attr in _SEQ_METHODS
            if isinstance(obj, dict):
                return attr in _DICT_METHODS
            if isinstance(obj, (int, float)):
                return False
            return bool(super().is_safe_attribute(obj, attr, value))

        def wrap_str_format(self, value: Any) -> None:
            return None  # str.format is not in _STR_METHODS: refused as unsafe

        def call(
            __self,  # Jinja's own convention: no clash with keyword arguments
            __context: Context,
            __obj: Any,
            *args: Any,
            **kwargs: Any,
        ) -> Any:
            _step()
            _check_method(__obj, args, kwargs)
            if isinstance(__obj, Macro):  # the arguments it packs into varargs, kwargs
                known = len(__obj.arguments)
                _check_size(args[known:], "a macro's varargs")
                _check_size(kwargs, "a macro's kwargs")
            result = super().call(__context, __obj, *args, **kwargs)
            if isinstance(result, (str, list, tuple)):
                _step(_check_size(result, "a call's result"))
            return result

        def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
            _step()
            if operator == "*":
                _check_repeat(left, right)
            elif operator == "**" and isinstance(left, int) and isinstance(right, int):
                if right > 0 and abs(left) > 1:
                    _check_int(abs(left).bit_length() * min(right, MAX_INT_BITS + 1))
            elif operator == "+":
                if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                    size = _size(left) + _size(right)
                    if size > MAX_VALUE_CHARS:
                        raise _too_big(size)
                elif isinstance(left, int) and isinstance(right, int):
                    _check_int(max(abs(left).bit_length(), abs(right).bit_length()) + 1)
            elif operator == "%" and isinstance(left, str):
                _check_printf(left, right)
            result = super().call_binop(context, operator, left, right)
            if isinstance(result, (str, list, tuple)):
                _step(len(result))
            return result

    env = Sandbox(
        loader=None,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_finalize,
        auto_reload=False,
        cache_size=0,
    )
    env.globals.clear()
    env.globals["range"] = _Range()
    env.filters = {name: _wrap_filter(name, FILTERS[name]) for name in _SAFE_FILTERS}
    env.filters[_LOOP] = _loop
    env.filters[_CONCAT] = _concat
    env.filters[_LITERAL] = _literal
    return env


# Internal filter names: a template cannot spell them (':' is not a name character).
_LOOP = "specc:loop"
_CONCAT = "specc:concat"
_LITERAL = "specc:literal"


# --------------------------------------------------------------------------- compile


def _static_problems(ast: Any, allowed: frozenset[str]) -> list[Problem]:
    """What a template may not do, found before it runs: other templates, Jinja's
    globals, private attributes. One problem per line, the most telling one (in
    ``lipsum.__globals__`` that is lipsum)."""
    from jinja2 import nodes

    found: list[tuple[int, int, Problem]] = []  # (line, rank, problem)
    verbs = {nodes.Extends: "extend", nodes.Include: "include", nodes.Import: "import"}
    for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        verb = verbs.get(type(node), "import")
        hint = "write the text into this template; specc templates have no loader"
        found.append(
            (
                node.lineno,
                0,
                Problem(UNSAFE, f"a template cannot {verb} other templates", node.lineno, hint),
            )
        )
    assigned = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for node in ast.find_all(nodes.Name):
        name = node.name
        if node.ctx == "load" and name in _JINJA_GLOBALS and name not in allowed | assigned:
            hint = (
                "specc templates have none of Jinja's default globals; they see the "
                "proposition's variables and range() only"
            )
            message = f"'{name}' is not available in specc templates"
            found.append((node.lineno, 1, Problem(UNSAFE, message, node.lineno, hint)))
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        key = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            key = node.arg.value
        if isinstance(key, str) and key.startswith("_"):
            hint = "templates may read the variables specc passes, not Python internals"
            message = f"the attribute '{key}' is not allowed in a template"
            found.append((node.lineno, 2, Problem(UNSAFE, message, node.lineno, hint)))
    found.sort(key=lambda f: (f[0], f[1]))
    return [p for i, (line, _, p) in enumerate(found) if i == 0 or found[i - 1][0] != line]


def _instrument(ast: Any) -> None:
    """Route every loop, every ``~`` and every list, tuple and dict literal through
    the budget hooks."""
    from jinja2 import nodes

    for loop in ast.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, _LOOP, [], [], None, None, lineno=loop.lineno)
    for parent in [ast, *ast.find_all(nodes.Node)]:
        for field, child in parent.iter_fields():
            if isinstance(child, nodes.Node):
                setattr(parent, field, _hooked(child))
            elif isinstance(child, list):
                for i, item in enumerate(child):
                    if isinstance(item, nodes.Node):
                        child[i] = _hooked(item)


def _hooked(node: Any) -> Any:
    """``node`` routed through its budget hook, if it has one."""
    from jinja2 import nodes

    if isinstance(node, nodes.Concat):
        return _concat_node(node)
    if isinstance(node, (nodes.List, nodes.Dict)) or (
        isinstance(node, nodes.Tuple) and node.ctx == "load"
    ):
        return nodes.Filter(node, _LITERAL, [], [], None, None, lineno=node.lineno)
    return node


def _concat_node(node: Any) -> Any:
    from jinja2 import nodes

    items = nodes.List(node.nodes, lineno=node.lineno)  # shared: nested ~ are replaced too
    return nodes.Filter(items, _CONCAT, [], [], None, None, lineno=node.lineno)


@functools.lru_cache(maxsize=64)
def compile_template(source: str, allowed: frozenset[str]) -> Template:
    """Parse, check and compile a template once; raises :class:`TemplateFailure`.

    ``allowed`` names the variables specc will pass (they may shadow nothing unsafe).
    """
    from jinja2 import TemplateSyntaxError

    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateFailure(
            [
                Problem(
                    UNSAFE,
                    f"the template has {len(source):,} characters; the limit is "
                    f"{MAX_TEMPLATE_CHARS:,}",
                    None,
                )
            ]
        )
    env = environment()
    try:
        ast = env.parse(source)
        problems = _static_problems(ast, allowed)
        if problems:
            raise TemplateFailure(problems)
        _instrument(ast)
        return env.from_string(ast)
    except TemplateSyntaxError as exc:  # includes an unknown filter, found when compiling
        message = exc.message or "syntax error"
        hint = _FILTERS_HINT if "No filter named" in message else "templates use Jinja2 syntax"
        raise TemplateFailure([Problem(ERROR, message, exc.lineno, hint)]) from None
    except TemplateFailure:
        raise
    except Exception as exc:  # e.g. an integer literal too long to convert
        raise TemplateFailure([Problem(ERROR, _describe(exc), None)]) from None


_FILTERS_HINT = (
    "specc templates have Jinja's filters but random, pprint, striptags, urlize and xmlattr"
)


# --------------------------------------------------------------------------- render


def _template_line(exc: BaseException) -> int | None:
    """The template line an exception was raised at (Jinja rewrites tracebacks so
    that template frames carry template line numbers)."""
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line if isinstance(line, int) else None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def render(template: Template, variables: Mapping[str, Any]) -> str:
    """Render within the budget; raises :class:`TemplateFailure`."""
    from jinja2.exceptions import SecurityError, TemplateError

    budget = _Budget()
    token = _BUDGET.set(budget)
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(**variables):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise _LimitExceeded(
                    f"the prompt is longer than {MAX_OUTPUT_CHARS:,} characters",
                    "shorten the few-shot examples",
                )
            budget.step()
            out.append(chunk)
        if budget.failed is not None:  # swallowed by something inside the template
            raise budget.failed
        return "".join(out)
    except _LimitExceeded as exc:
        raise TemplateFailure([Problem(UNSAFE, str(exc), _template_line(exc), exc.hint)]) from None
    except SecurityError as exc:
        raise TemplateFailure(
            [
                Problem(
                    UNSAFE,
                    _describe(exc),
                    _template_line(exc),
                    "templates may read the variables specc passes, not Python internals",
                )
            ]
        ) from None
    except RecursionError as exc:
        raise TemplateFailure(
            [Problem(UNSAFE, "the template recursed too deeply", _template_line(exc))]
        ) from None
    except MemoryError as exc:
        raise TemplateFailure(
            [Problem(UNSAFE, "the template ran out of memory", _template_line(exc))]
        ) from None
    except TemplateError as exc:
        raise TemplateFailure([Problem(ERROR, _describe(exc), _template_line(exc))]) from None
    except Exception as exc:  # TypeError, ValueError, ZeroDivisionError, ... in the template
        raise TemplateFailure(
            [Problem(ERROR, f"{type(exc).__name__}: {_describe(exc)}", _template_line(exc))]
        ) from None
    finally:
        _BUDGET.reset(token)
