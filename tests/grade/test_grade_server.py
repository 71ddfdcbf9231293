"""The loopback grade server under load and under bad requests: a backlog for 200
connections, deadlines for stalling clients, a body limit checked before reading,
the API key checked before the body, and 4xx (never 500) for malformed input.

Every test talks to a real server on 127.0.0.1 through raw sockets, and every loop
that waits is bounded."""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from specc.grade.hf import HFGrader
from specc.grade.server import MAX_BODY_BYTES, GradeServer, ModelService

from .rawhttp import read_message

GOOD = {"model": "tiny", "prompt": "Does the reply apologise? Answer:", "max_tokens": 1}


@pytest.fixture(scope="module")
def service(tiny_gpt2: Path) -> ModelService:
    hf = HFGrader.from_pretrained(str(tiny_gpt2), device="cpu", dtype="float32")
    return ModelService(hf.model, hf.tokenizer, "tiny")


@pytest.fixture
def server(service: ModelService) -> Iterator[GradeServer]:
    srv = GradeServer(service, "127.0.0.1", 0, api_key="sk-test", request_timeout=1.0)
    srv.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(
    body: bytes,
    *,
    path: str = "/v1/completions",
    key: str | None = "sk-test",
    headers: dict[str, str] | None = None,
    length: int | None = None,
) -> bytes:
    """The bytes of one POST (Content-Length from ``body`` unless ``length`` or the
    ``headers`` give it)."""
    head = {"Host": "127.0.0.1", "Content-Type": "application/json"}
    if key is not None:
        head["Authorization"] = f"Bearer {key}"
    if "Content-Length" not in (headers or {}) and "Transfer-Encoding" not in (headers or {}):
        head["Content-Length"] = str(len(body) if length is None else length)
    head.update(headers or {})
    lines = [f"POST {path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def exchange(server: GradeServer, data: bytes) -> tuple[int, dict[str, object], bytes]:
    """Send ``data`` on a new connection; the status, the JSON reply and the raw reply."""
    with socket.create_connection(server.server_address[:2], timeout=30) as s:
        s.sendall(data)
        raw = read_message(s)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body), raw


def test_a_good_request(server: GradeServer) -> None:
    status, reply, _ = exchange(server, request(json.dumps(GOOD).encode()))
    assert status == 200
    assert reply["object"] == "text_completion"


