"""The command line explains itself: every option has help text that states its
default, and every command's help ends with an example.

The walk covers every subcommand ``build_parser`` registers, so a command added later
is held to the same rules."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from golden import ROOT

from specc.cli import build_parser


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (sub)command parser with its path of names, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from commands(sub, (*path, name))


_ROOT = build_parser()
ALL = {(): _ROOT, **dict(commands(_ROOT))}
_NO_DEFAULT = (None, False, argparse.SUPPRESS)


def test_every_command_is_walked() -> None:
    assert {"check", "fmt", "compile", "grade", "fit", "build", "explain"} <= {
        " ".join(path) for path in ALL
    }


@pytest.mark.parametrize("path", sorted(ALL), ids=lambda p: " ".join(("specc", *p)))
def test_every_option_has_help_with_its_default(path: tuple[str, ...]) -> None:
    problems = []
    for action in ALL[path]._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = "/".join(action.option_strings) or action.dest
        if not action.help or action.help == argparse.SUPPRESS:
            problems.append(f"{name}: no help text")
        elif action.default not in _NO_DEFAULT and "default" not in action.help:
            problems.append(f"{name}: its help does not state its default {action.default!r}")
    assert not problems, f"specc {' '.join(path)}: " + "; ".join(problems)


@pytest.mark.parametrize("path", sorted(ALL), ids=lambda p: " ".join(("specc", *p)))
def test_every_command_ends_its_help_with_an_example(path: tuple[str, ...]) -> None:
    parser = ALL[path]
    assert parser.formatter_class is argparse.RawDescriptionHelpFormatter, (
        "use RawDescriptionHelpFormatter so the example keeps its lines"
    )
    epilog = parser.epilog or ""
    assert epilog.lstrip().startswith("example"), f"specc {' '.join(path)}: no example epilog"
    lines = [line.strip() for line in epilog.splitlines()[1:] if line.strip()]
    assert lines, f"specc {' '.join(path)}: the example is empty"
    assert any(line.split()[:1] == ["specc"] for line in lines)
    assert not path or any(path[0] in line for line in lines), "the example shows another command"
    help_text = parser.format_help().rstrip()
    assert help_text.endswith(epilog.rstrip().splitlines()[-1].rstrip())


@pytest.mark.parametrize("path", sorted(ALL), ids=lambda p: " ".join(("specc", *p)))
def test_help_prints_and_exits_zero(path: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "specc", *path, "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^examples?:$", done.stdout, re.MULTILINE), done.stdout


def test_the_checks_catch_an_option_without_help() -> None:
    """The rules above can fail: an option with a default but no mention of it."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    probe = sub.add_parser("probe", formatter_class=argparse.RawDescriptionHelpFormatter)
    probe.add_argument("--size", type=int, default=3, help="a size")
    probe.add_argument("--bare")
    with pytest.raises(AssertionError, match=r"--size: its help does not state.*--bare: no help"):
        ALL[("probe",)] = probe
        try:
            test_every_option_has_help_with_its_default(("probe",))
        finally:
            del ALL[("probe",)]
    with pytest.raises(AssertionError, match="no example epilog"):
        ALL[("probe",)] = probe
        try:
            test_every_command_ends_its_help_with_an_example(("probe",))
        finally:
            del ALL[("probe",)]
