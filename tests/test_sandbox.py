"""The template sandbox: what a template can still do, and every way out refused."""

from __future__ import annotations

import pytest

from specc.sandbox import (
    MAX_STEPS,
    MAX_VALUE_CHARS,
    TemplateFailure,
    compile_template,
    environment,
    render,
)

NAMES = frozenset({"question", "examples"})
VALUES = {"question": "Is it kind?", "examples": ["e1", "e2"]}


def run(source: str) -> str:
    return render(compile_template(source, NAMES), VALUES)


@pytest.mark.parametrize(
    ("source", "want"),
    [
        ("{{ question|upper }}", "IS IT KIND?"),
        ("{% for e in examples %}{{ loop.index }}{{ e }};{% endfor %}", "1e1;2e2;"),
        ("{{ examples|map('upper')|join(', ') }}", "E1, E2"),
        ("{{ examples|select|list|length }} {{ examples|last }}", "2 e2"),
        ("{{ '%-4s|%d' % ('ab', 3) }} {{ '%s!'|format('x') }}", "ab  |3 x!"),
        ("{{ 'x'|center(5) }}|{{ 'a\nb'|indent(2, true) }}", "  x  |  a\n  b"),
        ("{{ question.replace('kind', 'nice').lower() }}", "is it nice?"),
        ("{{ range(3)|list }} {{ 2 ** 10 }} {{ 7 // 2 }}", "[0, 1, 2] 1024 3"),
        (
            "{% macro m(a) %}<{{ a }}{{ caller() }}>{% endmacro %}{% call m(1) %}c{% endcall %}",
            "<1c>",
        ),
        ("{% set xs = examples + ['e3'] %}{{ xs|reverse|join }}", "e3e2e1"),
        ("{{ {'b': 1, 'a': 2}|dictsort }}", "[('a', 2), ('b', 1)]"),
        ("{{ range }}", "range"),  # no memory address in a prompt
        (
            "{% macro m(a) %}{{ a }}{{ varargs|join }}{{ kwargs|dictsort }}{% endmacro %}"
            "{{ m(1, 2, 3, k=4) }} {% for a, b in [(1, 2)] %}{{ a + b }}{% endfor %} "
            "{{ [1, 2]|batch(1)|list }} {{ {'a': [1]}|tojson(indent=1) }}",
            "123[('k', 4)] 3 [[1], [2]] {\n \"a\": [\n  1\n ]\n}",
        ),
    ],
)
def test_ordinary_templates_render(source: str, want: str) -> None:
    assert run(source) == want


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        ("{{ lipsum.__globals__ }}", 1, "'lipsum' is not available"),
        ("ok\n{{ cycler.__init__.__globals__.os }}", 2, "'cycler' is not available"),
        ("{{ namespace() }}", 1, "'namespace' is not available"),
        ("{{ dict(a=1) }}", 1, "'dict' is not available"),
        ("\n\n{{ self.__init__ }}", 3, "attribute '__init__'"),
        ("{{ examples['__class__'] }}", 1, "attribute '__class__'"),
        ("{{ question|attr('__class__') }}", 1, "unsafe"),
        ("{{ question['__cl' ~ 'ass__'] }}", 1, "unsafe"),
        ("{{ question.format(1) }}", 1, "'format' of 'str' object is unsafe"),
        ("{{ question.encode() }}", 1, "unsafe"),
        ("{{ (1).to_bytes(10**9, 'big') }}", 1, "unsafe"),
        ('{% include "x" %}', 1, "cannot include"),
        ('{% extends "x" %}', 1, "cannot extend"),
        ('{% from "x" import y %}', 1, "cannot import"),
        ("{% for i in range(10**10) %}{% endfor %}", 1, "range() of more than"),
        (
            "a\n{% for i in range(MAXS) %}{% for j in range(MAXS) %}{% endfor %}{% endfor %}",
            2,
            "steps",
        ),
        ("{% for c in question * 10000 %}{% endfor %}", 1, "steps"),
        ("{{ 'x' * 10**9 }}", 1, "repeated string"),
        ("{{ [examples] * 10**9 }}", 1, "repeated string or list"),
        ("{{ 2 ** 5000 }}", 1, "integer"),
        ("{{ '%999999999d' % 1 }}", 1, "%-format width"),
        ("{{ '%*d' % (5, 1) }}", 1, "'*' width"),
        ("{{ '%99999999999999999999999d'|format(1) }}", 1, "%-format width"),
        ("{{ 'x'|center(10**9) }}", 1, "center() width"),
        ("{{ question.rjust(10**9) }}", 1, "rjust() width"),
        ("{{ ('x' * 1000)|indent(10**7) }}", 1, "indent() result"),
        ("{{ ('ab' * 1000)|replace('', 'x' * 1000) }}", 1, "replace() result"),
        ("{{ (['x' * 2**18] * 3)|join('y' * 2**18) }}", 1, "join() result"),
        ("{{ examples|slice(10**6)|list }}", 1, "slice("),
        ("{{ [[1]]|sum(start=[]) }}", 1, "sum() adds numbers"),
        ("{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('x') }}", 1, "~ result"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", 1, "recursed too deeply"),
        (
            "{% set s %}{% for i in range(99) %}{{ 'x' * 10**6 }}{% endfor %}{% endset %}",
            1,
            "built",
        ),
        ("{% for i in range(99999) %}{{ 'x' * 99 }}{% endfor %}", None, "prompt is longer"),
        # Values built from references to one large value: cheap to build, each must
        # be refused before it is printed, encoded or compared.
        ("{% set a = 'x' * 10**6 %}{{ [a, a]|string }}", 1, "list or dict written"),
        ("{% set a = 'x' * 10**6 %}{{ {1: a, 2: a}|tojson }}", 1, "list or dict written"),
        (
            "{% macro f(a, b, n) %}{% if n %}{{ f([a, a], [b, b], n - 1) }}"
            "{% else %}{{ a == b }}{% endif %}{% endmacro %}{{ f([1], [1], 40) }}",
            1,
            "list or dict written",
        ),
        ("{% set a = 'x' * 10**6 %}{{ ('%(a)s' * 200)|format(a=a) }}", 1, "%-format result"),
        ("{% set a = 'x' * 10**6 %}{{ ('%(a)s' * 200) % {'a': a} }}", 1, "%-format result"),
        ("{{ ('%.300f' * 9999) % ((1e300,) * 9999) }}", 1, "%-format result"),
        ("{{ ('x'|safe).center(10**9) }}", 1, "center() width"),
        ("{{ ('x'|safe).zfill(10**9) }}", 1, "zfill() width"),
        ("{{ [1]|tojson(indent=10**9) }}", 1, "tojson() indent"),
        ("{{ ('-' * 500000)|wordwrap(1) }}", 1, "wordwrap() at width 1 would copy"),
        ("{{ range(20000)|list|tojson(indent=64) }}", 1, "tojson() result"),
        ("{{ ([1]|batch(200, 'x' * 10**6))|map('string')|list }}", 1, "item of the batch"),
        (
            "{% macro m() %}{{ varargs|string }}{% endmacro %}{% set a = 'x' * 10**6 %}"
            "{{ m(a, a) }}",
            1,
            "macro's varargs",
        ),
        (
            "{% macro m() %}{{ kwargs|string }}{% endmacro %}{% set a = 'x' * 10**6 %}"
            "{{ m(k=a, j=a) }}",
            1,
            "macro's kwargs",
        ),
    ],
)
def test_unsafe_templates_are_e013_at_their_line(source: str, line: int | None, words: str) -> None:
    source = source.replace("MAXS", str(MAX_STEPS))
    with pytest.raises(TemplateFailure) as exc:
        run(source)
    (problem,) = exc.value.problems
    assert problem.code == "E013", problem
    assert problem.line == line and words in problem.message, problem


