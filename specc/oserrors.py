"""Operating-system errors (disk full, permission denied, read-only file system) as
usage errors (exit 2) that name the path, say what failed and what to do.

>>> import errno
>>> print(os_error(OSError(errno.ENOSPC, "No space left on device"), "f.jsonl", "write"))
f.jsonl: cannot write: No space left on device
  = hint: free some space on that disk, or write somewhere else
"""

from __future__ import annotations

import errno
from pathlib import Path

from specc.errors import UsageError

__all__ = ["os_error"]

_HINTS: dict[int, str] = {
    errno.ENOSPC: "free some space on that disk, or write somewhere else",
    errno.EDQUOT: "your disk quota is used up: free some space, or write somewhere else",
    errno.EACCES: "check the permissions of the file and of its folder, or use another path",
    errno.EPERM: "check the permissions of the file and of its folder, or use another path",
    errno.EROFS: "that file system is read-only: use a path on a writable disk",
    errno.ENOENT: "check the path (relative paths start in the current folder)",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "that is a folder: give the path of a file",
    errno.EEXIST: "something is already there: remove it or choose another path",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or grade less at once",
    errno.ENFILE: "too many open files on this machine: try again later",
    errno.EIO: "the disk or file system reported an I/O error: check it, or use another disk",
}


def os_error(exc: OSError, path: str | Path | None = None, action: str = "access") -> UsageError:
    """A :class:`UsageError` for ``exc`` raised while trying to ``action`` ``path``
    (``"read"``, ``"write"``, ``"create the folder"``); ``path`` defaults to the
    file name the error carries."""
    where = path if path is not None else exc.filename
    reason = (exc.strerror or type(exc).__name__).rstrip(".")
    text = f"cannot {action}: {reason}"
    if where is not None:
        text = f"{where}: {text}"
    hint = _HINTS.get(exc.errno) if exc.errno is not None else None
    if hint:
        text += f"\n  = hint: {hint}"
    return UsageError(text)
