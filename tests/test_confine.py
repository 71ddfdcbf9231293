"""The confined reader: roots, symlinks, special files, sizes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from specc.confine import Refused, Roots, read_confined


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "policy" / "lib").mkdir(parents=True)
    (tmp_path / "policy" / "lib" / "a.rbr").write_text("inside")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "b.rbr").write_text("shared")
    return tmp_path


def reason(path: Path, roots: Roots, limit: int = 1 << 20) -> str:
    with pytest.raises(Refused) as exc:
        read_confined(path, roots, limit)
    return exc.value.reason


def test_roots_and_relative_names(tree: Path) -> None:
    roots = Roots.for_spec(tree / "policy" / "p.rbr", [tree / "shared"])
    real, data = read_confined(tree / "policy" / "lib" / "a.rbr", roots)
    assert data == b"inside" and roots.relative(real) == "lib/a.rbr"
    real, data = read_confined(tree / "policy" / ".." / "shared" / "b.rbr", roots)
    assert data == b"shared" and roots.relative(real) == "b.rbr"
    assert reason(tree / "shared" / "b.rbr", Roots.for_spec(tree / "policy" / "p.rbr")) == "outside"


def test_symlinks_are_judged_by_their_target(tree: Path) -> None:
    roots = Roots.for_spec(tree / "policy" / "p.rbr")
    os.symlink(tree / "shared" / "b.rbr", tree / "policy" / "out.rbr")
    os.symlink(tree / "policy" / "lib" / "a.rbr", tree / "policy" / "in.rbr")
    os.symlink(tree / "shared", tree / "policy" / "dirlink")
    with pytest.raises(Refused, match="is a link to a file outside") as exc:
        read_confined(tree / "policy" / "out.rbr", roots)
    assert exc.value.reason == "outside"
    assert reason(tree / "policy" / "dirlink" / "b.rbr", roots) == "outside"
    assert read_confined(tree / "policy" / "in.rbr", roots)[1] == b"inside"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_special_files_missing_files_and_sizes(tree: Path) -> None:
    roots = Roots.for_spec(tree / "policy" / "p.rbr")
    os.mkfifo(tree / "policy" / "pipe.rbr")
    assert reason(tree / "policy" / "pipe.rbr", roots) == "special"  # and did not block
    assert reason(tree / "policy" / "lib", roots) == "directory"
    assert reason(tree / "policy" / "nope.rbr", roots) == "missing"
    assert reason(tree / "policy" / "lib" / "a.rbr", roots, limit=3) == "too-large"
    assert reason(Path("/dev/null"), Roots((Path("/dev"),))) == "special"
    if Path("/proc/self/environ").exists():
        assert reason(Path("/proc/self/environ"), Roots((Path("/proc"),))) == "special"


def test_a_folder_swapped_for_a_link_after_the_check_is_not_followed(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A race: ``lib/`` is replaced by a link to a folder outside between the check
    of the resolved path and the read. Only the last component was opened without
    following links, so the file outside was read through ``lib``."""
    import specc.confine as confine

    (tree / "secret").mkdir()
    (tree / "secret" / "a.rbr").write_text("TOP SECRET")
    roots = Roots.for_spec(tree / "policy" / "p.rbr")
    check = confine.check_inside

    def check_then_swap(path: Path, roots: Roots, shown: str | None = None) -> Path:
        real = check(path, roots, shown)
        (tree / "policy" / "lib").rename(tree / "policy" / "lib.old")
        (tree / "policy" / "lib").symlink_to(tree / "secret")
        return real

    monkeypatch.setattr(confine, "check_inside", check_then_swap)
    with pytest.raises(Refused) as exc:
        read_confined(tree / "policy" / "lib" / "a.rbr", roots)
    assert exc.value.reason == "unreadable" and "SECRET" not in str(exc.value)
