"""One atomic file write for the outputs of ``specc import`` and ``specc eval``.

The bytes go to a temp sibling, are fsynced, and only then replace the target with
``os.replace``: a crash or an error leaves the old file (or none) as it was. An
existing target is replaced only when the caller says so (``replace=True``).

>>> write_atomic("policy.rbr", b"...", replace=False)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from specc.errors import UsageError

__all__ = ["write_atomic"]


def write_atomic(path: str | Path, data: bytes, *, replace: bool, option: str = "--force") -> None:
    """Write ``data`` to ``path`` atomically; an existing file is a UsageError naming
    ``option`` unless ``replace``."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{path}: is a directory; give a file name")
    if target.exists() and not replace:
        raise UsageError(f"{path}: exists; pass {option} to replace it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
