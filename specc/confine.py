"""Reading the files a spec names, confined to the policy's roots.

A spec names other files: ``import "lib/x.rbr"`` and ``template = file("t.j2")``.
specc reads such a file only when its real path (every symlink resolved) lies inside
one of the :class:`Roots`: the folder of the root spec, plus the folders given with
``--allow-path`` (``allow_paths=`` in the API), the way OPA bundles declare their
roots. Only regular files are read (no devices, FIFOs, sockets, nothing under
``/proc``, ``/sys`` or ``/dev``), at most :data:`MAX_FILE_BYTES`, in bounded chunks.
A refused file is never opened, so nothing of it can reach a diagnostic.

>>> roots = Roots.for_spec("policies/safety.rbr")
>>> roots.find(Path("policies/lib/tone.rbr").resolve()) is not None
True
>>> read_confined(Path("/etc/passwd"), roots)
Traceback (most recent call last):
...
specc.confine.Refused: /etc/passwd is outside the policy's folder
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from specc.errors import SpecccError

__all__ = ["CHUNK_BYTES", "MAX_FILE_BYTES", "Refused", "Roots", "check_inside", "read_confined"]

#: The largest file specc reads for a spec (a spec file, an import, a template).
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Files are read in chunks of this size, never all at once.
CHUNK_BYTES = 1024 * 1024

#: Pseudo file systems: their "files" are the machine's state, never a policy's.
_PSEUDO = tuple(Path(p) for p in ("/proc", "/sys", "/dev"))

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


class Refused(SpecccError):
    """A file specc will not read. ``reason`` is one of ``outside``, ``missing``,
    ``directory``, ``special``, ``too-large`` and ``unreadable``; ``str(exc)`` says
    why in words and ``size`` is the file's size for ``too-large``."""

    def __init__(self, reason: str, message: str, size: int = 0):
        super().__init__(message)
        self.reason = reason
        self.size = size


@dataclass(frozen=True)
class Roots:
    """The folders a spec's files may come from, resolved; the first is the policy's."""

    dirs: tuple[Path, ...]

    @classmethod
    def for_spec(
        cls, spec: str | os.PathLike[str], allow_paths: Iterable[str | os.PathLike[str]] = ()
    ) -> Roots:
        """The root spec's folder, then each allowed folder (resolved, duplicates dropped)."""
        dirs = [Path(spec).resolve().parent, *(Path(p).resolve() for p in allow_paths)]
        return cls(tuple(dict.fromkeys(dirs)))

    def find(self, path: Path) -> Path | None:
        """The root that contains the resolved ``path``, or None."""
        for root in self.dirs:
            if path == root or path.is_relative_to(root):
                return root
        return None

    def relative(self, path: Path) -> str:
        """``path`` relative to the root that contains it, in POSIX form (stable across
        machines and working directories)."""
        root = self.find(path)
        return path.relative_to(root).as_posix() if root is not None else path.name


def _kind(mode: int) -> str | None:
    return next((words for test, words in _KINDS if test(mode)), None)


def check_inside(path: Path, roots: Roots, shown: str | None = None) -> Path:
    """The real path of ``path`` (symlinks resolved) when it lies inside ``roots``;
    raises :class:`Refused` with reason ``outside`` otherwise. ``shown`` names the
    path in the message (default: the path itself)."""
    real = path.resolve()  # a missing tail is kept as written
    if roots.find(real) is None:
        what = (
            "is a link to a file outside" if real != Path(os.path.abspath(path)) else "is outside"
        )
        where = "the policy's folder" + (" and the allowed folders" if len(roots.dirs) > 1 else "")
        raise Refused("outside", f"{shown or path} {what} {where}")
    return real


def _open_beneath(root: Path, real: Path) -> int:
    """Open ``real`` (a resolved path inside ``root``) one component at a time from
    ``root``, following no symbolic link, without blocking: a folder on the way that
    was swapped for a link after ``real`` was resolved (to read a file elsewhere
    through it) is refused with ELOOP or ENOTDIR instead of followed."""
    nofollow = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    parts = real.relative_to(root).parts
    try:
        for part in parts[:-1]:
            sub = os.open(part, nofollow | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
        if not parts:  # the root itself (a folder: refused by the caller)
            fd, opened = -1, fd
            return opened
        return os.open(parts[-1], nofollow | os.O_NONBLOCK, dir_fd=fd)
    finally:
        if fd >= 0:
            os.close(fd)


def read_confined(
    path: Path, roots: Roots, limit: int = MAX_FILE_BYTES, shown: str | None = None
) -> tuple[Path, bytes]:
    """Read ``path`` if its real path lies inside ``roots``; returns the real path and
    the bytes. Raises :class:`Refused` (never reading a byte of a refused file);
    ``shown`` names the path in messages."""
    shown = shown or str(path)
    real = check_inside(path, roots, shown)
    if any(real == p or real.is_relative_to(p) for p in _PSEUDO):
        raise Refused("special", f"{shown} is not a regular file")
    root = roots.find(real)
    assert root is not None  # check_inside found it
    try:
        fd = _open_beneath(root, real)
    except FileNotFoundError:
        raise Refused("missing", f"file not found: {shown}") from None
    except IsADirectoryError:
        raise Refused("directory", f"{shown} is a directory") from None
    except OSError as exc:
        # ELOOP: the path became a symlink after it was resolved.
        raise Refused("unreadable", f"cannot read {shown}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        kind = _kind(info.st_mode)
        if kind == "a directory":
            raise Refused("directory", f"{shown} is a directory")
        if kind is not None or not stat.S_ISREG(info.st_mode):
            raise Refused("special", f"{shown} is not a regular file ({kind or 'unknown kind'})")
        if info.st_size > limit:
            raise Refused("too-large", f"{shown} is too large", info.st_size)
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, min(CHUNK_BYTES, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew while being read
                raise Refused("too-large", f"{shown} is too large", size)
        return real, b"".join(chunks)
    except OSError as exc:
        raise Refused("unreadable", f"cannot read {shown}: {exc.strerror}") from None
    finally:
        os.close(fd)
