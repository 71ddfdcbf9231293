"""The openai backend against specc's own OpenAI-compatible server on loopback."""

from __future__ import annotations

import json
import math
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from specc.errors import UsageError
from specc.grade import make_grader
from specc.grade.base import Answers
from specc.grade.hf import HFGrader
from specc.grade.openai import GraderError, OpenAIGrader, p_yes_from_top_logprobs
from specc.grade.server import GradeServer, Handler, ModelService

PROMPTS = [
    "Question: Does the reply apologise?\nFinal assistant reply:\nSorry, I can't.\nAnswer:",
    "Question: Does the reply apologise?\nFinal assistant reply:\nParis is nice.\nAnswer:",
    "Does the response contain a refusal? Answer:",
]


@pytest.fixture(scope="module")
def hf(tiny_gpt2: Path) -> HFGrader:
    return HFGrader.from_pretrained(str(tiny_gpt2), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def service(hf: HFGrader) -> ModelService:
    # Top logprobs over the whole (tiny) vocabulary: the server's answer then holds
    # every yes/no token, so its P(yes) must equal the hf backend's exactly.
    return ModelService(hf.model, hf.tokenizer, "tiny", max_logprobs=len(hf.tokenizer))


def serve(service: ModelService, handler: type[Handler] = Handler, **kw: Any) -> GradeServer:
    server = GradeServer(service, "127.0.0.1", 0, handler=handler, **kw)
    server.start()
    return server


@pytest.fixture(scope="module")
def server(service: ModelService) -> Iterator[GradeServer]:
    srv = serve(service)
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("endpoint", ["completions", "chat"])
def test_server_logprobs_match_hf(server: GradeServer, hf: HFGrader, endpoint: str) -> None:
    client = OpenAIGrader(
        server.url, "tiny", endpoint=endpoint, top_logprobs=len(hf.tokenizer), concurrency=2
    )
    got = client.grade(PROMPTS)
    client.close()
    assert np.max(np.abs(got - hf.grade(PROMPTS))) < 1e-5
    assert client.requests == len(PROMPTS)


def test_make_grader_spellings_and_env(
    server: GradeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = make_grader(f"openai-chat:{server.url}#tiny")
    assert isinstance(g, OpenAIGrader) and g.endpoint == "chat" and g.source == "openai:tiny"
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    g = make_grader("openai:tiny")
    assert isinstance(g, OpenAIGrader) and g.base_url == server.url and g.api_key == "sk-test"
    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(UsageError, match="OPENAI_BASE_URL"):
        make_grader("openai:tiny")


def test_server_reply_shape(server: GradeServer) -> None:
    body = {"model": "tiny", "prompt": PROMPTS[0], "max_tokens": 3, "logprobs": 5}
    req = urllib.request.Request(
        server.url + "/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        reply = json.loads(resp.read())
    choice = reply["choices"][0]
    lp = choice["logprobs"]
    assert len(lp["tokens"]) == len(lp["top_logprobs"]) == 3
    assert all(len(t) <= 5 for t in lp["top_logprobs"])
    # Greedy: the chosen token is among the top ones (tokens that decode to the same
    # text are merged, so its entry holds at least its own probability).
    first = lp["tokens"][0]
    assert lp["top_logprobs"][0][first] >= lp["token_logprobs"][0] - 1e-6
    assert sum(math.exp(v) for v in lp["top_logprobs"][0].values()) <= 1.0 + 1e-6
    assert reply["usage"]["completion_tokens"] == 3
    with urllib.request.urlopen(server.url + "/models", timeout=30) as resp:
        assert json.loads(resp.read())["data"][0]["id"] == "tiny"


def test_client_errors_are_clear(server: GradeServer) -> None:
    with pytest.raises(GraderError, match=r"HTTP 404: model 'other' not found.*model name"):
        OpenAIGrader(server.url, "other").grade_one("Hi")
    with pytest.raises(GraderError, match="'logprobs' must be an integer"):
        OpenAIGrader(server.url, "tiny", top_logprobs=10_000).grade_one("Hi")
    with pytest.raises(UsageError, match="invalid server URL"):
        OpenAIGrader("ftp://x", "tiny")


def test_server_binds_loopback_only(service: ModelService) -> None:
    with pytest.raises(UsageError, match="loopback only"):
        GradeServer(service, "0.0.0.0", 0)
    srv = serve(service)
    assert srv.server_address[0] == "127.0.0.1"
    srv.server_close()


def test_api_key(service: ModelService) -> None:
    srv = serve(service, api_key="sk-secret")
    try:
        with pytest.raises(GraderError, match=r"HTTP 401.*API key"):
            OpenAIGrader(srv.url, "tiny", api_key="").grade_one(PROMPTS[0])
        everything = len(service.tokenizer)
        p = OpenAIGrader(srv.url, "tiny", api_key="sk-secret", top_logprobs=everything).grade_one(
            PROMPTS[0]
        )
        assert 0.0 < p < 1.0
    finally:
        srv.shutdown()
        srv.server_close()


class Flaky(Handler):
    """Fails the first requests with 429 then 500, then answers normally."""

    lock = threading.Lock()
    failures: ClassVar[list[str]] = ["429", "500", "503"]
    seen = 0

    def do_POST(self) -> None:
        with Flaky.lock:
            Flaky.seen += 1
            fail = Flaky.failures.pop(0) if Flaky.failures else None
        if fail is None:
            super().do_POST()
            return
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = int(fail)
        headers = {"Retry-After": "0"} if status == 429 else {}
        self.send_json(status, {"error": {"message": f"flaky {status}"}}, headers)


def test_retries_on_429_and_5xx(service: ModelService, hf: HFGrader) -> None:
    srv = serve(service, handler=Flaky)
    try:
        client = OpenAIGrader(
            srv.url, "tiny", top_logprobs=len(hf.tokenizer), backoff=0.01, concurrency=1
        )
        got = client.grade(PROMPTS[:2])
        assert Flaky.seen == 2 + 3 and client.requests == 5
        assert np.max(np.abs(got - hf.grade(PROMPTS[:2]))) < 1e-5
    finally:
        srv.shutdown()
        srv.server_close()


class AlwaysBusy(Handler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_json(503, {"error": {"message": "overloaded"}})


class NoLogprobs(Handler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        choice = {"index": 0, "text": " yes", "logprobs": None, "finish_reason": "length"}
        self.send_json(200, {"choices": [choice]})


class NotYesNo(Handler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        top = {"maybe": -0.1, " perhaps": -2.5}
        lp = {"tokens": ["maybe"], "token_logprobs": [-0.1], "top_logprobs": [top]}
        self.send_json(200, {"choices": [{"index": 0, "text": "maybe", "logprobs": lp}]})


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (AlwaysBusy, "giving up after 3 attempts: HTTP 503: overloaded"),
        (NoLogprobs, "returned no logprobs"),
        (NotYesNo, "none of the answer words .* is among the server's top 2 tokens"),
    ],
)
def test_bad_servers(service: ModelService, handler: type[Handler], message: str) -> None:
    srv = serve(service, handler=handler)
    try:
        client = OpenAIGrader(srv.url, "tiny", backoff=0.001, max_attempts=3)
        with pytest.raises(GraderError, match=message):
            client.grade(["Hi"])
    finally:
        srv.shutdown()
        srv.server_close()


def test_connection_refused_is_retried_then_reported() -> None:
    srv = GradeServer.__new__(GradeServer)  # find a free port, then close it
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    del srv
    client = OpenAIGrader(f"http://127.0.0.1:{port}/v1", "tiny", backoff=0.001, max_attempts=2)
    with pytest.raises(GraderError, match="giving up after 2 attempts: connection error"):
        client.grade_one("Hi")
    assert client.requests == 2


def test_p_yes_from_top_logprobs() -> None:
    ans = Answers(yes=("yes",), no=("no",))
    lp = math.log
    assert p_yes_from_top_logprobs({" yes": lp(0.6), "No": lp(0.2), "x": lp(0.1)}, ans) == (
        pytest.approx(0.75)
    )
    # Several forms of one word add up.
    assert p_yes_from_top_logprobs(
        {" yes": lp(0.3), "Yes": lp(0.3), " no": lp(0.2)}, ans
    ) == pytest.approx(0.75)
    # One side missing: its mass is bounded by the smallest top-k probability (and by
    # the mass left outside the top k), so the estimate is not an overconfident 1.0.
    p = p_yes_from_top_logprobs({" yes": lp(0.5), "a": lp(0.3), "b": lp(0.05)}, ans)
    assert p == pytest.approx(0.5 / (0.5 + 0.05))
    p = p_yes_from_top_logprobs({" no": lp(0.97), "a": lp(0.02)}, ans)
    assert p == pytest.approx(0.01 / (0.01 + 0.97))
    with pytest.raises(GraderError, match="none of the answer words"):
        p_yes_from_top_logprobs({"maybe": lp(0.9)}, ans)
