"""argparse types for numeric options: a bad value is a usage error (exit 2) that says
what the option accepts, before any file is read or any model is loaded.

>>> positive_int("8")
8
>>> positive_int("0")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: must be a whole number of at least 1, not '0'
>>> fraction("0.2"), port("8000"), seconds("2.5")
(0.2, 8000, 2.5)
"""

from __future__ import annotations

import argparse
import math

__all__ = [
    "device",
    "fraction",
    "non_negative_int",
    "port",
    "positive_int",
    "seconds",
    "share",
]


def _int(text: str, low: int, what: str, high: int | None = None) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (``--batch-size``, ``--concurrency``, ``--limit``)."""
    return _int(text, 1, "a whole number of at least 1")


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (``--seed``)."""
    return _int(text, 0, "a whole number of at least 0")


def port(text: str) -> int:
    """A TCP port, 0 to 65535 (0: any free port)."""
    return _int(text, 0, "a port number from 0 to 65535", high=65535)


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def seconds(text: str) -> float:
    """A duration in seconds, > 0 (``--timeout``)."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def fraction(text: str) -> float:
    """A share in [0, 1) (``--valid-fraction``: 0 holds nothing out)."""
    value = _float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(
            f"must be a fraction from 0 up to (not including) 1, not {text!r}"
        )
    return value


def share(text: str) -> float:
    """A share strictly between 0 and 1 (``--holdout``)."""
    value = _float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, not {text!r}")
    return value


def device(text: str) -> str:
    """A torch device name: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``xpu[:N]``.

    Only the spelling is checked here; whether the device exists is checked when an
    hf grader is built (:func:`specc.devices.check_device`)."""
    from specc.devices import check_device
    from specc.errors import UsageError

    try:
        return check_device(text, available=False)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
