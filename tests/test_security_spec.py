"""A spec is untrusted: its templates run in a sandbox, its files stay in its folder,
its regexes run in linear time. Each attack goes through the real CLI
(``sys.executable -m specc``) and must fail closed: exit 1 or 2, the located
diagnostic, no traceback, no "internal error", no effect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from golden import ROOT

from specc.checker import check_file
from specc.cli import main
from specc.compiler import compile_spec
from specc.loader import load_spec

HEADER = 'policy "p" version "1"\n'
BODY = """proposition refuses {
  question = "Does the reply refuse?"
  example yes { completion "No." }
}
response_type comply {
  ideal when not refuses
  unacceptable otherwise
}
"""
TOKEN = "tok-3f9a1c-never-printed"


def specc(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, with this checkout first on the import path."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "specc", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,  # a guard against a hang, not a speed assertion
    )


def assert_fails_cleanly(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, out
    assert "Traceback" not in out and "internal error" not in out, out
    return out


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- templates

#: (id, template line): each must be refused with E013 at its own line.
ATTACKS = [
    ("popen", "{{ lipsum.__globals__['os'].popen('touch PWNED').read() }}"),
    ("environ", "{{ lipsum.__globals__.os.environ." + "SPECC_TEST_TOKEN }}"),
    ("self-globals", "{{ self.__init__.__globals__ }}"),
    ("cycler", "{{ cycler.__init__.__globals__.os }}"),
    ("joiner", "{{ joiner.__init__.__globals__ }}"),
    ("namespace", "{{ namespace.__init__.__globals__ }}"),
    ("mro", "{{ ''.__class__.__mro__[1].__subclasses__() }}"),
    ("attr-filter", "{{ question|attr('__class__') }}"),
    ("getitem", "{{ question['__cla' ~ 'ss__'] }}"),
    ("str-format", "{{ '{:>999999999}'.format(1) }}"),
    ("range", "{% for i in range(10**10) %}{% endfor %}"),
    (
        "nested-ranges",
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
    ),
    ("string-times", "{{ 'x' * 10**9 }}"),
    ("printf", "{{ '%999999999d' % 1 }}"),
    ("center", "{{ 'x'|center(999999999) }}"),
    ("huge-join", "{{ (['x' * 1000000] * 1000)|join }}"),
    ("doubling", "{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('x') }}"),
    (
        "set-block",
        "{% set s %}{% for i in range(99999) %}{{ 'x' * 999999 }}{% endfor %}{% endset %}",
    ),
    ("recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"),
    ("include", '{% include "grader.j2" %}'),
    ("extends", '{% extends "grader.j2" %}'),
    ("import", '{% import "grader.j2" as g %}'),
]


def template_spec(folder: Path, attack: str, as_file: bool) -> Path:
    """A spec whose grader template has ``attack`` on its line 2 (spec line 5 inline)."""
    lines = ["Question: {{ question }}", attack.replace("PWNED", str(folder / "PWNED"))]
    lines += ["Conversation: {{ conversation }}", "Reply: {{ completion }}", "Answer:"]
    if as_file:
        write(folder / "grader.j2", "\n".join(lines) + "\n")
        grader = 'grader { template = file("grader.j2") }\n'
    else:
        body = "".join(f"    {line}\n" for line in lines)
        grader = f'grader {{\n  template = """\n{body}  """\n}}\n'
    return write(folder / "p.rbr", HEADER + grader + BODY)


def _where(as_file: bool) -> str:
    return "grader.j2:2:1" if as_file else "p.rbr:5:1"


@pytest.mark.parametrize("as_file", [False, True], ids=["inline", "file"])
def test_every_template_attack_is_e013_at_its_line(tmp_path: Path, as_file: bool) -> None:
    """One `specc check` over a spec per attack (one process keeps the test fast)."""
    specs = [template_spec(tmp_path / name, attack, as_file) for name, attack in ATTACKS]
    proc = specc(
        "check",
        "--max-diagnostics",
        "0",
        *(str(p.relative_to(tmp_path)) for p in specs),
        cwd=tmp_path,
        env={"SPECC_TEST_TOKEN": TOKEN},
    )
    out = assert_fails_cleanly(proc)
    for name, _ in ATTACKS:
        assert f"{name}/{_where(as_file)}: error[E013]" in out, (name, out)
        assert not (tmp_path / name / "PWNED").exists()
    assert TOKEN not in out
    assert out.rstrip().endswith(f"{len(ATTACKS)} errors, 0 warnings")


@pytest.mark.parametrize("as_file", [False, True], ids=["inline", "file"])
@pytest.mark.parametrize("name", ["popen", "environ"])
def test_attacks_fail_at_compile_and_build_with_no_effect(
    tmp_path: Path, name: str, as_file: bool
) -> None:
    spec = template_spec(tmp_path, dict(ATTACKS)[name], as_file)
    data = write(tmp_path / "data.jsonl", "")
    env = {"SPECC_TEST_TOKEN": TOKEN}
    for args in (
        ("compile", spec.name, "-o", "art"),
        ("build", spec.name, "--data", data.name, "-o", "built"),
    ):
        out = assert_fails_cleanly(specc(*args, cwd=tmp_path, env=env))
        assert f"{_where(as_file)}: error[E013]" in out
        assert TOKEN not in out
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "art").exists() and not (tmp_path / "built").exists()


@pytest.mark.parametrize("name", [name for name, _ in ATTACKS])
def test_attacks_fail_at_compile_in_process(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = template_spec(tmp_path, dict(ATTACKS)[name], as_file=False)
    assert main(["compile", str(spec), "-o", str(tmp_path / "art")]) == 1
    err = capsys.readouterr().err
    assert "error[E013]" in err and "Traceback" not in err
    assert not (tmp_path / "art").exists()


def test_ordinary_template_errors_stay_e012(tmp_path: Path) -> None:
    for name, line in [("undefined", "{{ questoin }}"), ("syntax", "{% if question %}")]:
        template_spec(tmp_path / name, line, as_file=True)
    proc = specc("check", "undefined/p.rbr", "syntax/p.rbr", cwd=tmp_path)
    out = assert_fails_cleanly(proc)
    assert "undefined/grader.j2:2:1: error[E012]" in out and "'questoin' is undefined" in out
    assert "syntax/grader.j2:" in out and "error[E013]" not in out


def test_a_sandboxed_template_still_renders_a_real_prompt(tmp_path: Path) -> None:
    template = (
        "{{ name|upper }}: {{ question }}\n"
        "{% for e in examples %}{{ loop.index }}. {{ e|trim|truncate(200) }}\n{% endfor %}"
        "{{ '%-6s|' % yes }}{{ [yes, no]|join('/') }} {{ range(3)|list }}\n"
        "Conversation: {{ conversation }}\nReply: {{ completion }}\nAnswer:"
    )
    spec = write(
        tmp_path / "p.rbr", HEADER + f"grader {{ template = {json.dumps(template)} }}\n" + BODY
    )
    compile_spec(spec, tmp_path / "art")
    prompt = (tmp_path / "art" / "prompts" / "refuses.txt").read_text()
    assert prompt.startswith("REFUSES: Does the reply refuse?\n1. ## Example 1")
    assert "yes   |yes/no [0, 1, 2]" in prompt


# --------------------------------------------------------------------------- files


def _first_line(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.readline().strip()


def test_imports_outside_the_folder_are_refused_and_never_echoed(tmp_path: Path) -> None:
    policy = tmp_path / "team" / "policy"
    secret = write(
        tmp_path / "outside" / "secret.rbr", 'proposition x { question = "SECRET-LINE" }'
    )
    policy.mkdir(parents=True)
    os.symlink(secret, policy / "lib.rbr")
    depth = "../" * len(policy.parts)
    cases = {
        "abs": 'import "/etc/passwd"',
        "dotdot": f'import "{depth}etc/passwd"',
        "symlink": 'import "lib.rbr"',
        "environ": 'import "/proc/self/environ"',
        "zero": 'import "/dev/zero"',
        "template-zero": 'grader { template = file("/dev/zero") }',
        "template-secret": 'grader { template = file("../../outside/secret.rbr") }',
    }
    for name, line in cases.items():
        write(policy / f"{name}.rbr", HEADER + line + "\n" + BODY)
    proc = specc("check", *(f"{n}.rbr" for n in cases), cwd=policy, env={"SPECC_TEST_TOKEN": TOKEN})
    out = assert_fails_cleanly(proc)
    for name in cases:
        assert f"{name}.rbr:2:" in out and "error[E014]" in out, (name, out)
    assert "lib.rbr\" is a link to a file outside the policy's folder" in out
    assert "--allow-path DIR" in out
    assert "SECRET-LINE" not in out and TOKEN not in out
    if os.path.exists("/etc/passwd"):
        assert _first_line("/etc/passwd") not in out
    # The API keeps nothing of a refused file either.
    for name in cases:
        result = load_spec(policy / f"{name}.rbr")
        assert [d.code for d in result.diagnostics] == ["E014"]
        assert set(result.sources) == {os.path.relpath(policy / f"{name}.rbr")}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_special_files_inside_the_folder_are_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.rbr")  # opening it for reading would block
    with open(tmp_path / "big.rbr", "wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    for name in ("fifo", "big"):
        write(tmp_path / f"imports-{name}.rbr", HEADER + f'import "{name}.rbr"\n' + BODY)
    write(tmp_path / "tmpl.rbr", HEADER + 'grader { template = file("fifo.rbr") }\n' + BODY)
    out = assert_fails_cleanly(
        specc("check", "imports-fifo.rbr", "imports-big.rbr", "tmpl.rbr", cwd=tmp_path)
    )
    assert "imports-fifo.rbr:2:1: error[E004]: fifo.rbr is not a regular file (a named pipe)" in out
    assert "imports-big.rbr:2:1: error[E004]: big.rbr is 67.1 MB" in out
    assert "tmpl.rbr:2:21: error[E012]: cannot read template: fifo.rbr is not a regular" in out


def test_a_device_in_an_allowed_folder_is_still_refused(tmp_path: Path) -> None:
    write(tmp_path / "p.rbr", HEADER + 'import "/dev/zero"\n' + BODY)
    out = assert_fails_cleanly(specc("check", "--allow-path", "/dev", "p.rbr", cwd=tmp_path))
    assert "error[E004]" in out and "not a regular file" in out


def test_the_root_spec_must_be_a_regular_file(tmp_path: Path) -> None:
    out = assert_fails_cleanly(specc("check", "/dev/zero", cwd=tmp_path), code=2)
    assert "error[E004]" in out and "not a regular file" in out


LIBRARY = """proposition apology {
  question = "Does the reply apologise?"
  example yes { completion "Sorry." }
}
"""


def _shared_library_policy(base: Path) -> Path:
    """``base/policy/p.rbr`` importing ``base/shared/tone.rbr`` and its template."""
    write(base / "shared" / "tone.rbr", LIBRARY)
    write(base / "shared" / "grader.j2", "{{ question }}\n{{ conversation }}\n{{ completion }}\n")
    grader = 'grader { template = file("../shared/grader.j2") }\n'
    body = BODY.replace("ideal when not refuses", "ideal when not refuses and apology")
    return write(
        base / "policy" / "p.rbr", HEADER + 'import "../shared/tone.rbr"\n' + grader + body
    )


def test_allow_path_admits_a_shared_library_and_the_artifact_is_location_free(
    tmp_path: Path,
) -> None:
    spec = _shared_library_policy(tmp_path)
    out = assert_fails_cleanly(specc("check", "p.rbr", cwd=spec.parent))
    assert out.count("error[E014]") == 2  # the import and the template
    proc = specc("check", "--allow-path", "../shared", "p.rbr", cwd=spec.parent)
    assert proc.returncode == 0, proc.stderr
    proc = specc("compile", "--allow-path", "../shared", "p.rbr", "-o", "art", cwd=spec.parent)
    assert proc.returncode == 0, proc.stderr
    # The same tree elsewhere, compiled through the API from another folder: the same bytes.
    other = _shared_library_policy(tmp_path / "elsewhere" / "deeper")
    shared = other.parent.parent / "shared"
    assert check_file(other, allow_paths=[shared]).ok
    compile_spec(other, tmp_path / "art2", allow_paths=[shared])
    for name in ("manifest.json", "ir.json", "rules.json", "prompts/refuses.txt"):
        assert (spec.parent / "art" / name).read_bytes() == (tmp_path / "art2" / name).read_bytes()


@pytest.mark.parametrize(
    "command",
    [
        ["check", "p.rbr"],
        ["test", "p.rbr"],
        ["compile", "p.rbr", "-o", "art"],
        ["build", "p.rbr", "--data", "d.jsonl", "-o", "art"],
    ],
)
def test_allow_path_must_be_a_directory(tmp_path: Path, command: list[str]) -> None:
    write(tmp_path / "p.rbr", HEADER + BODY)
    write(tmp_path / "d.jsonl", "")
    out = assert_fails_cleanly(specc(*command, "--allow-path", "nope", cwd=tmp_path), 2)
    assert "--allow-path nope: no such directory" in out
    assert not (tmp_path / "art").exists()


# --------------------------------------------------------------------------- regexes


def test_imports_reached_along_many_paths_are_followed_once(tmp_path: Path) -> None:
    """40 files, each importing the next two: 2**40 import paths. The loader followed
    every path (a hang); each file is now followed once, and each definition and
    each warning about an imported file appears once."""
    n = 40
    for i in range(n + 1):
        imports = "".join(f'import "l{j}.rbr"\n' for j in (i + 1, i + 2) if j <= n)
        extra = "tiers { a }\n" if i == n else ""  # ignored in an import: one W006
        write(tmp_path / f"l{i}.rbr", f'{imports}proposition p{i} {{ question = "q" }}\n{extra}')
    spec = write(
        tmp_path / "p.rbr",
        HEADER + 'import "l0.rbr"\nresponse_type comply {\n  ideal when p0\n'
        "  unacceptable otherwise\n}\n",
    )
    report = check_file(spec)
    assert report.spec is not None
    assert [p.name for p in report.spec.propositions] == [f"p{i}" for i in range(n, -1, -1)]
    assert [d.code for d in report.diagnostics].count("W006") == 1
    assert not [d for d in report.diagnostics if d.severity == "error"]


def test_an_unsupported_regex_is_e108_with_the_reason(tmp_path: Path) -> None:
    spec = (
        HEADER
        + 'proposition polite { match regex "(?<!not )sorry" }\n'
        + BODY.replace("not refuses", "not refuses and polite")
    )
    write(tmp_path / "p.rbr", spec)
    out = assert_fails_cleanly(specc("check", "p.rbr", cwd=tmp_path))
    assert "p.rbr:2:22: error[E108]: RE2 has no negative lookbehind: (?<!...)" in out
    assert "match keywords" in out


def test_a_catastrophic_regex_grades_at_once(tmp_path: Path) -> None:
    """^(a+)+$ backtracks exponentially in Python's re (40 characters never finish);
    RE2 answers at once. The subprocess timeout only guards against a hang."""
    spec = (
        HEADER
        + 'proposition aaa { match regex "^(a+)+$" }\n'
        + ("response_type t {\n  ideal when not aaa\n  unacceptable otherwise\n}\n")
    )
    write(tmp_path / "p.rbr", spec)
    rows = [
        {"id": str(i), "prompt": "hi", "completion": text, "response_type": "t"}
        for i, text in enumerate(["a" * 40 + "!", "a" * 40, "a" * 100_000 + "!"])
    ]
    write(tmp_path / "data.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    assert specc("compile", "p.rbr", "-o", "art", cwd=tmp_path).returncode == 0
    proc = specc(
        "grade", "art", "data.jsonl", "--grader", "rules", "-o", "f.jsonl", "-q", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    features = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert [f["propositions"]["aaa"] for f in features] == [0.0, 1.0, 0.0]


# --------------------------------------------------------------------------- diagnostics


def test_thousands_of_warnings_print_fifty_and_a_count(tmp_path: Path) -> None:
    """(benchmarks/bench_diagnostics.py times 12,000 warnings over 5 MB.)"""
    props = "".join(f'proposition p{i} {{ match keywords ["w{i}"] }}\n' for i in range(2_000))
    write(tmp_path / "many.rbr", HEADER + props)
    proc = specc("check", "many.rbr", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("warning[W001]") == 50
    assert "... and 1,950 more: 1,950 W001" in proc.stderr
    assert "\n\n0 errors, 2000 warnings\n" in proc.stderr
