"""Robustness: broken, hostile and huge inputs only ever give diagnostics.

Random mutations of the example policies (deleted, duplicated and swapped tokens,
truncation, inserted bytes, unterminated strings, binary garbage) and hand-made
extremes (10,000-deep parentheses, a 50 MB file, missing imports, import cycles) go
through ``check_file``, the ``specc check`` and ``specc fmt --check`` commands
in-process, and ``format_source``. Each must end in diagnostics and an exit code of
0, 1 or 2: never another exception, never exit 70 (internal error).

``SPECC_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py`` fuzzes longer than the
default 50 examples a test.

Bugs the fuzzing found in the parser and loader are kept as regression tests at
the end (a new one goes in as ``xfail(strict=True)`` naming the bug until fixed).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from pathlib import Path

import pytest
from golden import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import specs

from specc.checker import check_file
from specc.cli import main
from specc.errors import CODES, SpecError
from specc.formatter import format_source
from specc.parser import parse_source

POLICY_FILES = sorted(
    [*(ROOT / "policies").glob("*.rbr"), *(ROOT / "policies" / "lib").glob("*.rbr")]
)
POLICY_BYTES = [p.read_bytes() for p in POLICY_FILES]

_TOKEN = re.compile(rb'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*|\w+|\s+|.', re.S)

_FUZZ = settings(
    max_examples=int(os.environ.get("SPECC_FUZZ_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of policies/, so that mutated files can import the libraries."""
    root = tmp_path_factory.mktemp("fuzz") / "policies"
    shutil.copytree(ROOT / "policies", root, ignore=shutil.ignore_patterns("data"))
    return root


def _cli(*argv: str) -> int:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    if code == 70:  # rerun with --debug so that the failure shows the traceback
        main(["--debug", *argv])
    return code


def exercise(path: Path) -> None:
    """Every entry point on one file: diagnostics and clean exit codes only."""
    report = check_file(path)
    assert all(d.code in CODES for d in report.diagnostics)
    assert _cli("check", str(path)) in (0, 1, 2)
    assert _cli("fmt", "--check", str(path)) in (0, 1, 2)
    assert _cli("test", str(path)) in (0, 1, 2)
    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        out = format_source(text, path.name)
    except SpecError as exc:
        assert exc.diagnostics and all(d.code in CODES for d in exc.diagnostics)
    else:
        assert format_source(out, path.name) == out


def _write(workspace: Path, data: bytes) -> Path:
    path = workspace / "fuzz.rbr"
    path.write_bytes(data)
    return path


def _tokens(data: bytes) -> list[bytes]:
    return [m.group(0) for m in _TOKEN.finditer(data)]


_policies = st.sampled_from(POLICY_BYTES)


# --------------------------------------------------------------------------- mutations


@_FUZZ
@given(_policies, st.data())
def test_deleted_tokens(workspace: Path, policy: bytes, data: st.DataObject) -> None:
    toks = _tokens(policy)
    for _ in range(data.draw(st.integers(1, 3))):
        del toks[data.draw(st.integers(0, len(toks) - 1))]
    exercise(_write(workspace, b"".join(toks)))


@_FUZZ
@given(_policies, st.data())
def test_duplicated_tokens(workspace: Path, policy: bytes, data: st.DataObject) -> None:
    toks = _tokens(policy)
    i = data.draw(st.integers(0, len(toks) - 1))
    toks.insert(i, toks[i])
    exercise(_write(workspace, b"".join(toks)))


@_FUZZ
@given(_policies, st.data())
def test_swapped_tokens(workspace: Path, policy: bytes, data: st.DataObject) -> None:
    toks = _tokens(policy)
    i = data.draw(st.integers(0, len(toks) - 1))
    j = data.draw(st.integers(0, len(toks) - 1))
    toks[i], toks[j] = toks[j], toks[i]
    exercise(_write(workspace, b"".join(toks)))


