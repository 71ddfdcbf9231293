"""specc fmt: canonical layout, comments kept, idempotent, meaning unchanged."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from golden import FIXTURES, ROOT, assert_golden
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import comment_texts, names, specs, string_values

from specc import ir
from specc.cli import main
from specc.errors import SpecError
from specc.formatter import WIDTH, format_expr, format_file, format_source, format_string
from specc.parser import parse_source

FMT = FIXTURES / "fmt"
GOLDEN_CASES = sorted(p for p in FMT.glob("*.rbr") if not p.name.endswith(".expected.rbr"))
POLICIES = sorted([*(ROOT / "policies").glob("*.rbr"), *(ROOT / "policies" / "lib").glob("*.rbr")])


def parsed(text: str) -> ir.SourceFile:
    source, diags = parse_source(text, "t.rbr")
    assert diags == [], diags
    return source


def meaning(text: str) -> tuple[object, list[str]]:
    """What must not change: the items without spans, the comments in order."""
    source = parsed(text)
    return ir.strip_spans([i.model_dump() for i in source.items]), [c.text for c in source.comments]


def assert_canonical(text: str) -> str:
    """Format, and check the three promises: same meaning, same comments, idempotent."""
    out = format_source(text, "t.rbr")
    assert meaning(out) == meaning(text)
    assert format_source(out, "t.rbr") == out
    assert out == "" or (out.endswith("\n") and not out.endswith("\n\n"))
    return out


# --------------------------------------------------------------------------- properties

_PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(specs())
def test_random_specs_keep_meaning_and_are_idempotent(text: str) -> None:
    assert_canonical(text)


@_PROPERTY
@given(specs(), st.data())
def test_every_comment_survives_in_order(text: str, data: st.DataObject) -> None:
    extra = data.draw(comment_texts)
    text = f"{extra}\n{text}\n{extra}\n"
    out = format_source(text, "t.rbr")
    before = [c.text for c in parsed(text).comments]
    after = [c.text for c in parsed(out).comments]
    assert after == before and before[0] == before[-1] == extra.rstrip()


@settings(max_examples=300, deadline=None)
@given(string_values, st.sampled_from(["", "  ", "    "]))
def test_string_literals_read_back_exactly(value: str, indent: str) -> None:
    lines = format_string(value, "question = ", indent + "  ")
    text = "proposition p {\n" + indent + "  " + "\n".join(lines) + "\n}\n"
    (prop,) = parsed(text).items
    assert isinstance(prop, ir.Proposition) and prop.question == value
    assert (len(lines) > 1) == ("\n" in value.rstrip("\n") and lines[0].endswith('"""'))


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="utf-8")))
def test_any_text_reads_back_exactly_in_an_example(value: str) -> None:
    text = f'proposition p {{ example yes {{ completion "x" because {_lit(value)} }} }}'
    out = format_source(text, "t.rbr")
    (prop,) = parsed(out).items
    assert isinstance(prop, ir.Proposition) and prop.examples[0].because == value


def _lit(value: str) -> str:
    return format_string(value, block=False)[0]


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0, 1e15, allow_nan=False),
    st.floats(0, 1, allow_nan=False),
    st.integers(1, 10**15),
)
def test_numbers_read_back_exactly(margin: float, limit: float, steps: int) -> None:
    text = (
        f"reward {{ margin = {margin!r} steps = {steps} }}\n"
        f"tiers {{ ideal margin {margin!r} }}\n"
        f"constraint c {{ cost = a limit = {limit!r} }}\n"
    )
    assert_canonical(text)


def _exprs() -> st.SearchStrategy[ir.Expr]:
    s = ir.Span.unknown("t.rbr")
    leaves = st.one_of(
        names.map(lambda n: ir.Ref(span=s, name=n)),
        st.booleans().map(lambda b: ir.Const(span=s, value=b)),
    )

    def extend(children: st.SearchStrategy[ir.Expr]) -> st.SearchStrategy[ir.Expr]:
        many = st.lists(children, min_size=2, max_size=4).map(tuple)
        return st.one_of(
            children.map(lambda c: ir.Not(span=s, operand=c)),
            many.map(lambda ops: ir.And(span=s, operands=ops)),
            many.map(lambda ops: ir.Or(span=s, operands=ops)),
        )

    return st.recursive(leaves, extend, max_leaves=16)


