"""Reading files and resolving imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.checker import check_file
from specc.errors import SpecError
from specc.loader import load_spec, parse_file

HEADER = 'policy "p" version "1"\n'
PROP = 'proposition {name} {{ question = "{name}?" example yes {{ completion "x" }} }}\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_diamond_import_reads_shared_file_once(tmp_path: Path) -> None:
    write(tmp_path / "lib/base.rbr", PROP.format(name="a"))
    write(tmp_path / "lib/left.rbr", 'import "base.rbr"\n' + PROP.format(name="b"))
    write(tmp_path / "lib/right.rbr", 'import "base.rbr"\n' + PROP.format(name="c"))
    root = write(
        tmp_path / "root.rbr",
        HEADER + 'import "lib/left.rbr"\nimport "lib/right.rbr"\n'
        "response_type t { ideal when a and b and c  unacceptable otherwise }\n",
    )
    spec = parse_file(root)
    assert sorted(p.name for p in spec.propositions) == ["a", "b", "c"]
    sources = {p.name: p.source for p in spec.propositions}
    assert sources == {"a": "lib/base.rbr", "b": "lib/left.rbr", "c": "lib/right.rbr"}
    assert check_file(root).ok


def test_same_name_from_two_libraries_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "one.rbr", PROP.format(name="a"))
    write(tmp_path / "two.rbr", PROP.format(name="a"))
    root = write(tmp_path / "root.rbr", HEADER + 'import "one.rbr"\nimport "two.rbr"\n')
    result = load_spec(root)
    assert [d.code for d in result.diagnostics] == ["E102"]
    assert "one.rbr and two.rbr" in result.diagnostics[0].message


def test_self_import_is_a_cycle(tmp_path: Path) -> None:
    root = write(tmp_path / "root.rbr", HEADER + 'import "root.rbr"\n')
    assert [d.code for d in load_spec(root).diagnostics] == ["E006"]


def test_missing_root_file_and_directory(tmp_path: Path) -> None:
    assert [d.code for d in check_file(tmp_path / "nope.rbr").diagnostics] == ["E004"]
    assert [d.code for d in check_file(tmp_path).diagnostics] == ["E004"]


def test_not_utf8_points_at_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin.rbr"
    path.write_bytes(b'policy "p" version "1"\nproposition caf\xe9 {}\n')
    (diag,) = check_file(path).diagnostics
    assert diag.code == "E003" and (diag.span.line, diag.span.col) == (2, 16)


def test_oversized_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "big.rbr"
    with open(path, "wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    (diag,) = check_file(path).diagnostics
    assert diag.code == "E004" and "MB" in diag.message


def test_empty_file(tmp_path: Path) -> None:
    (diag,) = check_file(write(tmp_path / "e.rbr", "")).diagnostics
    assert diag.code == "E011"


def test_parse_file_raises_with_every_error(tmp_path: Path) -> None:
    root = write(tmp_path / "r.rbr", HEADER + "reward { stepz = 1 marginn = 2 }\n")
    with pytest.raises(SpecError) as exc:
        parse_file(root)
    assert [d.code for d in exc.value.diagnostics] == ["E010", "E010"]


def test_template_errors(tmp_path: Path) -> None:
    base = PROP.format(name="a") + "response_type t { ideal when a  unacceptable otherwise }\n"
    missing = write(tmp_path / "m.rbr", HEADER + 'grader { template = file("nope.j2") }\n' + base)
    broken = write(tmp_path / "b.rbr", HEADER + 'grader { template = "{% for %}" }\n' + base)
    clash = write(tmp_path / "c.rbr", HEADER + 'grader { yes = "ok"  no = "OK" }\n' + base)
    assert "E012" in [d.code for d in check_file(missing).diagnostics]
    assert "E012" in [d.code for d in check_file(broken).diagnostics]
    assert "E009" in [d.code for d in check_file(clash).diagnostics]


# ----------------------------------------------------------------- libraries and test files

LIBRARY = PROP.format(name="a") + PROP.format(name="b") + "derived both = a and b\n"
POLICY = (
    HEADER
    + 'import "lib.rbr"\n'
    + "response_type t { ideal when both  unacceptable otherwise }\n"
    + 'test "inline" { response_type t given { both = true } expect ideal }\n'
)
TESTS = 'test "file" { response_type t given { a = false } expect unacceptable }\n'


def test_a_library_loads_alone_and_exports_its_names(tmp_path: Path) -> None:
    lib = write(tmp_path / "lib.rbr", LIBRARY)
    result = load_spec(lib, alone=True)
    assert result.kind == "library" and result.spec is not None and result.spec.library
    assert [p.name for p in result.spec.propositions] == ["a", "b"]
    assert check_file(lib, alone=True).diagnostics == []  # no W001: a library exports
    # compile and build need a policy: without `alone` it is E011, with a hint.
    (diag,) = check_file(lib).diagnostics
    assert diag.code == "E011" and "specc check" in (diag.hint or "")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("derived c = a and nope\n", "E101"),
        ("derived c = d\nderived d = c\n", "E103"),
        ('proposition r { match regex "(" }\n', "E108"),
        ('proposition a { question = "again" }\n', "E102"),
    ],
)
def test_a_library_alone_gets_the_checks_that_apply(tmp_path: Path, text: str, code: str) -> None:
    lib = write(tmp_path / "lib.rbr", LIBRARY + text)
    assert code in [d.code for d in check_file(lib, alone=True).diagnostics]


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ("response_type t { ideal when a  unacceptable otherwise }", "a response type"),
        ("tiers { ideal unacceptable }", "a tiers block"),
        ("reward { margin = 1 }", "a reward block"),
        ('grader { yes = "y" }', "a grader block"),
        ("constraint c { cost = a  limit = 1% }", "a constraint"),
    ],
)
def test_a_library_item_that_needs_a_header(tmp_path: Path, item: str, words: str) -> None:
    lib = write(tmp_path / "lib.rbr", LIBRARY + item + "\n")
    (diag,) = check_file(lib, alone=True).diagnostics
    assert diag.code == "E011" and diag.message == f"{words} needs a policy header"
    assert diag.span.line == 4


def test_a_test_file_loads_the_policy_it_imports(tmp_path: Path) -> None:
    write(tmp_path / "lib.rbr", LIBRARY)
    write(tmp_path / "policy.rbr", POLICY)
    tests = write(tmp_path / "policy_test.rbr", 'import "policy.rbr"\n' + TESTS)
    result = load_spec(tests, alone=True)
    assert result.kind == "tests" and result.spec is not None
    assert result.spec.name == "p" and [rt.name for rt in result.spec.response_types] == ["t"]
    assert [t.name for t in result.spec.tests] == ["file"]  # not the policy's own
    assert {p.source for p in result.spec.propositions} == {"lib.rbr"}
    assert check_file(tests, alone=True).diagnostics == []
    (diag,) = check_file(tests).diagnostics  # compile: a test file is no policy
    assert diag.code == "E011" and "specc test" in (diag.hint or "")
    policy = load_spec(tmp_path / "policy.rbr")
    assert policy.spec is not None and [t.name for t in policy.spec.tests] == ["inline"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TESTS, "this test file imports no policy"),
        ('import "lib.rbr"\n' + TESTS, "lib.rbr is a library, not a policy"),
        ('import "policy.rbr"\nimport "other.rbr"\n' + TESTS, "a test file tests one policy"),
        ('import "policy.rbr"\n' + PROP.format(name="z") + TESTS, "a proposition in a test file"),
    ],
)
def test_test_file_problems_are_E304(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "lib.rbr", LIBRARY)
    write(tmp_path / "policy.rbr", POLICY)
    write(tmp_path / "other.rbr", POLICY)
    tests = write(tmp_path / "t_test.rbr", text)
    diags = [d for d in check_file(tests, alone=True).diagnostics if d.code == "E304"]
    assert [d.message for d in diags] == [message]


def test_check_accepts_the_whole_shipped_tree(capsys: pytest.CaptureFixture[str]) -> None:
    from golden import ROOT

    from specc.cli import main

    files = sorted(str(p) for p in (ROOT / "policies").rglob("*.rbr"))
    assert len(files) >= 6
    assert main(["check", "--strict", *files]) == 0
    assert capsys.readouterr().err.startswith("ok: ")
