"""How specc touches the file system: atomic writes with the user's modes, and
confined, bounded reads.

Every file specc writes goes through :class:`Staging` (or :func:`write_bytes`, one
file staged alone):

* **atomically**: bytes go to a temp sibling (``.NAME.PID.RANDOM.tmp``) and are
  fsynced; only when every staged file and directory is complete are they renamed
  over their targets. A crash, an exception or a full disk leaves the old files as
  they were and removes the temp files (and the next write removes temp files of a
  process that died);
* **with the modes users expect**: files are created with ``0o666`` and directories
  with ``0o777``, and the kernel applies the umask (and any default ACL), the way
  ``open()`` and ``mkdir`` do. (``tempfile.mkstemp``/``mkdtemp`` would make them
  ``0600``/``0700``, unreadable to a trainer running as another user.)
* **with a clear error**: an ``OSError`` becomes a :class:`~specc.errors.UsageError`
  that names the path and says what to do.

:func:`read_inside` is the one way to read a file named by untrusted data (an
artifact's seal): a relative path that stays inside a directory, no symbolic link on
the way, a regular file, under a size cap.

>>> write_bytes("out/report.json", b"{}\\n")              # doctest: +SKIP
>>> with Staging() as stage:                              # doctest: +SKIP
...     unit = stage.directory("out/weights")            # an empty temp directory
...     stage.write_into(unit, "weights.json", b"{}")
...     stage.write_bytes("out/report.json", b"{}")
... # here both are in place; after an exception, neither changed
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from specc.errors import UsageError
from specc.oserrors import os_error

__all__ = [
    "PathRefused",
    "Staging",
    "check_output_dir",
    "check_relative",
    "read_inside",
    "read_regular",
    "write_bytes",
]


def _temp_name(target: Path, suffix: str) -> Path:
    return target.with_name(f".{target.name[:100]}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def _remove_stale(target: Path) -> None:
    """Remove temp files and directories of earlier writes to ``target`` whose
    process is gone (a crash or a kill)."""
    prefix = f".{target.name[:100]}."
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            name = entry.name
            if not name.startswith(prefix) or not name.endswith((".tmp", ".old")):
                continue
            try:
                pid = int(name[len(prefix) :].split(".", 1)[0])
                os.kill(pid, 0)
            except ProcessLookupError:
                _remove(Path(entry.path))
            except (ValueError, OSError):
                continue


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def make_dirs(path: Path) -> None:
    """``mkdir -p`` with the umask's modes; a failure is a UsageError naming ``path``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(
            f"{path}: exists and is not a directory\n"
            "  = hint: choose a new or empty directory (or remove the file)"
        ) from None
    except OSError as exc:
        raise os_error(exc, path, "create the directory") from None


def _write_file(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist), write ``data`` and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@dataclass(frozen=True)
class _Move:
    temp: Path
    target: Path
    is_dir: bool
    keep: Callable[[str], bool] | None = None


class Staging:
    """Replacements of files and directories that take effect together.

    Nothing is renamed until :meth:`commit` (the end of a ``with`` block without an
    exception); by then every byte is written and fsynced, so a full disk or an error
    changes nothing. Renames allocate no space, so a commit does not fail for lack of
    it."""

    def __init__(self) -> None:
        self._moves: list[_Move] = []
        self._done = False

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    def _target(self, target: str | Path, is_dir: bool) -> Path:
        path = Path(target)
        if path.name in ("", ".", ".."):
            path = path.resolve()
        # A symbolic link is replaced itself, never what it points at: a unit inside
        # an artifact (``weights``) may be a link planted to make specc replace, and
        # so delete, a directory elsewhere. (A user's own ``-o LINK`` is resolved by
        # the command before it gets here.)
        if path.exists() and not path.is_symlink() and path.is_dir() != is_dir:
            hint = (
                "the output is a directory: give a new or empty one (or an earlier output)"
                if is_dir
                else "the output is a file: give a file name, not a directory"
            )
            raise UsageError(
                f"{path}: exists and is {'a file' if is_dir else 'a directory'}\n  = hint: {hint}"
            )
        make_dirs(path.parent)
        _remove_stale(path)
        return path

    def write_bytes(self, target: str | Path, data: bytes) -> Path:
        """Stage ``data`` as the new content of the file ``target``."""
        path = self._target(target, is_dir=False)
        temp = _temp_name(path, ".tmp")
        self._moves.append(_Move(temp, path, is_dir=False))
        try:
            _write_file(temp, data)
        except OSError as exc:
            self.discard()
            raise os_error(exc, path, "write") from None
        return temp

    @contextlib.contextmanager
    def open(self, target: str | Path) -> Iterator[BinaryIO]:
        """Stage the new content of ``target``, written through a binary file object."""
        path = self._target(target, is_dir=False)
        temp = _temp_name(path, ".tmp")
        self._moves.append(_Move(temp, path, is_dir=False))
        try:
            fd = os.open(
                temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666
            )
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            self.discard()
            raise os_error(exc, path, "write") from None
        except BaseException:
            self.discard()
            raise

    def directory(self, target: str | Path, keep: Callable[[str], bool] | None = None) -> Path:
        """An empty temp directory that replaces the directory ``target`` on commit.

        Entries of the old ``target`` whose names satisfy ``keep`` are moved into the
        new one at commit (renames: nothing is copied)."""
        path = self._target(target, is_dir=True)
        temp = _temp_name(path, ".tmp")
        try:
            os.mkdir(temp, 0o777)
        except OSError as exc:
            self.discard()
            raise os_error(exc, path, "create the directory") from None
        self._moves.append(_Move(temp, path, is_dir=True, keep=keep))
        return temp

    def write_into(self, directory: Path, relative: str, data: bytes) -> None:
        """Write a file (and its parent folders) inside a staged ``directory``."""
        path = directory / check_relative(relative)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_file(path, data)
        except OSError as exc:
            final = next((m.target for m in self._moves if m.temp == directory), directory)
            self.discard()
            raise os_error(exc, final / relative, "write") from None

    def discard(self) -> None:
        """Remove every temp file and directory; the targets stay as they were."""
        for move in self._moves:
            _remove(move.temp)
        self._moves.clear()

    def commit(self) -> None:
        """Rename everything staged into place, in the order it was staged."""
        moves, self._moves = self._moves, []
        try:
            while moves:
                move = moves[0]
                if move.is_dir:
                    _swap_dir(move)
                else:
                    os.replace(move.temp, move.target)
                _fsync_dir(move.target.parent)
                moves.pop(0)
        except OSError as exc:
            for move in moves:
                _remove(move.temp)
            raise os_error(exc, moves[0].target, "write") from None


