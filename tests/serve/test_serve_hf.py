"""The server with a tiny random hf grader: batched grading equals specc.load."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from specc.serve.app import create_app
from specc.serve.command import BackgroundServer
from specc.serve.config import ServeConfig
from specc.serve.engine import RewardEngine

from .conftest import make_rows, openrlhf_body
from .test_serve_http import _concurrent, in_process


@pytest.fixture(scope="module")
def hf_grader(tiny_gpt2: Path) -> str:
    return f"hf:{tiny_gpt2}"


@pytest.fixture(scope="module")
def hf_server(llm_artifact: Path, hf_grader: str) -> Iterator[BackgroundServer]:
    engine = RewardEngine.load(llm_artifact, hf_grader, device="cpu", dtype="float32")
    engine.warm_up()
    with BackgroundServer(create_app(engine, ServeConfig(max_wait_ms=50))) as srv:
        yield srv


def test_hf_rewards_equal_specc_load(
    hf_server: BackgroundServer, llm_artifact: Path, hf_grader: str
) -> None:
    rows = make_rows(24, seed=7)
    bodies = [openrlhf_body([r], "<|endoftext|>") for r in rows]
    replies = asyncio.run(_concurrent(hf_server.url + "/get_reward", bodies))
    assert [s for s, _ in replies] == [200] * len(rows)
    got = np.array([reply["rewards"][0] for _, reply in replies])
    expected = in_process(llm_artifact, hf_grader, rows)
    # Batches of other shapes than the in-process call: float32 rounding only.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert np.ptp(got) > 1e-3  # the grader's answers really vary
    tiers = [reply["extra_logs"]["rbr/tier/ideal"][0] for _, reply in replies]
    assert any(0.0 < p < 1.0 for p in tiers)  # probabilities, not only 0/1 extractor values