@settings(max_examples=150, deadline=None)
@given(_exprs(), st.integers(0, 90))
def test_expressions_keep_their_tree_with_the_fewest_parentheses(
    expr: ir.Expr, column: int
) -> None:
    lines = format_expr(expr, column, 0)
    (derived,) = parsed("derived x = " + "\n".join(lines)).items
    assert isinstance(derived, ir.Derived)
    assert ir.strip_spans(derived.expr.model_dump()) == ir.strip_spans(expr.model_dump())
    if len(lines) > 1:
        return  # broken lines may add parentheses to show the nesting
    flat = lines[0]
    # No parentheses that could go: removing any pair changes the tree.
    for i, ch in enumerate(flat):
        if ch == "(":
            depth, j = 0, i
            for j in range(i, len(flat)):
                depth += {"(": 1, ")": -1}.get(flat[j], 0)
                if depth == 0:
                    break
            shorter = flat[:i] + flat[i + 1 : j] + flat[j + 1 :]
            again, diags = parse_source("derived x = " + shorter, "t.rbr")
            if not diags:
                (d2,) = again.items
                assert isinstance(d2, ir.Derived)
                assert ir.strip_spans(d2.expr.model_dump()) != ir.strip_spans(expr.model_dump())


# --------------------------------------------------------------------------- layout rules


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("derived x = ((a and b)) or c", "derived x = a and b or c"),
        ("derived x = a and (b or c)", "derived x = a and (b or c)"),
        ("derived x = not (a and b)", "derived x = not (a and b)"),
        ("derived x = not (not a)", "derived x = not not a"),
        ("derived x = a and (b and c)", "derived x = a and (b and c)"),
        ("derived x = (a or b) or c", "derived x = (a or b) or c"),
        ("derived x = (true) and not (false)", "derived x = true and not false"),
    ],
)
def test_minimal_parentheses(source: str, expected: str) -> None:
    assert assert_canonical(source) == expected + "\n"


def test_long_expressions_break_after_operators() -> None:
    names = [f"proposition_number_{i}" for i in range(8)]
    out = assert_canonical("derived x = " + " and ".join(names))
    lines = out.splitlines()
    assert lines[0] == "derived x = proposition_number_0 and"
    assert lines[1:] == [f"    proposition_number_{i} and" for i in range(1, 7)] + [
        "    proposition_number_7"
    ]
    assert all(len(line) <= WIDTH for line in lines)


def test_lists_break_one_item_a_line_with_a_trailing_comma() -> None:
    words = ", ".join(f'"keyword number {i}"' for i in range(8))
    out = assert_canonical(f"proposition p {{ match keywords [{words}] }}")
    assert out.splitlines()[1:4] == [
        "  match keywords [",
        '    "keyword number 0",',
        '    "keyword number 1",',
    ]
    assert out.splitlines()[-2:] == ["  ]", "}"]
    short = assert_canonical('proposition p { match keywords ["a",\n"b",] }')
    assert short == 'proposition p {\n  match keywords ["a", "b"]\n}\n'


def test_multi_line_strings_become_blocks_one_level_deeper() -> None:
    out = assert_canonical('proposition p { question = "Is it\\nrude?" }')
    assert out == 'proposition p {\n  question = """\n    Is it\n    rude?\n  """\n}\n'


@pytest.mark.parametrize(
    "value",
    [
        "  every\n  line indented",
        "a line\n   \nof spaces",
        "trailing spaces  \nhere",
        "one line with a newline\n",
        "\n",
    ],
)
def test_strings_a_block_cannot_reproduce_stay_quoted(value: str) -> None:
    assert format_string(value, "q = ", "  ") == ["q = " + _lit(value)]
    assert "\\n" in _lit(value)