@_FUZZ
@given(_policies, st.data())
def test_truncated(workspace: Path, policy: bytes, data: st.DataObject) -> None:
    exercise(_write(workspace, policy[: data.draw(st.integers(0, len(policy)))]))


@_FUZZ
@given(_policies, st.data())
def test_inserted_bytes(workspace: Path, policy: bytes, data: st.DataObject) -> None:
    out = bytearray(policy)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(out)))
        out[at:at] = data.draw(st.binary(min_size=1, max_size=6))
    exercise(_write(workspace, bytes(out)))


@_FUZZ
@given(_policies, st.data())
def test_unterminated_strings(workspace: Path, policy: bytes, data: st.DataObject) -> None:
    toks = _tokens(policy)
    strings = [i for i, t in enumerate(toks) if t.startswith(b'"')]
    i = data.draw(st.sampled_from(strings))
    toks[i] = toks[i].rstrip(b'"')
    exercise(_write(workspace, b"".join(toks)))


@_FUZZ
@given(_policies, st.data())
def test_swapped_names(workspace: Path, policy: bytes, data: st.DataObject) -> None:
    """Swapping identifiers mostly keeps the syntax valid, so the checker's name and
    tier-logic passes see strange but parseable policies."""
    toks = _tokens(policy)
    words = [i for i, t in enumerate(toks) if re.fullmatch(rb"[A-Za-z_]\w*", t)]
    for _ in range(data.draw(st.integers(1, 3))):
        i, j = data.draw(st.sampled_from(words)), data.draw(st.sampled_from(words))
        toks[i], toks[j] = toks[j], toks[i]
    exercise(_write(workspace, b"".join(toks)))


@_FUZZ
@given(_policies, st.data())
def test_deleted_and_repeated_lines(workspace: Path, policy: bytes, data: st.DataObject) -> None:
    lines = policy.split(b"\n")
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        if data.draw(st.booleans()):
            del lines[i]
        else:
            lines.insert(i, lines[i])
    exercise(_write(workspace, b"\n".join(lines)))


@_FUZZ
@given(specs(max_items=8))
def test_random_valid_syntax(workspace: Path, text: str) -> None:
    exercise(_write(workspace, text.encode("utf-8")))


@_FUZZ
@given(st.binary(max_size=4096))
def test_binary_garbage(workspace: Path, garbage: bytes) -> None:
    exercise(_write(workspace, garbage))


@_FUZZ
@given(st.text(max_size=300))
def test_random_text(workspace: Path, text: str) -> None:
    exercise(_write(workspace, text.encode("utf-8", errors="surrogatepass")))
    with contextlib.suppress(SpecError):
        format_source(text, "t.rbr")  # lone surrogates included


# --------------------------------------------------------------------------- extremes

_HEADER = b'policy "p" version "1"\nproposition a { question = "q?" }\n'
_DEEP = 10_000


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\n \n\t\n", id="blank"),
        pytest.param(b"# only a comment", id="comment-only"),
        pytest.param(b"\xef\xbb\xbf" + _HEADER, id="utf8-bom"),
        pytest.param(_HEADER + b"derived x = " + b"(" * _DEEP + b"a" + b")" * _DEEP, id="parens"),
        pytest.param(_HEADER + b"derived x = " + b"(" * _DEEP, id="unclosed-parens"),
        pytest.param(_HEADER + b"derived x = " + b"not " * _DEEP + b"a", id="nots"),
        pytest.param(
            _HEADER + b"derived x = " + b"a and (" * _DEEP + b"a" + b")" * _DEEP, id="nested-ands"
        ),
        pytest.param(_HEADER + b"tiers {" + b"{" * _DEEP, id="braces"),
        pytest.param(
            _HEADER + b'derived x = a { description = "' + b"x" * 100_000, id="open-string"
        ),
        pytest.param(_HEADER + b'proposition p { question = """' + b"x\n" * 1000, id="open-block"),
        pytest.param(_HEADER + b'import "nope.rbr"\n', id="missing-import"),
        pytest.param(_HEADER + b'import "lib"\n', id="import-a-directory"),
        pytest.param(_HEADER + b'import ""\n', id="import-empty-path"),
        pytest.param(_HEADER + b'import "fuzz.rbr"\n', id="import-itself"),
        pytest.param(_HEADER + b'grader { template = file("nope.j2") }\n', id="missing-template"),
        pytest.param(_HEADER + b"\x00\x01\x02", id="control-bytes"),
        pytest.param(_HEADER + "\u2028\u00a0".encode(), id="unicode-separators"),
        pytest.param(bytes(range(256)) * 4, id="all-bytes"),
    ],
)
def test_extreme_inputs(workspace: Path, data: bytes) -> None:
    exercise(_write(workspace, data))


