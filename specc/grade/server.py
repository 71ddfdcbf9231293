"""A small OpenAI-compatible server around a local transformers causal LM.

It answers ``POST /v1/completions`` and ``POST /v1/chat/completions`` with greedy
decoding and real top logprobs (``GET /v1/models`` lists the one model), so the
``openai`` backend can be tried, tested and used without vLLM. It binds loopback
(127.0.0.1) unless told otherwise with ``--allow-remote``.

    python -m specc.grade.server --model models/grader --port 8000
    specc grade out/a data.jsonl --grader openai:http://127.0.0.1:8000/v1#grader -o f.jsonl

Supported request fields: ``model``, ``prompt`` (a string or a list of strings) or
``messages``, ``max_tokens`` (default 16), ``logprobs`` / ``top_logprobs`` (up to
``--max-logprobs``), ``temperature`` (only 0 / greedy is served), ``stop`` (ignored
past the generated tokens). Chat messages go through the tokenizer's chat template
when it has one; otherwise a single message is its content verbatim and several are
``specc.prompts.render_conversation`` text followed by ``"\\n\\nAssistant:"``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from specc.errors import UsageError
from specc.grade.base import logaddexp_all
from specc.prompts import render_conversation

LOOPBACK = "127.0.0.1"


class RequestError(Exception):
    """A client error, answered as HTTP 4xx with an OpenAI-style error body."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.kind = kind


class ModelService:
    """Greedy decoding with top logprobs, one request at a time (a lock guards the model)."""

    def __init__(self, model: Any, tokenizer: Any, name: str, max_logprobs: int = 20):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.max_logprobs = max_logprobs
        self.lock = threading.Lock()
        self.device = next(model.parameters()).device

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
            text = self.tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=True
            )
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
        steps: list[dict[str, Any]] = []
        eos = self.tokenizer.eos_token_id
        with self.lock, torch.inference_mode():
            past = None
            inputs = torch.tensor([ids], device=self.device)
            for _ in range(max_tokens):
                out = self.model(
                    input_ids=inputs, past_key_values=past, use_cache=True, logits_to_keep=1
                )
                past = out.past_key_values
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
        or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
    ):
        raise RequestError(400, "'messages' must be a non-empty list of {role, content} objects")
    want = bool(body.get("logprobs"))
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
    """Routes requests to the server's :class:`ModelService`."""

    protocol_version = "HTTP/1.1"
    server: GradeServer

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

    def send_error_json(self, status: int, message: str, kind: str) -> None:
        self.send_json(status, {"error": {"message": message, "type": kind, "code": status}})

    def _authorised(self) -> bool:
        key = self.server.api_key
        if key and self.headers.get("Authorization") != f"Bearer {key}":
            self.send_error_json(401, "invalid or missing API key", "authentication_error")
            return False
        return True

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path.rstrip("/") == "/v1/models":
            name = self.server.service.name
            self.send_json(
                200,
                {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "specc"}]},
            )
        else:
            self.send_error_json(404, f"no route {self.path}", "not_found_error")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self._authorised():
            return
        routes = {"/v1/completions": completions, "/v1/chat/completions": chat_completions}
        route = routes.get(self.path.rstrip("/"))
        if route is None:
            self.send_error_json(404, f"no route {self.path}", "not_found_error")
            return
        try:
            body = json.loads(raw or b"null")
            if not isinstance(body, dict):
                raise RequestError(400, "the request body must be a JSON object")
            reply = route(self.server.service, body)
        except json.JSONDecodeError as exc:
            self.send_error_json(400, f"invalid JSON: {exc.msg}", "invalid_request_error")
        except RequestError as exc:
            self.send_error_json(exc.status, str(exc), exc.kind)
        except Exception as exc:  # a bug or a model failure: a 500, the server keeps going
            self.send_error_json(500, f"{type(exc).__name__}: {exc}", "server_error")
        else:
            self.send_json(200, reply)


class GradeServer(ThreadingHTTPServer):
    daemon_threads = True

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
    ):
        if not allow_remote and not _is_loopback(host):
            raise UsageError(
                f"refusing to bind {host!r}: the grade server serves loopback only; pass "
                "--allow-remote (and --api-key) to expose it"
            )
        self.service = service
        self.api_key = api_key
        self.verbose = verbose
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m specc.grade.server",
        description="Serve a local causal LM over an OpenAI-compatible API (loopback only).",
    )
    ap.add_argument("--model", required=True, help="model directory (or cached hub name)")
    ap.add_argument("--name", help="the model name clients send (default: folder name)")
    ap.add_argument("--host", default=LOOPBACK)
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    ap.add_argument("--max-logprobs", type=int, default=20)
    ap.add_argument("--api-key", help="require this bearer token")
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
