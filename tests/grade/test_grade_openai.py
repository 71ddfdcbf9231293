"""The openai backend against specc's own OpenAI-compatible server on loopback."""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from specc.artifact import load_artifact
from specc.errors import UsageError
from specc.grade import extract_features, make_grader, read_rows
from specc.grade import openai as openai_module
from specc.grade.base import Answers
from specc.grade.hf import HFGrader
from specc.grade.openai import (
    FIRST_CONTACT_ATTEMPTS,
    MAX_REPLY_BYTES,
    GraderError,
    OpenAIGrader,
    p_yes_from_top_logprobs,
)
from specc.grade.server import GradeServer, Handler, ModelService

from .conftest import make_rows, write_jsonl
from .rawhttp import read_message

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_wrong_port_fails_after_a_few_announced_attempts() -> None:
    """A server that was never reached gets FIRST_CONTACT_ATTEMPTS tries, not
    max_attempts, and each retry is announced: attempt k of N, reason, wait."""
    notices: list[str] = []
    client = OpenAIGrader(
        f"http://127.0.0.1:{_free_port()}/v1", "tiny", backoff=0.01, notify=notices.append
    )
    assert client.max_attempts == 6
    refused = r"(?i)cannot reach .*connection refused.*3 attempts"
    with pytest.raises(GraderError, match=refused) as e:
        client.grade_one("Hi")
    assert "is the server running" in str(e.value)
    assert client.requests == FIRST_CONTACT_ATTEMPTS == 3
    assert len(notices) == 2
    assert re.fullmatch(
        r"specc: http://127\.0\.0\.1:\d+/v1/completions: attempt 1 of 3 failed "
        r"\(connection error: connection refused\); retrying in \d+\.\d s",
        notices[0].replace("Connection refused", "connection refused"),
    ), notices[0]
    assert "attempt 2 of 3" in notices[1]


def test_retry_notices_for_a_busy_server(service: ModelService) -> None:
    srv = serve(service, handler=AlwaysBusy)
    notices: list[str] = []
    try:
        client = OpenAIGrader(srv.url, "tiny", backoff=0.001, max_attempts=4, notify=notices.append)
        with pytest.raises(GraderError, match="giving up after 4 attempts: HTTP 503"):
            client.grade_one("Hi")
    finally:
        srv.shutdown()
        srv.server_close()
    # Once reached, the server gets every attempt, each retry announced.
    assert [n.split(" failed")[0].rsplit(": ", 1)[1] for n in notices] == [
        "attempt 1 of 4",
        "attempt 2 of 4",
        "attempt 3 of 4",
    ]
    assert all("(HTTP 503: overloaded); retrying in" in n for n in notices)


class RawServer:
    """A loopback TCP server whose connections are answered by ``respond(conn)``, for
    replies no HTTP library would send. ``done`` collects what each ``respond``
    returned; ``close`` stops it."""

    def __init__(self, respond: Callable[[socket.socket], object]):
        self.respond = respond
        self.done: list[object] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                self.done.append(self.respond(conn))

    def close(self) -> None:
        self.closed.set()
        self.thread.join(timeout=30)
        self.sock.close()


def _reply(top: str) -> bytes:
    body = (
        '{"choices": [{"index": 0, "text": " yes", "logprobs": {"tokens": [" yes"], '
        f'"top_logprobs": [{top}]}}}}]}}'
    ).encode()
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def test_the_deadline_covers_the_whole_reply() -> None:
    """A server that sends one byte every 0.2 s (each read well within any per-read
    timeout) is cut off at the request's deadline, long before its reply is done."""
    reply = _reply('{" yes": -0.1, " no": -2.5}')

    def drip(conn: socket.socket) -> int:
        read_message(conn)
        sent = 0
        for byte in reply:  # bounded: len(reply) bytes at most
            try:
                conn.sendall(bytes([byte]))
            except OSError:  # the client hung up
                return sent
            sent += 1
            time.sleep(0.2)
        return sent

    srv = RawServer(drip)
    try:
        client = OpenAIGrader(srv.url, "m", timeout=1.0, max_attempts=1, notify=lambda _: None)
        with pytest.raises(GraderError, match=r"no complete reply within 1 s \(--timeout\)"):
            client.grade_one("Hi")
    finally:
        srv.close()
    (sent,) = srv.done
    assert isinstance(sent, int) and sent < len(reply) // 2


