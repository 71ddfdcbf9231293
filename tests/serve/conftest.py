"""Fixtures of the server tests: fitted test policies, a live server, rows and HTTP.

The rules policy is graded by extractors only, so its rewards are exact and fast;
the LLM policy (the grading tests' policy) is fitted on labels and served with a
tiny random GPT-2 built offline.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grade.conftest import SPEC as LLM_SPEC
from grade.conftest import make_rows, one_torch_thread, tiny_gpt2

from specc.serve.app import create_app
from specc.serve.command import BackgroundServer
from specc.serve.config import ServeConfig
from specc.serve.engine import RewardEngine

__all__ = ["make_rows", "one_torch_thread", "tiny_gpt2"]

#: Every proposition has an extractor: the rules grader answers them all.
RULES_SPEC = """\
policy "servetest" version "0.1.0"

proposition apology { match keywords ["sorry", "apologise", "apologize"] }
proposition refuses { match regex "(?i)\\\\b(can't|cannot|won't|will not)\\\\b" }
proposition short { match length < 14 words }
proposition hotline { match regex "(?i)\\\\b(hotline|helpline)\\\\b" }

response_type refuse "Refuse" {
  ideal        when refuses and apology and short
  less_good    when refuses and not (apology and short)
  unacceptable otherwise
  reward { extra = [hotline] }
}

response_type comply "Comply" {
  ideal        when not refuses and not apology
  less_good    when not refuses and apology
  unacceptable otherwise
}

constraint no_hotline_spam {
  cost = hotline
  limit = 10%
  applies_to = [comply]
}
"""

PROMPTS = [
    "How do I pick a lock?",
    "What is the capital of France?",
    "Write me a poem about the sea.",
    "Can you help me cheat on my exam?",
    "How do I boil an egg?",
    "Tell me how to make a fake ID.",
]
REPLIES = [
    "Sorry, I can't help with that.",
    "I won't do that.",
    "I'm sorry, but I cannot help you with this request, because it could hurt people "
    "and is against the rules.",
    "Paris is the capital of France.",
    "Sorry for the wait: boil it for six minutes, then cool it in cold water.",
    "The sea is wide, the sea is deep, its waves roll on while sailors sleep.",
    "I can't do that, but the helpline at 555-0100 can.",
    "Call the hotline if you need help; here is the poem you asked for.",
]


def rule_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Rows of both response types, with varied replies."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": f"s{i}",
                "prompt": [{"role": "user", "content": rng.choice(PROMPTS) + f" (#{i // 4})"}],
                "completion": rng.choice(REPLIES) + rng.choice(["", " Thanks.", " OK?"]),
                "response_type": "Refuse" if i % 2 == 0 else "comply",
            }
        )
    return rows


def compile_and_fit(spec: str, folder: Path, rows: list[dict[str, Any]], grader: str) -> Path:
    """Compile ``spec`` into ``folder``, grade ``rows`` and fit the weights there.

    Rows without a ``completion_label`` are labelled with their most likely tier."""
    from specc import compile_spec
    from specc.artifact import load_artifact
    from specc.grade import extract_features, make_grader
    from specc.grade.data import parse_row
    from specc.pipeline import fit_artifact
    from specc.weights import save_weights, weights_from_results

    (folder / "policy.rbr").write_text(spec, encoding="utf-8")
    out = folder / "artifact"
    compile_spec(folder / "policy.rbr", out)
    art = load_artifact(out)
    parsed = [parse_row(r, f"row {i}", i) for i, r in enumerate(rows)]
    feats = extract_features(art, parsed, make_grader(grader))
    for f in feats:
        if f.completion_label is None:
            f.completion_label = max(f.classes, key=f.classes.__getitem__)
    results, _ = fit_artifact(art, feats)
    save_weights(out, weights_from_results(art.spec_hash, results))
    return out


@pytest.fixture(scope="session")
def rules_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_and_fit(RULES_SPEC, tmp_path_factory.mktemp("rules"), rule_rows(80), "rules")


@pytest.fixture(scope="session")
def llm_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = make_rows(60, labels=True)
    return compile_and_fit(LLM_SPEC, tmp_path_factory.mktemp("llm"), rows, "labels")


@pytest.fixture(scope="module")
def rules_engine(rules_artifact: Path) -> RewardEngine:
    return RewardEngine.load(rules_artifact, "rules")


@pytest.fixture(scope="module")
def rules_server(rules_engine: RewardEngine) -> Iterator[BackgroundServer]:
    config = ServeConfig(max_body_bytes=64 * 1024, max_request_rows=64)
    with BackgroundServer(create_app(rules_engine, config)) as srv:
        yield srv


def post(
    url: str, body: Any, *, headers: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, Any]:
    """POST JSON (or raw bytes); the status and the decoded reply."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def openrlhf_body(rows: list[dict[str, Any]], eos: str = "") -> dict[str, list[str]]:
    """What OpenRLHF sends for these rows: prompt + response as one query."""
    prompts = [chat_prompt(r["prompt"][0]["content"]) for r in rows]
    replies = [
        c if isinstance(c, str) else c[0]["content"] for c in (r["completion"] for r in rows)
    ]
    return {
        "query": [p + c + eos for p, c in zip(prompts, replies, strict=True)],
        "prompts": prompts,
        "labels": [r["response_type"] for r in rows],
    }


def chat_prompt(user: str) -> str:
    """A ChatML-templated prompt, as OpenRLHF's --data.apply_chat_template makes."""
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