def test_quotes_and_backslashes_in_blocks() -> None:
    value = 'say """hi""" \\ and ""\n"quoted" line\nend"'
    lines = format_string(value, "question = ", "  ")
    assert lines[1:3] == ['    say \\"""hi\\""" \\\\ and ""', '    "quoted" line']
    text = "proposition p {\n  " + "\n".join(lines) + "\n}"
    (prop,) = parsed(text).items
    assert isinstance(prop, ir.Proposition) and prop.question == value


def test_numbers_and_limits() -> None:
    out = assert_canonical(
        "constraint a { cost = x limit = 0.02 } constraint b { cost = x limit = 2.5% }"
        " constraint c { cost = x limit = 0.123 } reward { margin = 1 lr = 1E-5 steps = 010 }"
    )
    assert "limit = 2%" in out and "limit = 2.5%" in out and "limit = 0.123\n" in out
    assert "margin = 1.0" in out and "lr = 1e-05" in out and "steps = 10" in out


def test_alignment_of_tiers_and_rules() -> None:
    out = assert_canonical(
        "tiers { ideal margin 1 less_good margin .5 worst } "
        "response_type r { ideal when a less_good when b worst otherwise }"
    )
    assert "  ideal     margin 1.0\n  less_good margin 0.5\n  worst\n" in out
    assert "  ideal     when a\n  less_good when b\n  worst     otherwise\n" in out


def test_blank_lines() -> None:
    text = (
        'policy "p" version "1"\nimport "a.rbr"\n\n\n\nimport "b.rbr"\n'
        'derived x = a\nderived y = b\nproposition p { question = "q" }\n'
        "response_type r {\n\n  ideal when a\n\n\n  bad otherwise\n\n}\n\n\n"
    )
    assert assert_canonical(text) == (
        'policy "p" version "1"\nimport "a.rbr"\n\nimport "b.rbr"\n'
        'derived x = a\nderived y = b\n\nproposition p {\n  question = "q"\n}\n\n'
        "response_type r {\n  ideal when a\n\n  bad   otherwise\n}\n"
    )


def test_comment_placement() -> None:
    text = (
        "# top\n"
        "derived x = a  # after x\n"
        "# before y\n"
        "derived y = a # inside y\n  and b\n"
        "reward { # open\n  margin = 1 # after margin\n  # end of reward\n} # after reward\n"
        "# end of file\n"
    )
    assert assert_canonical(text) == (
        "# top\n"
        "derived x = a  # after x\n"
        "# before y\n"
        "# inside y\n"
        "derived y = a and b\n\n"
        "reward {  # open\n  margin = 1.0  # after margin\n  # end of reward\n}  # after reward\n"
        "# end of file\n"
    )


def test_adjacent_trailing_comments_line_up() -> None:
    out = assert_canonical('import "a.rbr" # one\nimport "long/b.rbr" # two\n')
    assert out == 'import "a.rbr"       # one\nimport "long/b.rbr"  # two\n'


def test_empty_and_comment_only_files() -> None:
    assert assert_canonical("") == ""
    assert assert_canonical("\n\n  \n") == ""
    assert assert_canonical("# only\n\n\n# comments") == "# only\n\n# comments\n"


def test_empty_blocks() -> None:
    assert assert_canonical("reward {} derived x = a {}") == "reward {}\nderived x = a\n"
    assert assert_canonical("derived x = a { # c\n}") == "derived x = a {  # c\n}\n"


def test_crlf_input_gives_lf_output() -> None:
    text = 'policy "p" version "1"\r\n# c\r\nderived x = a\r\n'
    assert assert_canonical(text) == 'policy "p" version "1"\n# c\nderived x = a\n'


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("derived x = ", "E001"),
        ('proposition p { question = "open }', "E002"),
        ("reward { colour = 1 }", "E010"),
        ('proposition p { question = "\\q" }', "E008"),
        ("constraint c { cost = a cost = b limit = 1% }", "E102"),
        ('proposition p { example yes { completion "a" because "x" because "y" } }', "E102"),
    ],
)
def test_text_that_does_not_parse_cleanly_is_refused(text: str, code: str) -> None:
    with pytest.raises(SpecError) as info:
        format_source(text, "t.rbr")
    assert info.value.diagnostics[0].code == code