def test_200_concurrent_connections_are_all_queued_and_answered(service: ModelService) -> None:
    """200 clients connect while the server is not yet accepting: the kernel must
    complete every handshake into the listen backlog (with the old backlog of 5, six
    did), and once the server runs every one of them gets its answer."""
    srv = GradeServer(service, "127.0.0.1", 0)  # listening, not accepting yet
    started = False
    try:
        addr = srv.server_address[:2]
        socks = []
        for _ in range(200):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(addr)
            socks.append(s)
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_WRITE)
        established = 0
        stop = time.monotonic() + 15  # a bound on the wait, not a timing assertion
        while established < 200 and time.monotonic() < stop:
            for key, _ in sel.select(timeout=0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                sel.unregister(sock)
                established += 1
        sel.close()
        assert established == 200
        data = request(json.dumps(GOOD).encode(), key=None, headers={"Connection": "close"})
        for s in socks:
            s.setblocking(True)
            s.settimeout(120)
            s.sendall(data)
        srv.start()
        started = True
        statuses = []
        for s in socks:
            reply = read_message(s)
            statuses.append(int(reply.split(b" ", 2)[1]) if reply else 0)
            s.close()
        assert statuses == [200] * 200
    finally:
        if started:
            srv.shutdown()
        srv.server_close()


def test_a_body_over_the_limit_is_refused_before_it_is_sent(server: GradeServer) -> None:
    """Only the headers go out: a 413 that comes back proves the server judged the
    Content-Length and did not wait for (or read) the body."""
    status, reply, raw = exchange(server, request(b"", length=MAX_BODY_BYTES + 1))
    assert status == 413
    assert "larger than this server's limit" in str(reply)
    assert b"Connection: close" in raw


def test_the_api_key_is_checked_before_the_body_is_read(server: GradeServer) -> None:
    status, reply, raw = exchange(server, request(b"", key="wrong", length=1000))
    assert status == 401
    assert "API key" in str(reply)
    assert b"Connection: close" in raw


def _deep(n: int) -> bytes:
    return b'{"model": "tiny", "prompt": ' + b"[" * n + b"]" * n + b"}"


@pytest.mark.parametrize(
    ("data", "status", "says"),
    [
        (request(b'{"prompt": "\xff\xfe"}'), 400, "not UTF-8"),
        (request(_deep(100_000)), 400, "nested too deeply"),
        (request(b'{"prompt": "\\ud800"}'), 400, "surrogate"),
        (request(b'{"prompt": 1' + b"0" * 400 + b"}"), 400, "digits"),
        (request(b"{nope"), 400, "invalid JSON"),
        (request(b"[1, 2]"), 400, "must be a JSON object"),
        (request(json.dumps({**GOOD, "prompt": 5}).encode()), 400, "'prompt' must be"),
        (request(json.dumps({**GOOD, "prompt": ["a"] * 5000}).encode()), 400, "at most 2048"),
        (request(json.dumps({**GOOD, "model": 5}).encode()), 400, "'model' must be a string"),
        (request(json.dumps({**GOOD, "max_tokens": "x"}).encode()), 400, "'max_tokens'"),
        (request(json.dumps({**GOOD, "max_tokens": 10**6}).encode()), 400, "'max_tokens'"),
        (request(json.dumps({**GOOD, "logprobs": "x"}).encode()), 400, "'logprobs'"),
        (request(json.dumps({**GOOD, "temperature": "0"}).encode()), 400, "greedy"),
        (request(json.dumps({**GOOD, "n": 2}).encode()), 400, "'n'"),
        (request(json.dumps({**GOOD, "prompt": "word " * 5000}).encode()), 400, "context"),
        (
            request(
                json.dumps({"messages": [{"role": 5, "content": "x"}]}).encode(),
                path="/v1/chat/completions",
            ),
            400,
            "'messages' must be",
        ),
        (
            request(
                json.dumps({"messages": [{"content": "x"}], "logprobs": "yes"}).encode(),
                path="/v1/chat/completions",
            ),
            400,
            "'logprobs' must be true or false",
        ),
        (request(b"{}", headers={"Content-Length": "abc"}), 400, "invalid Content-Length"),
        (request(b"{}", headers={"Content-Length": "-5"}), 400, "invalid Content-Length"),
        (request(b"{}", headers={"Content-Length": "9" * 40}), 400, "invalid Content-Length"),
        (  # '²' (latin-1 0xb2) is a digit to str.isdigit(), not to int()
            request(b"{}").replace(b"Content-Length: 2", b"Content-Length: \xb2"),
            400,
            "invalid Content-Length",
        ),
        (
            request(b"2\r\n{}\r\n0\r\n\r\n", headers={"Transfer-Encoding": "chunked"}),
            411,
            "Content-Length",
        ),
        (request(b"{}", path="/v1/nothing"), 404, "no route"),
    ],
)
def test_bad_requests_get_4xx_never_500(
    server: GradeServer, data: bytes, status: int, says: str
) -> None:
    got, reply, _ = exchange(server, data)
    assert (got, says in json.dumps(reply)) == (status, True), reply


def test_messages_the_chat_template_refuses_are_a_400(
    server: GradeServer, service: ModelService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chat templates raise on messages they do not take (roles out of order): the
    client's mistake, not the server's fault."""
    template = "{{ raise_exception('Conversation roles must alternate user/assistant') }}"
    monkeypatch.setattr(service.tokenizer, "chat_template", template)
    body = json.dumps({"messages": [{"role": "assistant", "content": "x"}]}).encode()
    status, reply, _ = exchange(server, request(body, path="/v1/chat/completions"))
    assert status == 400 and "roles must alternate" in json.dumps(reply), reply
    status, _, _ = exchange(server, request(json.dumps(GOOD).encode()))
    assert status == 200  # and the server keeps serving


def test_a_missing_content_length_is_411(server: GradeServer) -> None:
    data = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\n\r\n"
    status, reply, _ = exchange(server, data)
    assert status == 411 and "Content-Length" in str(reply)


def _hung_up(s: socket.socket) -> bool:
    """Whether the peer closed ``s`` (EOF or reset), reading what is left."""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_a_client_that_drips_a_request_is_cut_off(server: GradeServer) -> None:
    """One byte every 0.1 s keeps every single read short of the 1 s timeout; the
    request's deadline still closes the connection long before the request is done."""
    data = request(json.dumps(GOOD).encode())
    with socket.create_connection(server.server_address[:2], timeout=5) as s:
        sent = 0
        try:
            for byte in data:  # bounded: len(data) bytes, 0.1 s apart
                s.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert _hung_up(s)
    assert sent < len(data) // 2
    # The thread it held is free again: the server still answers.
    assert exchange(server, request(json.dumps(GOOD).encode()))[0] == 200


def test_an_idle_connection_is_closed(server: GradeServer) -> None:
    with socket.create_connection(server.server_address[:2], timeout=10) as s:
        assert _hung_up(s)  # nothing sent: closed after the 1 s timeout, not 10 s


def test_a_stalled_body_is_cut_off(server: GradeServer) -> None:
    with socket.create_connection(server.server_address[:2], timeout=10) as s:
        s.sendall(request(b'{"prompt": ', length=100))  # promises 100 bytes, sends 11
        assert _hung_up(s)
    assert exchange(server, request(json.dumps(GOOD).encode()))[0] == 200


def test_keep_alive_still_works(server: GradeServer) -> None:
    data = request(json.dumps(GOOD).encode())
    with socket.create_connection(server.server_address[:2], timeout=30) as s:
        for _ in range(3):
            s.sendall(data)
            assert read_message(s).startswith(b"HTTP/1.1 200")
