"""specc.files: atomic writes with the umask's modes, staging, confined bounded reads."""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from specc import files
from specc.errors import UsageError
from specc.files import PathRefused, Staging, check_relative, read_inside, write_bytes


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_and_directories_get_the_umask_modes(tmp_path: Path, umask: int) -> None:
    write_bytes(tmp_path / "a" / "b.txt", b"x")
    with Staging() as stage:
        unit = stage.directory(tmp_path / "unit")
        stage.write_into(unit, "sub/c.bin", b"y")
        with stage.open(tmp_path / "d.jsonl") as f:
            f.write(b"{}\n")
    for path in (
        tmp_path / "a" / "b.txt",
        tmp_path / "unit" / "sub" / "c.bin",
        tmp_path / "d.jsonl",
    ):
        assert _mode(path) == 0o666 & ~umask, path
    for path in (tmp_path / "a", tmp_path / "unit", tmp_path / "unit" / "sub"):
        assert _mode(path) == 0o777 & ~umask, path


def test_staged_writes_appear_together_or_not_at_all(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "kept").write_text("kept")
    (tmp_path / "old" / "dropped").write_text("dropped")
    (tmp_path / "report.json").write_text("old report")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), Staging() as stage:
        unit = stage.directory(tmp_path / "old")
        stage.write_into(unit, "new", b"new")
        stage.write_bytes(tmp_path / "report.json", b"new report")
        raise Boom
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "report.json"]
    assert (tmp_path / "report.json").read_text() == "old report"
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["dropped", "kept"]

    with Staging() as stage:
        unit = stage.directory(tmp_path / "old", keep=lambda name: name == "kept")
        stage.write_into(unit, "new", b"new")
        stage.write_bytes(tmp_path / "report.json", b"new report")
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["kept", "new"]
    assert (tmp_path / "report.json").read_text() == "new report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "report.json"]


def test_a_full_disk_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.jsonl"
    target.write_text("old\n")

    def full(path: Path, data: bytes) -> None:
        Path(path).write_bytes(data[:1])  # half written, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "_write_file", full)
    with pytest.raises(UsageError) as err:
        write_bytes(target, b"new\n")
    assert str(target) in str(err.value) and "free some space" in str(err.value)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.jsonl"]


def test_mistakes_are_usage_errors_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="exists and is a file"):
        Staging().directory(tmp_path / "file")
    with pytest.raises(UsageError, match="exists and is a directory"):
        write_bytes(tmp_path, b"x")
    with pytest.raises(UsageError, match="exists and is not a directory"):
        write_bytes(tmp_path / "file" / "out.json", b"x")
    with pytest.raises(UsageError, match="hint"):
        write_bytes(tmp_path / "file" / "deeper" / "out.json", b"x")
    with pytest.raises(UsageError, match=r"--report .*is a file"):
        files.check_output_dir(tmp_path / "file", "--report")
    with pytest.raises(UsageError, match="is a file, not a directory"):
        files.check_output_dir(tmp_path / "file" / "sub", "--report")
    files.check_output_dir(tmp_path / "new" / "dir", "--report")  # fine, and not created
    assert not (tmp_path / "new").exists()


def test_temp_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above the default pid_max: no such process
    (tmp_path / f".f.jsonl.{dead}.abcd.tmp").write_text("partial")
    (tmp_path / f".weights.{dead}.abcd.old").mkdir()
    alive = tmp_path / f".f.jsonl.{os.getpid()}.ffff.tmp"
    alive.write_text("being written")
    write_bytes(tmp_path / "f.jsonl", b"x")
    stage = Staging()
    stage.directory(tmp_path / "weights")
    stage.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "f.jsonl"]


@pytest.mark.parametrize(
    "path",
    ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a/./b", "", "a\\..\\b", "a\0b", "a/"],
)
def test_check_relative_refuses_paths_that_leave(path: str) -> None:
    with pytest.raises(PathRefused):
        check_relative(path)


@given(st.text(alphabet="ab./\\\0", max_size=12))
def test_a_path_check_relative_accepts_stays_inside(path: str) -> None:
    try:
        check_relative(path)
    except PathRefused:
        return
    joined = posixpath.normpath(posixpath.join("/root", path))
    assert joined.startswith("/root/") and joined == f"/root/{path}"


def test_read_inside_refuses_links_devices_and_big_files(tmp_path: Path) -> None:
    root = tmp_path / "art"
    (root / "prompts").mkdir(parents=True)
    (root / "prompts" / "a.txt").write_text("prompt")
    (tmp_path / "secret.txt").write_text("secret")
    assert read_inside(root, "prompts/a.txt", 100) == b"prompt"
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "dirlink").symlink_to(tmp_path)
    os.mkfifo(root / "fifo")
    (root / "big.txt").write_bytes(b"x" * 101)
    for rel, reason in [
        ("link.txt", "symbolic link"),
        ("dirlink/secret.txt", "link or not a folder"),
        ("fifo", "not a regular file"),  # and it does not block
        ("big.txt", "limit is 100"),
        ("../secret.txt", "leaves the directory"),
    ]:
        with pytest.raises(PathRefused, match=reason):
            read_inside(root, rel, 100)
    with pytest.raises(FileNotFoundError):
        read_inside(root, "prompts/b.txt", 100)
    if Path("/dev/zero").exists():
        with pytest.raises(PathRefused, match="not a regular file"):
            files.read_regular("/dev/zero", 100)