# --------------------------------------------------------------------------- golden files


@pytest.mark.parametrize("case", GOLDEN_CASES, ids=lambda p: p.stem)
def test_golden(case: Path) -> None:
    text = case.read_text(encoding="utf-8")
    out = assert_canonical(text)
    assert_golden(case.with_suffix(".expected.rbr"), out)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_example_policies(policy: Path) -> None:
    assert_canonical(policy.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- files and CLI


def test_format_file_writes_atomically_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "p.rbr"
    path.write_text("derived x = (a)", encoding="utf-8")
    path.chmod(0o640)
    result = format_file(path, write=False)
    assert result.changed and path.read_text(encoding="utf-8") == "derived x = (a)"
    assert "-derived x = (a)\n\\ No newline at end of file\n+derived x = a\n" in result.diff()
    result = format_file(path)
    assert path.read_text(encoding="utf-8") == "derived x = a\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["p.rbr"]  # no temporary file left


def test_format_file_leaves_canonical_files_alone(tmp_path: Path) -> None:
    path = tmp_path / "p.rbr"
    path.write_text("derived x = a\n", encoding="utf-8")
    before = path.stat()
    result = format_file(path)
    assert not result.changed and result.diff() == ""
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_format_file_through_a_symlink_rewrites_the_target(tmp_path: Path) -> None:
    target = tmp_path / "real.rbr"
    target.write_text("derived x = (a)", encoding="utf-8")
    link = tmp_path / "link.rbr"
    link.symlink_to(target)
    format_file(link)
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "derived x = a\n"


def test_format_file_reports_unreadable_and_broken_files(tmp_path: Path) -> None:
    missing = format_file(tmp_path / "nope.rbr")
    assert [d.code for d in missing.diagnostics] == ["E004"] and not missing.changed
    binary = tmp_path / "bin.rbr"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert [d.code for d in format_file(binary).diagnostics] == ["E003"]
    broken = tmp_path / "broken.rbr"
    broken.write_text("derived x = (a", encoding="utf-8")
    result = format_file(broken)
    assert [d.code for d in result.diagnostics] == ["E001"] and not result.changed
    assert broken.read_text(encoding="utf-8") == "derived x = (a"


def test_cli_fmt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messy = tmp_path / "messy.rbr"
    messy.write_text("derived  x = (a)\n", encoding="utf-8")
    tidy = tmp_path / "tidy.rbr"
    tidy.write_text("derived x = a\n", encoding="utf-8")
    broken = tmp_path / "broken.rbr"
    broken.write_text("derived x =\n", encoding="utf-8")

    assert main(["fmt", "--check", str(tidy)]) == 0
    assert main(["fmt", "--check", str(messy), str(tidy)]) == 1
    assert "would reformat" in capsys.readouterr().err
    assert main(["fmt", "--diff", str(messy)]) == 0
    assert "+derived x = a" in capsys.readouterr().out
    assert messy.read_text(encoding="utf-8") == "derived  x = (a)\n"
    assert main(["fmt", str(messy)]) == 0
    assert messy.read_text(encoding="utf-8") == "derived x = a\n"
    assert main(["fmt", str(broken)]) == 1
    assert "E001" in capsys.readouterr().err
    assert broken.read_text(encoding="utf-8") == "derived x =\n"


def test_cli_fmt_write_failure_is_a_usage_error_and_leaves_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "p.rbr"
    path.write_text("derived x = (a)", encoding="utf-8")

    def refuse(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("specc.formatter.os.replace", refuse)
    assert main(["fmt", str(path)]) == 2
    assert path.read_text(encoding="utf-8") == "derived x = (a)"
    assert [p.name for p in tmp_path.iterdir()] == ["p.rbr"]  # the temporary file is gone
