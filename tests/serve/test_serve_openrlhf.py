"""OpenRLHF 0.11.2's own reward client against ``specc serve``, and its ``.py`` path.

``openrlhf.utils.agent.SingleTurnAgentExecutor`` is the code that calls a remote
reward in OpenRLHF's PPO: over HTTP (``_fetch_rewards_via_http``) or through a
``reward_func`` file (``_fetch_rewards_via_func``), from ``execute``, which decodes
prompt + response tokens with special tokens kept. vLLM needs a GPU, so a tiny
random transformers model generates the responses here, behind the two attributes
of vLLM's output that ``execute`` reads.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import specc
import specc.integrations.openrlhf as reward_file
from specc.serve.command import BackgroundServer

from .conftest import chat_prompt, rule_rows

agent = pytest.importorskip("openrlhf.utils.agent")


class TransformersEngine:
    """Greedy generation with a transformers model, answering like vLLM's
    ``generate``: ``outputs[0]`` with ``token_ids``, ``text``, ``finish_reason``."""

    def __init__(self, path: Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = AutoModelForCausalLM.from_pretrained(path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)

    async def generate(
        self, prompt_ids: list[int], params: Any, multi_modal_data: Any = None
    ) -> Any:
        import torch

        eos = self.tokenizer.eos_token_id
        with torch.inference_mode():
            out = self.model.generate(
                torch.tensor([prompt_ids]),
                attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
                max_new_tokens=params.max_tokens,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=eos,
            )
        ids = out[0, len(prompt_ids) :].tolist()
        output = SimpleNamespace(
            token_ids=ids,
            text=self.tokenizer.decode(ids, skip_special_tokens=True),
            finish_reason="stop" if ids and ids[-1] == eos else "length",
            logprobs=None,
        )
        return SimpleNamespace(outputs=[output])


def reference(artifact: Path, prompts: list[str], responses: list[str], labels: list[str]) -> Any:
    rows = [
        {"prompt": p, "completion": r, "response_type": t}
        for p, r, t in zip(prompts, responses, labels, strict=True)
    ]
    return specc.load(artifact, grader="rules")(rows)


def one_per_call(fetch: Any, queries: list[str], prompts: list[str], labels: list[str]) -> Any:
    """Call ``fetch`` once per sample, all at once (as rollouts do); each reply."""

    async def gather() -> list[Any]:
        calls = [fetch([q], [p], [t]) for q, p, t in zip(queries, prompts, labels, strict=True)]
        return await asyncio.gather(*calls)

    return [reply[0] for reply in asyncio.run(gather())]


def samples(n: int) -> tuple[list[str], list[str], list[str]]:
    rows = rule_rows(n, seed=11)
    prompts = [chat_prompt(r["prompt"][0]["content"]) for r in rows]
    return prompts, [str(r["completion"]) for r in rows], [str(r["response_type"]) for r in rows]


def test_openrlhf_http_client(rules_server: BackgroundServer, rules_artifact: Path) -> None:
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=[rules_server.url + "/get_reward"])
    prompts, responses, labels = samples(12)
    queries = [p + r + "<|im_end|>" for p, r in zip(prompts, responses, strict=True)]

    replies = one_per_call(executor._fetch_rewards_via_http, queries, prompts, labels)
    got = [r["rewards"][0] for r in replies]
    np.testing.assert_array_equal(got, reference(rules_artifact, prompts, responses, labels))
    assert all(r["scores"] == r["rewards"] for r in replies)
    assert all("rbr/cost/no_hotline_spam" in r["extra_logs"] for r in replies)


@pytest.fixture(scope="module")
def engine(tiny_gpt2: Path) -> TransformersEngine:
    return TransformersEngine(tiny_gpt2)


def execute(executor: Any, engine: TransformersEngine, prompt: str, label: str) -> Any:
    params = SimpleNamespace(max_tokens=12, logprobs=None)
    return asyncio.run(executor.execute(prompt, label, params, 256, engine.tokenizer, engine))


def test_openrlhf_rollout_through_the_server(
    rules_server: BackgroundServer, rules_artifact: Path, engine: TransformersEngine
) -> None:
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=rules_server.url + "/get_reward")
    prompts, _, labels = samples(4)
    for prompt, label in zip(prompts, labels, strict=True):
        out = execute(executor, engine, prompt, label)
        assert out["reward"] is not None, "OpenRLHF got no reward (see the server log)"
        start, end = out["action_ranges"][0]
        response = engine.tokenizer.decode(out["observation_tokens"][start:end])
        if response.endswith(engine.tokenizer.eos_token):
            response = response[: -len(engine.tokenizer.eos_token)]
        (expected,) = reference(rules_artifact, [prompt], [response], [label])
        assert out["reward"] == [expected]
        assert out["scores"] == [expected]
        assert set(out["extra_logs"]) >= {"rbr/raw_reward", "rbr/tier/ideal"}


def test_openrlhf_reward_file(
    rules_artifact: Path, engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPECC_ARTIFACT", str(rules_artifact))
    monkeypatch.setenv("SPECC_GRADER", "rules")
    assert reward_file.__file__ is not None
    # OpenRLHF loads the file by path (a module named "reward_func"), not by import.
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=[reward_file.__file__])
    assert executor.reward_func is not reward_file.reward_func
    prompts, responses, labels = samples(8)
    queries = [p + r + "<|endoftext|>" for p, r in zip(prompts, responses, strict=True)]

    replies = one_per_call(executor._fetch_rewards_via_func, queries, prompts, labels)
    got = [r["rewards"][0] for r in replies]
    np.testing.assert_array_equal(got, reference(rules_artifact, prompts, responses, labels))
    # The reward loaded once for the process, whichever module object called it.
    assert len(reward_file._SCORERS) == 1
    out = execute(executor, engine, prompts[0], labels[0])
    assert out["reward"] is not None and len(out["extra_logs"]["rbr/raw_reward"]) == 1


def test_openrlhf_reward_file_errors_are_logged(
    rules_artifact: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SPECC_ARTIFACT", raising=False)
    with pytest.raises(specc.UsageError, match="SPECC_ARTIFACT"):
        reward_file.reward_func(["a"], ["a"], ["comply"])
    monkeypatch.setenv("SPECC_ARTIFACT", str(rules_artifact))
    monkeypatch.setenv("SPECC_GRADER", "rules")
    monkeypatch.setenv("SPECC_EOS_TEXT", "not json")
    with pytest.raises(specc.UsageError, match="SPECC_EOS_TEXT"):
        reward_file.reward_func(["a"], ["a"], ["comply"])
    monkeypatch.setenv("SPECC_EOS_TEXT", "[]")
    for batch in ("\u00b2", "0"):  # a digit to str.isdigit(), not to int(); no batch
        monkeypatch.setenv("SPECC_BATCH_SIZE", batch)
        with pytest.raises(specc.UsageError, match="SPECC_BATCH_SIZE must be a positive"):
            reward_file.reward_func(["a"], ["a"], ["comply"])
    monkeypatch.delenv("SPECC_BATCH_SIZE")
    with (
        caplog.at_level("ERROR", logger="specc.integrations.openrlhf"),
        pytest.raises(Exception, match="unknown response type"),
    ):
        reward_file.reward_func(["ab"], ["a"], ["nope"])
    assert any("unknown response type" in r.getMessage() for r in caplog.records)
    reply = reward_file.reward_func(["a Sorry, I can't.<|im_end|>"], ["a"], ["Refuse"])
    (expected,) = reference(rules_artifact, ["a"], [" Sorry, I can't.<|im_end|>"], ["Refuse"])
    assert reply["rewards"] == [expected]  # SPECC_EOS_TEXT=[]: nothing stripped
