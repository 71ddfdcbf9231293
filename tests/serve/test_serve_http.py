"""``specc serve`` over real HTTP on loopback: rewards, batching, limits, errors."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import re
import socket
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

import specc
from specc.serve.app import create_app
from specc.serve.command import BackgroundServer
from specc.serve.config import ServeConfig
from specc.serve.engine import RewardEngine

from .conftest import chat_prompt, openrlhf_body, post, rule_rows


def in_process(artifact: Path, grader: str, rows: list[dict[str, Any]]) -> np.ndarray:
    """``specc.load(...)`` on the rows the server sees (the templated prompt as the
    user message, the response without its EOS text)."""
    seen = [{**r, "prompt": chat_prompt(r["prompt"][0]["content"])} for r in rows]
    return specc.load(artifact, grader=grader)(seen)


def raw(url: str, method: str, path: str, headers: dict[str, str], chunks: list[bytes]) -> Any:
    """Send a request by hand (lying or streaming bodies); the response."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest(method, path)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    for chunk in chunks:
        conn.send(chunk)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(data or b"null")
    except json.JSONDecodeError:  # uvicorn's own answer to a request h11 refuses
        return resp.status, data.decode()


def test_get_reward_equals_specc_load(rules_server: BackgroundServer, rules_artifact: Path) -> None:
    rows = rule_rows(24, seed=1)
    expected = in_process(rules_artifact, "rules", rows)
    got = []
    for row in rows:  # one sample per request, as OpenRLHF sends them
        status, reply = post(rules_server.url + "/get_reward", openrlhf_body([row], "<|im_end|>"))
        assert status == 200, reply
        assert len(reply["rewards"]) == len(reply["scores"]) == 1
        got.append(reply["rewards"][0])
    np.testing.assert_array_equal(got, expected)
    # Several samples in one request answer in order.
    status, reply = post(rules_server.url + "/get_reward", openrlhf_body(rows))
    assert status == 200
    np.testing.assert_array_equal(reply["rewards"], expected)
    assert reply["scores"] == reply["rewards"]
    assert len(set(reply["rewards"])) > 2  # the rows really differ


def test_extra_logs_have_the_same_keys_for_every_sample(rules_server: BackgroundServer) -> None:
    # OpenRLHF stacks extra_logs across samples: a key missing in one breaks training.
    keys = set()
    for row in rule_rows(4, seed=2):
        status, reply = post(rules_server.url + "/get_reward", openrlhf_body([row]))
        assert status == 200
        keys.add(tuple(reply["extra_logs"]))
        for values in reply["extra_logs"].values():
            assert len(values) == 1 and isinstance(values[0], float)
    assert keys == {
        (
            "rbr/raw_reward",
            "rbr/tier/ideal",
            "rbr/tier/less_good",
            "rbr/tier/unacceptable",
            "rbr/cost/no_hotline_spam",
        )
    }


def test_score_equals_specc_load(rules_server: BackgroundServer, rules_artifact: Path) -> None:
    rows = rule_rows(10, seed=4)
    status, reply = post(rules_server.url + "/score", {"rows": rows})
    assert status == 200
    np.testing.assert_array_equal(
        reply["raw_rewards"], specc.load(rules_artifact, grader="rules")(rows)
    )
    assert reply["response_types"] == ["refuse", "comply"] * 5
    assert set(reply["tiers"][0]) == {"ideal", "less_good", "unacceptable"}
    hotline = [bool(re.search(r"(?i)\b(hotline|helpline)\b", str(r["completion"]))) for r in rows]
    costs = reply["costs"]["no_hotline_spam"]
    for i, row in enumerate(rows):  # the cost applies to comply rows only
        applies = row["response_type"] == "comply"
        assert costs[i] == (1.0 if applies and hotline[i] else 0.0)
    assert 0 < sum(costs) < len(rows)


async def _concurrent(url: str, bodies: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    limit = aiohttp.TCPConnector(limit=len(bodies))
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=limit, timeout=timeout) as session:

        async def one(body: dict[str, Any]) -> tuple[int, Any]:
            async with session.post(url, json=body) as resp:
                return resp.status, await resp.json()

        return await asyncio.gather(*(one(b) for b in bodies))


def test_200_concurrent_single_sample_requests(
    rules_engine: RewardEngine, rules_artifact: Path
) -> None:
    # A long collection window makes the batching observable without timing it.
    config = ServeConfig(max_wait_ms=300, max_batch_rows=256)
    rows = rule_rows(200, seed=5)
    app = create_app(rules_engine, config)
    with BackgroundServer(app) as srv:
        bodies = [openrlhf_body([r], "<|endoftext|>") for r in rows]
        replies = asyncio.run(_concurrent(srv.url + "/get_reward", bodies))
        stats = app.state.batcher.stats
    assert [s for s, _ in replies] == [200] * 200
    got = [reply["rewards"][0] for _, reply in replies]
    np.testing.assert_array_equal(got, in_process(rules_artifact, "rules", rows))
    assert stats.requests == 200 and stats.rows == 200
    assert stats.largest > 1 and stats.batches < 200  # requests were graded together


