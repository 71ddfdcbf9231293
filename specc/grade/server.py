"""A small OpenAI-compatible server around a local transformers causal LM.

It answers ``POST /v1/completions`` and ``POST /v1/chat/completions`` with greedy
decoding and real top logprobs (``GET /v1/models`` lists the one model), so the
``openai`` backend can be tried, tested and used without vLLM. It binds loopback
(127.0.0.1) unless told otherwise with ``--allow-remote``.

    python -m specc.grade.server --model models/grader --port 8000
    specc grade out/a data.jsonl --grader openai:http://127.0.0.1:8000/v1#grader -o f.jsonl

Supported request fields: ``model``, ``prompt`` (a string or a list of at most
:data:`MAX_PROMPTS` strings) or ``messages``, ``max_tokens`` (default 16),
``logprobs`` / ``top_logprobs`` (up to ``--max-logprobs``), ``temperature`` (only 0 /
greedy is served), ``stop`` (ignored past the generated tokens). Chat messages go
through the tokenizer's chat template when it has one; otherwise a single message is
its content verbatim and several are ``specc.prompts.render_conversation`` text
followed by ``"\\n\\nAssistant:"``.

Requests are untrusted and bounded: the listen backlog holds :data:`BACKLOG`
connections; a client has ``request_timeout`` seconds (default
:data:`REQUEST_TIMEOUT`) from its first byte to send a whole request, and may idle
that long between requests, before its connection is closed; a body over
``max_body`` bytes (default :data:`MAX_BODY_BYTES`) is refused with 413 from its
Content-Length, before it is read; the API key is checked before the body is read;
a body is parsed by :func:`specc.jsonl.parse_line` (bounded depth and numbers, strict
UTF-8, no lone surrogates). Every bad request gets a 4xx with an OpenAI-style error
body; 500 is only for a fault in the server itself.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from specc.argtypes import device, port, positive_int, seconds
from specc.errors import DataError, UsageError
from specc.grade.base import logaddexp_all
from specc.jsonl import parse_line
from specc.prompts import render_conversation
from specc.serve.config import is_loopback

LOOPBACK = "127.0.0.1"
#: Connections the kernel queues for the server to accept (the listen backlog).
BACKLOG = 1024
#: The largest request body accepted; larger ones get 413 before they are read.
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Seconds a client has to send one request, from its first byte, and may idle
#: between requests on a kept-alive connection.
REQUEST_TIMEOUT = 30.0
#: Prompts in one ``/v1/completions`` request (OpenAI's own limit for a list): each
#: is decoded in turn under the model's lock, so a list of millions of tiny prompts
#: (16 MiB of ``"a",``) would hold the server for hours.
MAX_PROMPTS = 2048


class RequestError(Exception):
    """A client error, answered as HTTP 4xx with an OpenAI-style error body."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.kind = kind


