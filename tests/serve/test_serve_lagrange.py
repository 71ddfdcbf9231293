"""Safe RLHF through the server: it owns the multipliers, shapes rewards, steps lambda."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import specc
from specc.safe import LagrangeController
from specc.serve.app import create_app
from specc.serve.command import BackgroundServer
from specc.serve.config import LagrangeOptions, ServeConfig
from specc.serve.engine import RewardEngine, Sample
from specc.serve.protocol import parse_get_reward

from .conftest import RULES_SPEC, compile_and_fit, openrlhf_body, post, rule_rows

LIMIT = 0.1  # the rules policy's no_hotline_spam, on comply rows only


def rows(response_type: str, hotline: bool, n: int) -> list[dict[str, Any]]:
    reply = "Call the hotline if you need help." if hotline else "Paris is in France."
    return [
        {
            "prompt": [{"role": "user", "content": f"Question {i}?"}],
            "completion": f"{reply} ({i})",
            "response_type": response_type,
        }
        for i in range(n)
    ]


def health(url: str) -> Any:
    with urllib.request.urlopen(url + "/health", timeout=30) as resp:
        return json.loads(resp.read())


def one_by_one(url: str, batch: list[dict[str, Any]]) -> list[Any]:
    out = []
    for row in batch:
        status, reply = post(url + "/get_reward", openrlhf_body([row]))
        assert status == 200, reply
        out.append(reply)
    return out


def test_shaped_rewards_and_lambda_steps(rules_artifact: Path, tmp_path: Path) -> None:
    state = tmp_path / "lagrange.json"
    options = LagrangeOptions(every=4, lr=0.5, state_path=str(state))
    engine = RewardEngine.load(rules_artifact, "rules", options)
    reference = LagrangeController(LIMIT, lr=0.5)
    reward = specc.load(rules_artifact, grader="rules")
    with BackgroundServer(create_app(engine, ServeConfig())) as srv:
        # Four costly comply completions: shaped with lambda_init = 1, then one step.
        costly = rows("comply", True, 4)
        replies = one_by_one(srv.url, costly)
        raw = reward(costly)
        assert [r["extra_logs"]["rbr/raw_reward"][0] for r in replies] == raw.tolist()
        assert [r["extra_logs"]["rbr/cost/no_hotline_spam"][0] for r in replies] == [1.0] * 4
        assert [r["extra_logs"]["rbr/lambda/no_hotline_spam"][0] for r in replies] == [1.0] * 4
        np.testing.assert_allclose(
            [r["rewards"][0] for r in replies], (raw - 1.0) / 2.0, rtol=0, atol=1e-12
        )
        lam = reference.update([1.0] * 4)
        assert lam > 1.0  # the constraint is violated: lambda grows
        status = health(srv.url)["lagrange"]["no_hotline_spam"]
        assert status["lambda"] == pytest.approx(lam, abs=1e-12) and status["updates"] == 1
        assert json.loads(state.read_text())["controllers"]["no_hotline_spam"]["updates"] == 1

        # Refuse completions count towards a step but not into the window (the
        # constraint covers comply only): the step they complete has no costs.
        one_by_one(srv.url, rows("Refuse", True, 4))
        status = health(srv.url)["lagrange"]["no_hotline_spam"]
        assert status["updates"] == 1 and status["lambda"] == pytest.approx(lam)

        # The next completions are shaped with the new lambda.
        (reply,) = one_by_one(srv.url, rows("comply", True, 1))
        expected = reference.shape(reward(rows("comply", True, 1)), [1.0])[0]
        assert reply["rewards"][0] == pytest.approx(expected, abs=1e-12)
        assert reply["extra_logs"]["rbr/lambda/no_hotline_spam"] == [pytest.approx(lam)]

        # /score rows marked observe=false are shaped but not counted.
        clean = rows("comply", False, 8)
        code, scored = post(srv.url + "/score", {"rows": clean, "observe": False})
        assert code == 200 and scored["lambda"] == {"no_hotline_spam": pytest.approx(lam)}
        np.testing.assert_allclose(scored["rewards"], np.array(scored["raw_rewards"]) / (1 + lam))
        assert health(srv.url)["lagrange"]["no_hotline_spam"]["updates"] == 1

        # Eight clean comply completions: with the costly one queued, two steps.
        one_by_one(srv.url, clean)
        reference.update([1.0] + [0.0] * 3)
        reference.update([0.0] * 4)
        status = health(srv.url)["lagrange"]["no_hotline_spam"]
        assert status["updates"] == 3
        assert status["lambda"] == pytest.approx(reference.lam, abs=1e-12)
        assert status["mean_cost"] == pytest.approx(reference.mean_cost)
        with urllib.request.urlopen(srv.url + "/metrics", timeout=30) as resp:
            text = resp.read().decode()
        assert f'specc_lambda{{constraint="no_hotline_spam"}} {reference.lam!r}' in text
        assert 'specc_lambda_updates_total{constraint="no_hotline_spam"} 3.0' in text

    # A restarted server resumes from the saved state.
    again = RewardEngine.load(rules_artifact, "rules", options)
    assert again.lagrange_status()["no_hotline_spam"]["lambda"] == pytest.approx(reference.lam)
    assert again.lagrange_status()["no_hotline_spam"]["updates"] == 3


def test_a_state_from_another_policy_is_refused(rules_artifact: Path, tmp_path: Path) -> None:
    other = compile_and_fit(
        RULES_SPEC.replace('"servetest"', '"other"'), tmp_path, rule_rows(80), "rules"
    )
    state = tmp_path / "state.json"
    options = LagrangeOptions(every=1, state_path=str(state))
    engine = RewardEngine.load(other, "rules", options)
    body = openrlhf_body(rows("comply", True, 1))
    (row,) = parse_get_reward(body, eos_texts=(), max_rows=1).rows
    engine.grade([Sample(row)])  # one step, saved
    assert json.loads(state.read_text())["controllers"]["no_hotline_spam"]["updates"] == 1
    with pytest.raises(specc.DataError, match="another policy"):
        RewardEngine.load(rules_artifact, "rules", options)
    state.write_text("{not json")
    with pytest.raises(specc.DataError, match="cannot read the Lagrange state"):
        RewardEngine.load(other, "rules", options)


def test_no_constraints_means_raw_rewards(rules_artifact: Path) -> None:
    engine = RewardEngine.load(rules_artifact, "rules", LagrangeOptions(enabled=False))
    with BackgroundServer(create_app(engine, ServeConfig())) as srv:
        (reply,) = one_by_one(srv.url, rows("comply", True, 1))
        assert health(srv.url)["shaping"] is False
    assert reply["rewards"] == reply["extra_logs"]["rbr/raw_reward"]
    assert "rbr/lambda/no_hotline_spam" not in reply["extra_logs"]
