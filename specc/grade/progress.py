"""A small progress bar on stderr: prompts done, rows/s and the time left.

On a terminal it redraws one line; elsewhere (a log file, CI) it prints a line at
most every 10 seconds, so logs stay short.

>>> bar = ProgressBar(total=200, rows=100)   # doctest: +SKIP
>>> bar.advance(50); bar.finish()             # doctest: +SKIP
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    """What :func:`~specc.grade.features.extract_features` reports to."""

    def start(self, total: int, rows: int, unit: str = "prompts") -> None:
        """``total`` units of work (graded prompts, or rows) for ``rows`` rows."""

    def advance(self, n: int) -> None: ...

    def finish(self) -> None: ...


def _clock(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class ProgressBar:
    """The default :class:`Progress`: ``[#####.....] 120/400 prompts 35.2 rows/s ETA``."""

    def __init__(self, stream: TextIO | None = None, width: int = 28, interval: float = 0.2):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.interval = interval if self.tty else 10.0
        self.total = 0
        self.unit = "prompts"
        self.rows = 0
        self.done = 0
        self._t0 = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def start(self, total: int, rows: int, unit: str = "prompts") -> None:
        self.total, self.rows, self.done, self.unit = max(total, 0), rows, 0, unit
        self._t0 = time.monotonic()
        self._draw(force=True)

    def advance(self, n: int) -> None:
        self.done = min(self.total, self.done + n)
        self._draw()

    def finish(self) -> None:
        self._draw(force=True)
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        frac = self.done / self.total if self.total else 1.0
        filled = round(frac * self.width)
        rows_done = frac * self.rows
        rate = rows_done / elapsed
        eta = _clock((self.rows - rows_done) / rate) if rate > 0 else "?"  # none yet
        bar = "#" * filled + "." * (self.width - filled)
        return (
            f"grading [{bar}] {self.done}/{self.total} {self.unit}  "
            f"{rate:.1f} rows/s  elapsed {_clock(elapsed)}  ETA {eta}"
        )

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        text = self.line()
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self._drawn = True
