"""OpenRLHF's reward-function file: ``--reward.remote_url /path/to/openrlhf.py``.

OpenRLHF 0.11.2 loads a ``remote_url`` that ends in ``.py`` with
``importlib.util.spec_from_file_location`` and calls its ``reward_func(queries,
prompts, labels)`` once per sample on a worker thread
(``openrlhf.utils.agent.SingleTurnAgentExecutor._fetch_rewards_via_func``). It reads
``"rewards"``, ``"scores"`` and ``"extra_logs"`` from the returned dict, exactly as
from the HTTP server's JSON reply, so this file returns the same shape as
``specc serve``'s ``/get_reward``.

Configured by environment variables (set them where the vLLM engines run):

==========================  ================================================
``SPECC_ARTIFACT``          the compiled artifact with fitted weights (required)
``SPECC_GRADER``            ``hf:PATH``, ``openai:URL#MODEL``, ``rules``... (required)
``SPECC_DEVICE``            hf: ``cpu``, ``cuda``, ... (default ``auto``)
``SPECC_DTYPE``             hf: ``auto``, ``float32``, ``bfloat16``, ``float16``
``SPECC_BATCH_SIZE``        hf: rows per forward pass (default 16)
``SPECC_RESPONSE_TYPE``     the response type of samples whose label is empty
``SPECC_EOS_TEXT``          a JSON list of end-of-sequence texts to strip
                            (default: those of ``specc serve``); ``[]`` strips none
==========================  ================================================

The reward is loaded once per process and concurrent calls are graded together.
Lagrange shaping of constraints needs one owner of the multipliers, which a file
loaded by every vLLM engine cannot be: rewards here are unshaped (costs are in
``extra_logs``); use ``specc serve`` for Safe RLHF.

Find the file's path with ``python -c "import specc.integrations.openrlhf as m;
print(m.__file__)"``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from specc.errors import UsageError

log = logging.getLogger("specc.integrations.openrlhf")

__all__ = ["reward_func"]

_LOCK = threading.Lock()


def _settings() -> dict[str, Any]:
    artifact = os.environ.get("SPECC_ARTIFACT")
    grader = os.environ.get("SPECC_GRADER")
    if not artifact or not grader:
        raise UsageError(
            "the OpenRLHF reward file needs SPECC_ARTIFACT (a compiled, fitted artifact) "
            "and SPECC_GRADER (hf:PATH, openai:URL#MODEL, rules, ...) in the environment"
        )
    eos: tuple[str, ...] | None = None
    raw_eos = os.environ.get("SPECC_EOS_TEXT")
    if raw_eos:
        try:
            value = json.loads(raw_eos)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"SPECC_EOS_TEXT must be a JSON list of strings, not {raw_eos!r}")
        eos = tuple(value)
    batch = os.environ.get("SPECC_BATCH_SIZE")
    if batch is not None and not (batch.isascii() and batch.isdigit() and int(batch) > 0):
        raise UsageError(f"SPECC_BATCH_SIZE must be a positive integer, not {batch!r}")
    return {
        "artifact": artifact,
        "grader": grader,
        "device": os.environ.get("SPECC_DEVICE", "auto"),
        "dtype": os.environ.get("SPECC_DTYPE", "auto"),
        "batch_size": int(batch) if batch else None,
        "eos": eos,
        "response_type": os.environ.get("SPECC_RESPONSE_TYPE") or None,
    }


class _Scorer:
    """The loaded reward, its settings and the batcher for this process."""

    def __init__(self, settings: dict[str, Any]):
        from specc.serve.batcher import ThreadBatcher
        from specc.serve.config import DEFAULT_EOS_TEXTS
        from specc.serve.engine import RewardEngine

        self.settings = settings
        self.engine = RewardEngine.load(
            settings["artifact"],
            settings["grader"],
            device=settings["device"],
            dtype=settings["dtype"],
            batch_size=settings["batch_size"],
        )
        self.eos: tuple[str, ...] = (
            DEFAULT_EOS_TEXTS if settings["eos"] is None else settings["eos"]
        )
        self.batcher = ThreadBatcher(self.engine.grade_groups, max_rows=256)

    def __call__(
        self, queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any]
    ) -> dict[str, Any]:
        from specc.serve.protocol import parse_get_reward

        request = parse_get_reward(
            {"query": list(queries), "prompts": list(prompts), "labels": list(labels)},
            eos_texts=self.eos,
            max_rows=max(1, len(queries)),
            default_response_type=self.settings["response_type"],
        )
        samples = self.engine.samples(request.rows)
        return self.engine.openrlhf_reply(self.batcher.submit(samples))


_SCORERS: dict[str, _Scorer] = {}


def _scorer() -> _Scorer:
    """The process's scorer for the current settings. OpenRLHF loads this file under
    another module name, maybe more than once; the cache lives in the module
    imported by its real name, so a process loads the model once."""
    import importlib

    home: Any = importlib.import_module("specc.integrations.openrlhf")
    settings = _settings()
    key = json.dumps(settings, sort_keys=True)
    with home._LOCK:
        scorer: _Scorer | None = home._SCORERS.get(key)
        if scorer is None:
            scorer = home._SCORERS[key] = home._Scorer(settings)
        return scorer


def reward_func(
    queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any]
) -> dict[str, Any]:
    """``{"rewards": [...], "scores": [...], "extra_logs": {...}}`` for the samples
    (OpenRLHF passes one at a time). A failure is logged here before it is raised,
    because OpenRLHF only logs, at info level, that the reward is missing."""
    try:
        return _scorer()(queries, prompts, labels)
    except Exception as exc:
        message = getattr(exc, "message", None) or str(exc)
        log.error("specc reward_func failed: %s: %s", type(exc).__name__, message)
        raise