class ModelService:
    """Greedy decoding with top logprobs, one request at a time (a lock guards the model)."""

    def __init__(self, model: Any, tokenizer: Any, name: str, max_logprobs: int = 20):
        from specc.grade.hf import cache_argument

        self.model = model
        self.cache_kw = cache_argument(model)
        self.tokenizer = tokenizer
        self.name = name
        self.max_logprobs = max_logprobs
        self.lock = threading.Lock()
        self.device = next(model.parameters()).device
        config = getattr(model, "config", None)
        #: The longest prompt plus completion the model takes, in tokens (None: unknown).
        self.max_length: int | None = next(
            (
                int(v)
                for k in ("max_position_embeddings", "n_positions")
                if isinstance(v := getattr(config, k, None), int) and v > 0
            ),
            None,
        )

    @classmethod
    def from_pretrained(
        cls,
        path: str,
        *,
        name: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        max_logprobs: int = 20,
    ) -> ModelService:
        from specc.grade.hf import HFGrader

        grader = HFGrader.from_pretrained(path, device=device, dtype=dtype)
        return cls(grader.model, grader.tokenizer, name or grader.name, max_logprobs)

    def chat_prompt(self, messages: Sequence[dict[str, Any]]) -> tuple[list[int], str]:
        """Token ids and text of a chat request's prompt (see the module docstring)."""
        if getattr(self.tokenizer, "chat_template", None):
            from jinja2 import TemplateError

            try:
                text = self.tokenizer.apply_chat_template(
                    list(messages), tokenize=False, add_generation_prompt=True
                )
            except TemplateError as exc:  # the template refuses these messages
                raise RequestError(
                    400, f"the model's chat template refused the messages: {exc}"
                ) from None
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            return list(map(int, ids)), str(text)
        if len(messages) == 1:
            text = str(messages[0].get("content", ""))
        else:
            text = render_conversation(messages) + "\n\nAssistant:"
        return self.encode(text), text

    def encode(self, text: str) -> list[int]:
        return list(map(int, self.tokenizer(text, add_special_tokens=True)["input_ids"]))

    def generate(self, ids: list[int], max_tokens: int, top_k: int) -> list[dict[str, Any]]:
        """Greedy steps: ``[{"id", "text", "logprob", "top": {text: logprob}}]``."""
        import torch

        if not ids:
            raise RequestError(400, "the prompt is empty")
        if self.max_length is not None and len(ids) + max_tokens > self.max_length:
            raise RequestError(
                400,
                f"the prompt ({len(ids)} tokens) plus max_tokens ({max_tokens}) exceeds the "
                f"model's context of {self.max_length} tokens",
            )
        steps: list[dict[str, Any]] = []
        eos = self.tokenizer.eos_token_id
        with self.lock, torch.inference_mode():
            past = None
            inputs = torch.tensor([ids], device=self.device)
            for _ in range(max_tokens):
                kwargs: dict[str, Any] = {self.cache_kw: past} if past is not None else {}
                out = self.model(input_ids=inputs, use_cache=True, logits_to_keep=1, **kwargs)
                past = getattr(out, self.cache_kw)
                logprobs = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
                token = int(torch.argmax(logprobs))
                top: dict[str, float] = {}
                if top_k > 0:
                    values, indices = torch.topk(logprobs, min(top_k, logprobs.numel()))
                    for lp, idx in zip(values.tolist(), indices.tolist(), strict=True):
                        text = self.tokenizer.decode([idx])
                        top[text] = logaddexp_all([top[text], lp]) if text in top else lp
                steps.append(
                    {
                        "id": token,
                        "text": self.tokenizer.decode([token]),
                        "logprob": float(logprobs[token]),
                        "top": top,
                    }
                )
                if eos is not None and token == eos:
                    break
                inputs = torch.tensor([[token]], device=self.device)
        return steps


def _int(body: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(400, f"'{key}' must be an integer in [{low}, {high}]")
    return value


def _check_common(service: ModelService, body: dict[str, Any]) -> int:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError(400, "'model' must be a string")
    if model is not None and model != service.name:
        raise RequestError(
            404, f"model {model!r} not found; this server has {service.name!r}", "not_found_error"
        )
    if body.get("stream"):
        raise RequestError(400, "streaming is not supported")
    if _int(body, "n", 1, 1, 1) != 1:
        raise RequestError(400, "only n=1 is supported")
    temperature = body.get("temperature", 0)
    if temperature is not None and (
        not isinstance(temperature, (int, float)) or float(temperature) != 0.0
    ):
        raise RequestError(400, "only greedy decoding (temperature 0) is served")
    return _int(body, "max_tokens", 16, 1, 4096)


def _usage(prompt_tokens: int, steps: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(steps),
        "total_tokens": prompt_tokens + len(steps),
    }


def _finish(service: ModelService, steps: list[dict[str, Any]]) -> str:
    eos = service.tokenizer.eos_token_id
    return "stop" if steps and eos is not None and steps[-1]["id"] == eos else "length"


def completions(service: ModelService, body: dict[str, Any]) -> dict[str, Any]:
    """The ``/v1/completions`` reply for a request body."""
    max_tokens = _check_common(service, body)
    if body.get("echo"):
        raise RequestError(400, "echo is not supported")
    top_k = (
        _int(body, "logprobs", 0, 0, service.max_logprobs)
        if body.get("logprobs") is not None
        else None
    )
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise RequestError(400, "'prompt' must be a string or a non-empty list of strings")
    if len(prompts) > MAX_PROMPTS:
        raise RequestError(400, f"'prompt' has {len(prompts)} prompts; at most {MAX_PROMPTS}")
    choices = []
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for index, text in enumerate(prompts):
        ids = service.encode(text)
        steps = service.generate(ids, max_tokens, top_k or 0)
        logprobs = None
        if top_k is not None:
            offsets, pos = [], len(text)
            for s in steps:
                offsets.append(pos)
                pos += len(s["text"])
            logprobs = {
                "tokens": [s["text"] for s in steps],
                "token_logprobs": [s["logprob"] for s in steps],
                "top_logprobs": [s["top"] for s in steps],
                "text_offset": offsets,
            }
        choices.append(
            {
                "index": index,
                "text": "".join(s["text"] for s in steps),
                "logprobs": logprobs,
                "finish_reason": _finish(service, steps),
            }
        )
        for k, v in _usage(len(ids), steps).items():
            usage[k] += v
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": service.name,
        "choices": choices,
        "usage": usage,
    }