def test_the_same_reply_sent_at_once_is_accepted() -> None:
    """The control for the drip test: the reply itself is fine."""
    reply = _reply('{" yes": -0.1, " no": -2.5}')
    srv = RawServer(lambda conn: conn.sendall(reply) if read_message(conn) else None)
    try:
        client = OpenAIGrader(srv.url, "m", timeout=5.0, max_attempts=1)
        p = client.grade_one("Hi")
    finally:
        srv.close()
    assert p == pytest.approx(math.exp(-0.1) / (math.exp(-0.1) + math.exp(-2.5)))


def test_an_oversized_reply_is_refused_by_its_length() -> None:
    """A Content-Length over the cap is refused before any of the body is read."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_REPLY_BYTES + 1)
    srv = RawServer(lambda conn: conn.sendall(head) if read_message(conn) else None)
    try:
        client = OpenAIGrader(srv.url, "m", timeout=10.0, max_attempts=3)
        with pytest.raises(GraderError, match=rf"{srv.url}: the reply is larger than 8 MiB"):
            client.grade_one("Hi")
        assert client.requests == 1  # not retried
    finally:
        srv.close()


def test_an_oversized_reply_without_length_is_cut_at_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(openai_module, "MAX_REPLY_BYTES", 4096)
    chunk = b"x" * 1000

    def stream(conn: socket.socket) -> int:
        read_message(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        for _ in range(1000):  # 1 MB at most
            try:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                return sent
            sent += len(chunk)
        conn.sendall(b"0\r\n\r\n")
        return sent

    srv = RawServer(stream)
    try:
        client = OpenAIGrader(srv.url, "m", timeout=10.0, max_attempts=1)
        with pytest.raises(GraderError, match=r"the reply is larger than"):
            client.grade_one("Hi")
    finally:
        srv.close()


@pytest.mark.parametrize(
    ("top", "message"),
    [
        ('{" yes": 1000.0, " no": -2.5}', r"sent logprob 1000\.0 for token ' yes'"),
        ('{" yes": NaN, " no": -2.5}', r"sent logprob nan for token ' yes'"),
        ('{" yes": Infinity, " no": -2.5}', r"sent logprob inf"),
        ('{" yes": "high", " no": -2.5}', r"sent logprob 'high' .* not a number"),
        ('{" yes": 1' + "0" * 400 + ', " no": -2.5}', r"sent logprob inf"),  # past any float
    ],
)
def test_impossible_logprobs_are_refused(top: str, message: str) -> None:
    srv = RawServer(lambda conn: conn.sendall(_reply(top)) if read_message(conn) else None)
    try:
        client = OpenAIGrader(srv.url, "m", timeout=10.0, max_attempts=1)
        with pytest.raises(GraderError, match=message):
            client.grade_one("Hi")
    finally:
        srv.close()


def test_rounding_above_zero_and_minus_infinity_are_log_probabilities() -> None:
    top = '{" yes": 0.0004, " no": -Infinity, "x": -3.0}'
    srv = RawServer(lambda conn: conn.sendall(_reply(top)) if read_message(conn) else None)
    try:
        p = OpenAIGrader(srv.url, "m", timeout=10.0, max_attempts=1).grade_one("Hi")
    finally:
        srv.close()
    # yes clipped to log 1; no has probability 0, so its mass is the smallest top-k one.
    assert p == pytest.approx(1.0 / (1.0 + 0.0))


def test_a_logprob_past_any_float_is_probability_0() -> None:
    top = '{" yes": -1' + "0" * 400 + ', " no": -0.5, "x": -3.0}'
    srv = RawServer(lambda conn: conn.sendall(_reply(top)) if read_message(conn) else None)
    try:
        p = OpenAIGrader(srv.url, "m", timeout=10.0, max_attempts=1).grade_one("Hi")
    finally:
        srv.close()
    assert p == 0.0  # like -Infinity: the yes token was seen, with probability 0


def test_a_content_length_of_other_digits_is_not_a_length() -> None:
    """'²' is a digit to str.isdigit() but not to int(): the reply is read to its end."""
    body = _reply('{" yes": -0.1, " no": -2.5}').partition(b"\r\n\r\n")[2]
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\nConnection: close\r\n\r\n" + body
    srv = RawServer(lambda conn: conn.sendall(reply) if read_message(conn) else None)
    try:
        p = OpenAIGrader(srv.url, "m", timeout=10.0, max_attempts=1).grade_one("Hi")
    finally:
        srv.close()
    assert p == pytest.approx(math.exp(-0.1) / (math.exp(-0.1) + math.exp(-2.5)))


@pytest.mark.parametrize("key", ["sk-1\nX-Injected: 1", "sk-\udcff\udcfe", "sk-é", "sk-1\t"])
def test_an_api_key_that_cannot_be_a_header_is_a_usage_error(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the environment too, where bytes that are not UTF-8 arrive as surrogates."""
    with pytest.raises(UsageError, match="API key"):
        OpenAIGrader("http://127.0.0.1:8000/v1", "m", api_key=key)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with pytest.raises(UsageError, match="API key"):
        make_grader("openai:http://127.0.0.1:8000/v1#m")


