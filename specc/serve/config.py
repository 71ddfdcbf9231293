"""The settings of ``specc serve`` and their defaults (the CLI help quotes these).

>>> ServeConfig().max_body_bytes
2097152
>>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
(True, True, False)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

#: End-of-sequence texts of common chat templates, stripped from the end of a
#: response (repeatedly, ignoring whitespace after them) before it is graded.
DEFAULT_EOS_TEXTS: tuple[str, ...] = (
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "<end_of_turn>",
    "<eos>",
    "</s>",
    "<｜end▁of▁sentence｜>",
)


@dataclass(frozen=True)
class ServeConfig:
    """Everything the app needs besides the reward itself."""

    api_key: str | None = None
    max_body_bytes: int = 2 * 1024 * 1024
    max_connections: int = 512  # x max_body_bytes: the most request bodies held at once
    body_timeout_s: float = 30.0
    max_request_rows: int = 1024
    max_batch_rows: int = 256
    max_wait_ms: float = 5.0
    max_queue_rows: int = 16384
    eos_texts: tuple[str, ...] = field(default=DEFAULT_EOS_TEXTS)
    default_response_type: str | None = None


@dataclass(frozen=True)
class LagrangeOptions:
    """How the server's Lagrange multipliers (one per constraint) are set up and
    stepped: ``every`` observed completions, one step of each multiplier on their
    costs (see ``specc.safe.LagrangeController`` for the others)."""

    enabled: bool = True
    every: int = 128
    lambda_init: float = 1.0
    lr: float = 0.1
    window: int = 128
    lambda_max: float | None = None
    delay: int = 0
    state_path: str | None = None

    def controller_settings(self) -> dict[str, Any]:
        return {
            "lambda_init": self.lambda_init,
            "lr": self.lr,
            "window": self.window,
            "lambda_max": self.lambda_max,
            "delay": self.delay,
        }


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``):
    what ``specc serve`` and the grade server (``specc.grade.server``) bind without
    ``--allow-remote``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
