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
