"""Torch devices by name: ``--device`` and the ``device=`` of the hf backend.

The spelling is checked without importing torch (the CLI checks it while parsing,
before anything is loaded); whether the device exists is checked, importing torch,
when an hf grader is built.

>>> check_device("cuda:1", available=False)
'cuda:1'
"""

from __future__ import annotations

import re

from specc.errors import UsageError

__all__ = ["check_device"]

_DEVICE = re.compile(r"(auto|cpu|mps|cuda|xpu)(?::(\d{1,4}))?")


def check_device(device: str, *, available: bool = True) -> str:
    """``device`` if it names a torch device this machine has, else a
    :class:`UsageError` that says which devices there are.

    Accepted: ``auto``, ``cpu``, ``mps``, ``cuda``, ``cuda:N``, ``xpu``, ``xpu:N``.
    With ``available=False`` only the spelling is checked (no torch import)."""
    m = _DEVICE.fullmatch(device)
    if m is None or (m.group(2) is not None and m.group(1) not in ("cuda", "xpu")):
        raise UsageError(
            f"unknown device {device!r}; use auto, cpu, cuda, cuda:N, mps or xpu"
            "\n  = hint: auto picks CUDA, then MPS, then the CPU"
        )
    kind, index = m.group(1), m.group(2)
    if not available or kind in ("auto", "cpu"):
        return device
    import torch

    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError(
                "--device mps: this machine has no Apple MPS device"
                "\n  = hint: use --device cpu, or auto"
            )
        return device
    backend = getattr(torch, kind, None)
    if backend is None or not backend.is_available():
        build = f"torch {torch.__version__}"
        raise UsageError(
            f"--device {device}: no {kind.upper()} device is available to {build}"
            + (" (a CPU-only build)" if kind == "cuda" and torch.version.cuda is None else "")
            + "\n  = hint: use --device cpu, or auto to take whatever this machine has"
        )
    count = int(backend.device_count())
    if index is not None and int(index) >= count:
        raise UsageError(
            f"--device {device}: this machine has {count} {kind.upper()} device(s), "
            f"numbered 0 to {count - 1}\n  = hint: use --device {kind}:0, or {kind}"
        )
    return device