def test_top_logprobs_is_sent_and_keys_the_cache() -> None:
    seen: list[dict[str, Any]] = []

    def record(conn: socket.socket) -> None:
        raw = read_message(conn)
        seen.append(json.loads(raw.partition(b"\r\n\r\n")[2]))
        conn.sendall(_reply('{" yes": -0.1, " no": -2.5}'))

    srv = RawServer(record)
    try:
        grader = make_grader(f"openai:{srv.url}#m", top_logprobs=5)
        assert isinstance(grader, OpenAIGrader)
        grader.grade_one("Hi")
    finally:
        srv.close()
    assert seen[0]["logprobs"] == 5
    assert '"top_logprobs": 5' in grader.identity


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:99999/v1", "Port out of range"),
        ("http://127.0.0.1:0/v1", "port 0"),
        ("http://[::1/v1", "Invalid IPv6 URL"),
        ("http://exa mple.com/v1", "is not a host name"),
        ("http://host/v 1", "no spaces"),
        ("http://user:pw@host/v1", "OPENAI_API_KEY"),
        ("ftp://host/v1", "expected http"),
        ("http://host/v1é", "percent-encoded"),
        ("http://host/v1\udcff", "percent-encoded"),
    ],
)
def test_bad_urls_are_usage_errors(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        OpenAIGrader(url, "m")


@pytest.mark.parametrize(
    ("option", "value"),
    [("concurrency", 0), ("top_logprobs", 0), ("max_attempts", 0), ("timeout", 0.0)],
)
def test_bad_settings_are_usage_errors(option: str, value: float) -> None:
    with pytest.raises(UsageError, match=option):
        OpenAIGrader("http://127.0.0.1:8000/v1", "m", **{option: value})  # type: ignore[arg-type]


def test_a_grader_error_names_the_row_and_the_proposition(
    tmp_path: Path, artifact_dir: Path
) -> None:
    """The server refuses only row r4's apology prompt: the error names that row's
    file:line and id, and the proposition."""

    def answer(conn: socket.socket) -> None:
        raw = read_message(conn)
        prompt = json.loads(raw.partition(b"\r\n\r\n")[2])["prompt"]
        bad = "[4]" in prompt and "apologise" in prompt
        conn.sendall(_reply('{" yes": 5.0}' if bad else '{" yes": -0.1, " no": -2.5}'))

    srv = RawServer(answer)
    rows = read_rows(write_jsonl(tmp_path / "d.jsonl", make_rows(8)))
    grader = make_grader(f"openai:{srv.url}#m", concurrency=1)
    try:
        with pytest.raises(GraderError) as info:
            extract_features(load_artifact(artifact_dir), rows, grader)
    finally:
        grader.close()  # type: ignore[union-attr]
        srv.close()
    text = str(info.value)
    assert text.startswith(f"{tmp_path / 'd.jsonl'}:5 (id 'r4'), proposition 'apology': ")
    assert "sent logprob 5.0" in text


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