def chat_completions(service: ModelService, body: dict[str, Any]) -> dict[str, Any]:
    """The ``/v1/chat/completions`` reply for a request body."""
    max_tokens = _check_common(service, body)
    messages = body.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(
            isinstance(m, dict)
            and isinstance(m.get("content"), str)
            and isinstance(m.get("role", "user"), str)
            for m in messages
        )
    ):
        raise RequestError(
            400, "'messages' must be a non-empty list of {role, content} objects of strings"
        )
    want = body.get("logprobs", False)
    if want is not None and not isinstance(want, bool):
        raise RequestError(400, "'logprobs' must be true or false for chat completions")
    want = bool(want)
    top_k = _int(body, "top_logprobs", 0, 0, service.max_logprobs) if want else 0
    ids, _ = service.chat_prompt(messages)
    steps = service.generate(ids, max_tokens, top_k)

    def entry(text: str, lp: float) -> dict[str, Any]:
        return {"token": text, "logprob": lp, "bytes": list(text.encode("utf-8"))}

    logprobs = None
    if want:
        logprobs = {
            "content": [
                {
                    **entry(s["text"], s["logprob"]),
                    "top_logprobs": [entry(t, lp) for t, lp in s["top"].items()],
                }
                for s in steps
            ]
        }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": service.name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(s["text"] for s in steps)},
                "logprobs": logprobs,
                "finish_reason": _finish(service, steps),
            }
        ],
        "usage": _usage(len(ids), steps),
    }


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the server's :class:`ModelService`, within the server's
    limits (see the module docstring)."""

    protocol_version = "HTTP/1.1"
    server: GradeServer

    def setup(self) -> None:
        self._watchdog: threading.Timer | None = None
        super().setup()
        # Per read: a client idle this long (or stalled mid-read) is dropped.
        self.connection.settimeout(self.server.request_timeout)

    def handle_one_request(self) -> None:
        """Wait for a request's first byte (at most the timeout), then give the whole
        request (line, headers, body) one deadline: a client that drips bytes is cut
        off like one that stalls."""
        try:
            if not self.rfile.peek(1):  # type: ignore[attr-defined]
                self.close_connection = True
                return
        except OSError:  # the idle timeout, or a reset
            self.close_connection = True
            return
        self._watchdog = threading.Timer(self.server.request_timeout, self._cut)
        self._watchdog.daemon = True
        self._watchdog.start()
        try:
            super().handle_one_request()
        except OSError:  # the client hung up, or the deadline cut it off: routine
            self.close_connection = True
        finally:
            self._disarm()

    def _cut(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, status: int, message: str, kind: str, *, close: bool = False) -> None:
        """An OpenAI-style error; ``close`` when the request's body was not read (the
        connection cannot carry another request)."""
        self.send_json(
            status,
            {"error": {"message": message, "type": kind, "code": status}},
            {"Connection": "close"} if close else None,
        )

    def _authorised(self, *, close: bool) -> bool:
        key = self.server.api_key
        offered = (self.headers.get("Authorization") or "").encode("latin-1", "replace")
        # Compared in constant time: how long a refusal takes says nothing of the key.
        if key and not hmac.compare_digest(offered, f"Bearer {key}".encode("latin-1", "replace")):
            self.send_error_json(
                401, "invalid or missing API key", "authentication_error", close=close
            )
            return False
        return True

    def do_GET(self) -> None:
        self._disarm()
        if not self._authorised(close=False):
            return
        if self.path.rstrip("/") == "/v1/models":
            name = self.server.service.name
            self.send_json(
                200,
                {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "specc"}]},
            )
        else:
            self.send_error_json(404, f"no route {self.path}", "not_found_error")

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 4xx (the body is then never read)."""
        if self.headers.get("Transfer-Encoding"):
            self.send_error_json(
                411, "send the body with a Content-Length", "invalid_request_error", close=True
            )
            return None
        text = self.headers.get("Content-Length")
        if text is None:
            self.send_error_json(
                411, "a Content-Length header is required", "invalid_request_error", close=True
            )
            return None
        text = text.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            self.send_error_json(
                400, f"invalid Content-Length {text[:40]!r}", "invalid_request_error", close=True
            )
            return None
        length = int(text)
        if length > self.server.max_body:
            self.send_error_json(
                413,
                f"the body ({length} bytes) is larger than this server's limit of "
                f"{self.server.max_body} bytes",
                "invalid_request_error",
                close=True,
            )
            return None
        chunks, left = [], length
        while left:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:  # the client went away, or the deadline cut it off
                self.close_connection = True
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def do_POST(self) -> None:
        routes = {"/v1/completions": completions, "/v1/chat/completions": chat_completions}
        route = routes.get(self.path.rstrip("/"))
        if not self._authorised(close=True):  # before a byte of the body is read
            return
        if route is None:
            self.send_error_json(404, f"no route {self.path}", "not_found_error", close=True)
            return
        raw = self._read_body()
        if raw is None:
            return
        self._disarm()  # the request is in; the model may take its time
        try:
            body = parse_line(raw, "request body", document=True)
            if not isinstance(body, dict):
                raise RequestError(400, "the request body must be a JSON object")
            reply = route(self.server.service, body)
        except DataError as exc:
            self.send_error_json(400, str(exc), "invalid_request_error")
        except RequestError as exc:
            self.send_error_json(exc.status, str(exc), exc.kind)
        except Exception as exc:  # a bug or a model failure: a 500, the server keeps going
            self.send_error_json(500, f"{type(exc).__name__}: {exc}", "server_error")
        else:
            self.send_json(200, reply)