def _swap_dir(move: _Move) -> None:
    """Put the directory ``move.temp`` in the place of ``move.target``."""
    target, temp = move.target, move.temp
    for _ in range(3):  # another writer may swap at the same time: last one wins
        if not os.path.lexists(target):
            try:
                os.rename(temp, target)
                return
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                continue
        carried: list[str] = []
        if move.keep is not None and not target.is_symlink():
            for name in sorted(os.listdir(target)):
                if move.keep(name) and not (temp / name).exists():
                    os.rename(target / name, temp / name)
                    carried.append(name)
        old = _temp_name(target, ".old")
        try:
            os.rename(target, old)
        except OSError:
            for name in carried:  # put them back: the old directory stays whole
                with contextlib.suppress(OSError):
                    os.rename(temp / name, target / name)
            raise
        try:
            os.rename(temp, target)
        except OSError:
            with contextlib.suppress(OSError):
                os.rename(old, target)
            raise
        _remove(old)  # a link is unlinked, not followed
        return
    raise OSError(errno.EBUSY, "another process keeps replacing it", str(target))


def write_bytes(target: str | Path, data: bytes) -> None:
    """Replace the file ``target`` with ``data`` atomically (see :class:`Staging`)."""
    with Staging() as stage:
        stage.write_bytes(target, data)


def check_output_dir(path: str | Path, option: str) -> None:
    """Refuse, before any work, an output directory that cannot be one: an existing
    file, or a path below a file. ``option`` names it in the message."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(
            f"{option} {p}: exists and is a file, not a directory\n"
            "  = hint: give a directory (it is created if missing)"
        )
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(
                    f"{option} {p}: {parent} is a file, not a directory\n"
                    "  = hint: choose another path"
                )
            return


# --------------------------------------------------------------------------- reading


class PathRefused(Exception):
    """A path named by untrusted data that may not be read; the message says why."""


def check_relative(path: str) -> str:
    """Return ``path`` if it is relative, normalised and stays where it is put:
    POSIX separators, no empty, ``.`` or ``..`` component, no backslash or NUL.

    >>> check_relative("prompts/apology.txt")
    'prompts/apology.txt'
    >>> check_relative("../secret/notes.txt")
    Traceback (most recent call last):
    ...
    specc.files.PathRefused: '../secret/notes.txt' leaves the directory ('..')
    """
    if not isinstance(path, str) or not path:
        raise PathRefused(f"{path!r} is not a relative path")
    if "\\" in path or "\0" in path or len(path) > 1024:
        raise PathRefused(f"{path!r} is not a plain relative path")
    if path.startswith("/"):
        raise PathRefused(f"{path!r} is absolute")
    for part in path.split("/"):
        if part == "..":
            raise PathRefused(f"{path!r} leaves the directory ('..')")
        if part in ("", ".") or len(part) > 255:
            raise PathRefused(f"{path!r} is not normalised")
    return path


def read_inside(root: str | Path, relative: str, limit: int) -> bytes:
    """The bytes of the regular file ``root/relative``, at most ``limit`` of them.

    ``relative`` must pass :func:`check_relative`; no component below ``root`` may be
    a symbolic link (each is opened with ``O_NOFOLLOW`` relative to its parent, so a
    link swapped in meanwhile does not count either); devices, FIFOs and sockets are
    refused without blocking. Raises :class:`PathRefused` for all of these,
    ``FileNotFoundError`` for a missing file and ``OSError`` for the rest."""
    parts = check_relative(relative).split("/")
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                sub = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise PathRefused(f"{relative!r}: {part!r} is a link or not a folder") from None
                raise
            os.close(fd)
            fd = sub
        try:
            file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NONBLOCK | nofollow, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathRefused(f"{relative!r} is a symbolic link") from None
            raise
    finally:
        os.close(fd)
    return _read_fd(file_fd, relative, limit)


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (links followed: a path the user gave),
    at most ``limit`` of them; :class:`PathRefused` for anything else or more."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    return _read_fd(fd, str(path), limit)


def _read_fd(fd: int, name: str, limit: int) -> bytes:
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise PathRefused(f"{name!r} is not a regular file")
        if info.st_size > limit:
            raise PathRefused(f"{name!r} has {info.st_size} bytes; the limit is {limit}")
        data = f.read(min(limit, info.st_size) + 1)
    if len(data) > limit:
        raise PathRefused(f"{name!r} has more than {limit} bytes")
    return data