def test_fifty_megabyte_file(workspace: Path) -> None:
    path = workspace / "huge.rbr"
    line = b"# padding padding padding padding padding padding padding\n"
    with path.open("wb") as handle:
        handle.write(_HEADER)
        chunk = line * 10_000
        for _ in range(50 * 1024 * 1024 // len(chunk) + 1):
            handle.write(chunk)
    try:
        exercise(path)
        assert [d.code for d in check_file(path).diagnostics] == ["E004"]
    finally:
        path.unlink()


def test_import_cycle(workspace: Path) -> None:
    (workspace / "cycle_b.rbr").write_bytes(
        b'import "cycle_a.rbr"\nproposition b { question = "q" }'
    )
    a = workspace / "cycle_a.rbr"
    a.write_bytes(_HEADER + b'import "cycle_b.rbr"\n')
    exercise(a)
    assert "E006" in {d.code for d in check_file(a).diagnostics}


def test_paths_that_are_not_files(workspace: Path) -> None:
    assert _cli("check", str(workspace / "lib")) in (1, 2)
    assert _cli("check", str(workspace / "does-not-exist.rbr")) in (1, 2)
    assert _cli("fmt", "--check", str(workspace / "lib")) in (1, 2)
    assert _cli("fmt", str(workspace / "does-not-exist.rbr")) in (1, 2)


# --------------------------------------------------------------------------- found bugs


def test_import_path_with_a_nul_character(workspace: Path) -> None:
    exercise(_write(workspace, _HEADER + b'import "a\\0b.rbr"\n'))


@pytest.mark.parametrize(
    "text",
    [
        "derived x = true_story",
        "derived x = a and falsehood",
        "reward { extra = [nothing] }",
        "constraint c { cost = a limit = 1% applies_to = [yes_man] }",
    ],
)
def test_names_that_start_with_a_keyword(text: str) -> None:
    assert parse_source(text, "t.rbr")[1] == []


@pytest.mark.parametrize(
    "text",
    [
        'proposition p { example yes { completion "c" because "x" because "y" } }',
        "constraint c { cost = a cost = b limit = 1% }",
        "constraint c { cost = a limit = 1% limit = 2% }",
    ],
)
def test_repeated_entries_are_reported(text: str) -> None:
    assert [d.code for d in parse_source(text, "t.rbr")[1]] == ["E102"]


@pytest.mark.parametrize(
    "text",
    ["tiers { ideal margin 1e999 bad }", "reward { lr = 1e999 }", "reward { margin = 1e999 }"],
)
def test_infinite_numbers_are_rejected(text: str) -> None:
    assert [d.code for d in parse_source(text, "t.rbr")[1]] == ["E009"]


@pytest.mark.parametrize(
    "text",
    [
        "response_type r { ideal whenready bad otherwise }",
        "response_type r { bad otherwisereward { margin = 1 } }",
        "reward { base_reward = nosteps = 5 }",
        'proposition p { match length < 5 wordsquestion = "q" }',
    ],
)
def test_keywords_glued_to_the_next_word(text: str) -> None:
    assert [d.code for d in parse_source(text, "t.rbr")[1]] == ["E001"]