class GradeServer(ThreadingHTTPServer):
    """The HTTP server: one thread per connection, limits from the module docstring."""

    daemon_threads = True
    request_queue_size = BACKLOG

    def __init__(
        self,
        service: ModelService,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        api_key: str | None = None,
        allow_remote: bool = False,
        verbose: bool = False,
        handler: type[Handler] = Handler,
        max_body: int = MAX_BODY_BYTES,
        request_timeout: float = REQUEST_TIMEOUT,
    ):
        if not allow_remote and not is_loopback(host):
            raise UsageError(
                f"refusing to bind {host!r}: the grade server serves loopback only; pass "
                "--allow-remote (and --api-key) to expose it"
            )
        self.service = service
        self.api_key = api_key
        self.verbose = verbose
        self.max_body = max_body
        self.request_timeout = request_timeout
        super().__init__((host, port), handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> threading.Thread:
        """Serve in a daemon thread (for tests and notebooks); stop with ``shutdown()``."""
        thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), daemon=True, name="specc-server"
        )
        thread.start()
        return thread


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m specc.grade.server",
        description="Serve a local causal LM over an OpenAI-compatible API (loopback only).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "example:\n"
            "  python -m specc.grade.server --model models/grader --port 8000\n"
            "  specc grade out/a data.jsonl --grader openai:http://127.0.0.1:8000/v1#grader "
            "-o f.jsonl"
        ),
    )
    ap.add_argument("--model", required=True, help="model directory (or cached hub name)")
    ap.add_argument("--name", help="the model name clients send (default: the folder name)")
    ap.add_argument("--host", default=LOOPBACK, help=f"address to bind (default: {LOOPBACK})")
    ap.add_argument("--port", type=port, default=8000, help="port to bind (default: 8000)")
    ap.add_argument("--device", type=device, default="auto", help="torch device (default: auto)")
    ap.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="weights dtype (default: auto)",
    )
    ap.add_argument(
        "--max-logprobs", type=positive_int, default=20, help="top-k limit (default: 20)"
    )
    ap.add_argument(
        "--max-body",
        type=positive_int,
        default=MAX_BODY_BYTES,
        metavar="BYTES",
        help=f"largest request body; larger gets 413 (default: {MAX_BODY_BYTES})",
    )
    ap.add_argument(
        "--timeout",
        type=seconds,
        default=REQUEST_TIMEOUT,
        metavar="SECONDS",
        help="time a client has to send a request, and may idle between requests "
        f"(default: {REQUEST_TIMEOUT:g})",
    )
    ap.add_argument("--api-key", help="require this bearer token (default: none)")
    ap.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = ap.parse_args(argv)
    try:
        service = ModelService.from_pretrained(
            args.model,
            name=args.name,
            device=args.device,
            dtype=args.dtype,
            max_logprobs=args.max_logprobs,
        )
        server = GradeServer(
            service,
            args.host,
            args.port,
            api_key=args.api_key,
            allow_remote=args.allow_remote,
            verbose=args.verbose,
            max_body=args.max_body,
            request_timeout=args.timeout,
        )
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"serving {service.name!r} at {server.url}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