def test_ordinary_errors_are_e012() -> None:
    for source, words in [
        ("{{ questoin }}", "'questoin' is undefined"),
        ("{% if question %}", "Unexpected end of template"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ question|random }}", "No filter named 'random'"),
    ]:
        with pytest.raises(TemplateFailure) as exc:
            run(source)
        assert [p.code for p in exc.value.problems] == ["E012"] and words in str(exc.value)


def test_only_range_is_global_and_unsafe_filters_are_gone() -> None:
    env = environment()
    assert list(env.globals) == ["range"]
    assert env.loader is None
    assert not {"random", "pprint", "striptags", "urlize", "xmlattr"} & set(env.filters)


def test_a_percent_format_is_scanned_without_backtracking() -> None:
    """A million ``%(`` with one ``)`` at the end: a regex scan would be quadratic."""
    source = "{{ (f ~ ')s')|format(a=1) }}"
    fmt = "%(" * (MAX_VALUE_CHARS // 4)
    with pytest.raises(TemplateFailure, match=r"format key|KeyError"):
        render(compile_template(source, frozenset({"f"})), {"f": fmt})


def test_limits_are_per_render() -> None:
    """A render that stops does not charge the next one."""
    template = compile_template("{% for i in range(60000) %}{% endfor %}ok", NAMES)
    assert render(template, VALUES) == "ok"
    assert render(template, VALUES) == "ok"