LONG = "x" * 70_000


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/get_reward", b"{nope", 400, "invalid JSON"),
        ("/get_reward", b"\xc3\x28", 400, "not UTF-8"),
        ("/get_reward", b'{"query": [NaN]}', 400, "NaN"),
        ("/get_reward", b"[" * 50_000, 400, "nested too deeply"),
        ("/get_reward", b"[" * 20_000 + b"]" * 20_000, 400, "nested too deeply"),
        ("/get_reward", [], 422, "takes a JSON object"),
        ("/get_reward", {"prompts": ["a"], "labels": ["comply"]}, 422, "missing field 'query'"),
        ("/get_reward", {"query": "a", "prompts": ["a"], "labels": ["comply"]}, 422, "a list"),
        ("/get_reward", {"query": [1], "prompts": ["a"], "labels": ["comply"]}, 422, "query[0]"),
        ("/get_reward", {"query": [], "prompts": [], "labels": []}, 422, "empty list"),
        (
            "/get_reward",
            {"query": ["ab", "ac"], "prompts": ["a"], "labels": ["comply"]},
            422,
            "same length",
        ),
        (
            "/get_reward",
            {"query": ["ab"], "prompts": ["a"], "labels": ["Comlpy"]},
            422,
            "did you mean",
        ),
        ("/get_reward", {"query": ["ab"], "prompts": ["a"], "labels": [7]}, 422, "labels[0]"),
        ("/get_reward", {"query": ["ab"], "prompts": ["a"]}, 422, "label_key"),
        ("/get_reward", {"query": ["ab"], "prompts": ["a"], "labels": [""]}, 422, "empty"),
        ("/get_reward", {"query": ["zz"], "prompts": ["a"], "labels": ["comply"]}, 422, "prompt"),
        (
            "/get_reward",
            {"query": ["a\ud800"], "prompts": ["a"], "labels": ["comply"]},
            400,
            "surrogate",
        ),
        ("/get_reward", {"query": ["a"] * 65, "prompts": ["a"], "labels": ["x"]}, 422, "at most"),
        ("/score", {"rows": "x"}, 422, "'rows' must be a list"),
        ("/score", {"rows": [{"prompt": "a"}]}, 422, "missing field 'completion'"),
        (
            "/score",
            {
                "rows": [
                    {
                        "prompt": "a",
                        "completion": "b",
                        "response_type": "comply",
                        "base_reward": "x",
                    }
                ]
            },
            422,
            "base_reward",
        ),
        (
            "/score",
            {
                "rows": [
                    {
                        "prompt": "a",
                        "completion": "b",
                        "response_type": "comply",
                        "propositions": {"apology": 1.5},
                    }
                ]
            },
            422,
            "probability",
        ),
        (
            "/score",
            {
                "rows": [
                    {
                        "prompt": "a",
                        "completion": "b",
                        "response_type": "comply",
                        "completion_label": "perfect",
                    }
                ]
            },
            422,
            "not a tier",
        ),
        ("/get_reward", {"query": [LONG], "prompts": [""], "labels": ["comply"]}, 413, "at most"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(
    rules_server: BackgroundServer, path: str, body: Any, status: int, message: str
) -> None:
    got, reply = post(rules_server.url + path, body)
    assert got == status, reply
    assert message in reply["detail"]


def test_unknown_paths_and_methods(rules_server: BackgroundServer) -> None:
    status, _ = raw(rules_server.url, "GET", "/get_reward", {}, [])
    assert status == 405
    status, _ = raw(rules_server.url, "POST", "/v1/completions", {"Content-Length": "0"}, [])
    assert status == 404


def test_body_limit_is_enforced_before_the_body_is_read(rules_server: BackgroundServer) -> None:
    # Content-Length says 1 GB and nothing follows: the answer comes at once.
    status, reply = raw(rules_server.url, "POST", "/get_reward", {"Content-Length": str(10**9)}, [])
    assert status == 413 and "1000000000 bytes" in reply["detail"]
    # A chunked body is cut off as soon as it passes the limit (64 KiB here).
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    status, reply = raw(
        rules_server.url,
        "POST",
        "/get_reward",
        {"Transfer-Encoding": "chunked"},
        [chunk] * 6 + [b"0\r\n\r\n"],
    )
    assert status == 413 and "larger than 65536" in reply["detail"]
    status, reply = raw(rules_server.url, "POST", "/get_reward", {"Content-Length": "-5"}, [])
    assert status == 400 and "Invalid HTTP request" in reply


@pytest.mark.parametrize("value", [b"\xb2", b"9" * 5000], ids=["superscript-2", "5000-digits"])
def test_a_content_length_that_int_refuses_is_a_400(value: bytes) -> None:
    """uvicorn's h11 refuses these before the app sees them; another server in front
    (or uvicorn with httptools) may not, and the app answered 500 (ValueError)."""
    from starlette.requests import Request

    from specc.serve.app import _read_body
    from specc.serve.protocol import RequestError

    request = Request({"type": "http", "method": "POST", "headers": [(b"content-length", value)]})
    with pytest.raises(RequestError) as exc:
        asyncio.run(_read_body(request, ServeConfig()))
    assert exc.value.status == 400 and "invalid Content-Length" in exc.value.message


def test_slow_body_times_out(rules_engine: RewardEngine) -> None:
    with BackgroundServer(create_app(rules_engine, ServeConfig(body_timeout_s=0.3))) as srv:
        status, reply = raw(srv.url, "POST", "/score", {"Content-Length": "100"}, [b'{"rows"'])
    assert status == 408 and "not received" in reply["detail"]


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes ``sock`` (reads until the end; the socket's own
    timeout guards against a server that never does)."""
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:  # reset
        pass
    return True


def test_a_slow_or_silent_head_is_cut_off(rules_engine: RewardEngine) -> None:
    """Slowloris: connections that send nothing, or half a request line, or half the
    next request on a kept-alive connection, used to be held forever; as many of them
    as --max-connections made every other client get 503. Each is now closed when its
    head is late, and the server serves again."""
    app = create_app(rules_engine, ServeConfig())
    body = json.dumps({"rows": rule_rows(1)}).encode()
    whole = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with BackgroundServer(app, head_timeout=0.3, max_connections=5) as srv:
        address = urllib.parse.urlsplit(srv.url)
        port = address.port
        assert port is not None
        socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(4)]
        socks[1].sendall(b"POST /score HTTP/1.1\r\nHost:")
        socks[2].sendall(b"POST /sc")
        socks[3].sendall(whole)  # a whole request, then half of the next one
        assert socks[3].recv(12) == b"HTTP/1.1 200"
        socks[3].sendall(b"POST /score HTTP/1.1\r\n")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(whole)
            assert s.recv(12) == b"HTTP/1.1 503"  # five connections: the limit
        assert all(_closed_by_server(s) for s in socks)
        for s in socks:
            s.close()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(whole)
            assert s.recv(12) == b"HTTP/1.1 200"


@pytest.fixture(scope="module")
def keyed_server(rules_engine: RewardEngine) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(rules_engine, ServeConfig(api_key="s3cret"))) as srv:
        yield srv


def test_api_key(keyed_server: BackgroundServer) -> None:
    body = openrlhf_body(rule_rows(1))
    url = keyed_server.url + "/get_reward"
    assert post(url, body)[0] == 401
    assert post(url, body, headers={"Authorization": "Bearer wrong"})[0] == 401
    assert post(url, body, headers={"Authorization": "Bearer s3cret"})[0] == 200
    assert post(url, body, headers={"X-API-Key": "s3cret"})[0] == 200
    # OpenRLHF's client sends no headers: the key can ride in the URL.
    assert post(url + "?api_key=s3cret", body)[0] == 200
    # The key is checked before the body is read.
    status, reply = raw(keyed_server.url, "POST", "/score", {"Content-Length": str(10**9)}, [])
    assert status == 401 and "API key" in reply["detail"]
    with urllib.request.urlopen(keyed_server.url + "/health", timeout=30) as resp:
        assert json.loads(resp.read())["status"] == "ok"
    status, _ = raw(keyed_server.url, "GET", "/metrics", {}, [])
    assert status == 401


def test_grader_failure_is_a_502(llm_artifact: Path, caplog: pytest.LogCaptureFixture) -> None:
    # An OpenAI-compatible grader on a port where nothing listens: a real failure.
    engine = RewardEngine.load(
        llm_artifact, "openai:http://127.0.0.1:9/v1#nobody", max_attempts=1, timeout=5.0
    )
    row = {"prompt": "Hi", "completion": "Hello", "response_type": "comply"}
    with (
        caplog.at_level(logging.WARNING, logger="specc.serve"),
        BackgroundServer(create_app(engine, ServeConfig())) as srv,
    ):
        status, reply = post(srv.url + "/score", {"rows": [row]})
        assert status == 502 and "the grader failed" in reply["detail"]
        # The server stays up.
        with urllib.request.urlopen(srv.url + "/health", timeout=30) as resp:
            assert resp.status == 200
    assert any("HTTP 502" in r.getMessage() for r in caplog.records)


def test_health_and_metrics(rules_server: BackgroundServer) -> None:
    with urllib.request.urlopen(rules_server.url + "/health", timeout=30) as resp:
        health = json.loads(resp.read())
    assert health["policy"] == "servetest" and health["grader"] == "rules"
    assert health["constraints"] == ["no_hotline_spam"]
    post(rules_server.url + "/get_reward", openrlhf_body(rule_rows(2)))
    post(rules_server.url + "/get_reward", b"{")
    with urllib.request.urlopen(rules_server.url + "/metrics", timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['specc_requests_total{path="/get_reward",status="200"}'] >= 1
    assert samples['specc_requests_total{path="/get_reward",status="400"}'] >= 1
    assert samples['specc_errors_total{kind="bad_request"}'] >= 1
    count = samples['specc_request_seconds_count{path="/get_reward"}']
    assert samples['specc_request_seconds_bucket{path="/get_reward",le="+Inf"}'] == count
    assert samples["specc_completions_total"] >= 2
    assert samples["specc_queue_rows"] == 0
