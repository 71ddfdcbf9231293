"""The ``openai`` backend: any OpenAI-compatible server (vLLM, SGLang, OpenAI, ...).

Each prompt is one request, greedy and one token long, asking for the top
logprobs of that token:

* ``/v1/completions``: ``{"prompt": ..., "max_tokens": 1, "logprobs": 20,
  "temperature": 0}``; the prompt is sent verbatim (the answer slot is its end);
* ``/v1/chat/completions``: the prompt as one user message, ``"logprobs": true,
  "top_logprobs": 20``; the server's chat template decides what precedes the answer.

P(yes) is ``yes / (yes + no)`` where ``yes`` sums the probabilities of the top tokens
that are a form of a yes word (:func:`~specc.grade.base.answer_forms`, compared after
stripping leading whitespace) and ``no`` likewise. When only one side appears among
the top ``k``, the other side's mass is unknown but at most the smallest top-k
probability (any token outside the top k is no likelier than it, and all of them
together hold ``1 - sum(top k)``): that bound is used, so the estimate is the least
extreme one the server's answer allows, never a hard 0 or 1. When neither side
appears the grader is not answering yes/no and the request is an error.

HTTP is the standard library's ``http.client`` (one keep-alive connection per worker
thread) under a ``concurrent.futures`` thread pool: no dependency beyond Python.
429, 5xx and connection errors are retried with exponential backoff and jitter
(``Retry-After`` is honoured), a bounded number of times.

>>> g = OpenAIGrader("http://127.0.0.1:8000/v1", "my-grader")   # doctest: +SKIP
>>> g.grade(["Is the sky blue? Answer:"])                       # doctest: +SKIP
array([0.97])
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from specc.errors import SpecccError, UsageError
from specc.grade.base import Answers, answer_forms, logaddexp_all

if TYPE_CHECKING:
    import numpy as np

Endpoint = Literal["completions", "chat"]
_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class GraderError(SpecccError):
    """The grading server failed or answered something that is not a yes/no grade
    (exit code 1; grades already in the cache are kept)."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def p_yes_from_top_logprobs(top: dict[str, float], answers: Answers) -> float:
    """P(yes) from one position's ``{token text: logprob}`` (see the module docstring)."""
    yes_forms = {f.strip() for w in answers.yes for f in answer_forms(w)}
    no_forms = {f.strip() for w in answers.no for f in answer_forms(w)}
    yes = no = 0.0
    for token, lp in top.items():
        word = token.lstrip()
        if word in yes_forms:
            yes += math.exp(lp)
        elif word in no_forms:
            no += math.exp(lp)
    if yes == 0.0 and no == 0.0:
        shown = ", ".join(f"{t!r}" for t, _ in sorted(top.items(), key=lambda kv: -kv[1])[:8])
        raise GraderError(
            f"none of the answer words ({'/'.join(answers.yes)} or {'/'.join(answers.no)}) is "
            f"among the server's top {len(top)} tokens ({shown}); the model is not answering "
            "yes/no: check the prompt template and the model, or ask for more top logprobs"
        )
    if yes == 0.0 or no == 0.0:
        probs = [math.exp(lp) for lp in top.values()]
        bound = min(min(probs), max(0.0, 1.0 - sum(probs)))
        if yes == 0.0:
            yes = bound
        else:
            no = bound
    return yes / (yes + no)


class OpenAIGrader:
    """P(yes) from an OpenAI-compatible server's top logprobs.

    ``base_url`` ends in ``/v1`` (``OPENAI_BASE_URL``); ``api_key`` defaults to
    ``OPENAI_API_KEY`` (sent as a bearer token when set)."""

    kind = "openai"

    def __init__(
        self,
        base_url: str | None,
        model: str,
        *,
        api_key: str | None = None,
        endpoint: Endpoint = "completions",
        answers: Answers | None = None,
        top_logprobs: int = 20,
        concurrency: int = 8,
        timeout: float = 60.0,
        max_attempts: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ):
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise UsageError(
                "no server URL for the openai grader: write openai:URL#MODEL or set "
                "OPENAI_BASE_URL (e.g. http://127.0.0.1:8000/v1)"
            )
        parts = urllib.parse.urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"invalid server URL {url!r}: expected http(s)://host[:port]/v1")
        if not model:
            raise UsageError("no model name for the openai grader: write openai:URL#MODEL")
        if endpoint not in ("completions", "chat"):
            raise UsageError(f"unknown endpoint {endpoint!r}: completions or chat")
        self.base_url = urllib.parse.urlunsplit(parts)
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.endpoint: Endpoint = endpoint
        self.answers = answers or Answers()
        self.top_logprobs = top_logprobs
        self.concurrency = max(1, concurrency)
        self.batch_size = 4 * self.concurrency
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        #: Requests sent (retries included), for tests and reports.
        self.requests = 0
        self._count = threading.Lock()

    def with_answers(self, answers: Answers) -> OpenAIGrader:
        if answers == self.answers:
            return self
        clone = OpenAIGrader.__new__(OpenAIGrader)
        clone.__dict__.update(self.__dict__)
        clone.answers = answers
        clone._local = threading.local()
        clone._pool = None
        clone._count = threading.Lock()
        return clone

    @property
    def source(self) -> str:
        return f"openai:{self.model}"

    @property
    def identity(self) -> str:
        return json.dumps(
            {
                "backend": "openai",
                "url": self.base_url,
                "model": self.model,
                "endpoint": self.endpoint,
                "top_logprobs": self.top_logprobs,
                "temperature": 0,
                "max_tokens": 1,
            },
            sort_keys=True,
        )

    # ------------------------------------------------------------------ grading

    def grade(self, prompts: Sequence[str], *, prefix: str | None = None) -> np.ndarray:
        """P(yes) per prompt, ``concurrency`` requests in flight. ``prefix`` is unused
        (servers with automatic prefix caching, such as vLLM and SGLang, find it)."""
        import numpy as np

        if not prompts:
            return np.empty(0, dtype=np.float64)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="specc-grade"
            )
        values = list(self._pool.map(self.grade_one, prompts))
        return np.asarray(values, dtype=np.float64)

    def close(self) -> None:
        """Stop the worker threads (their keep-alive connections close with them)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def grade_one(self, prompt: str) -> float:
        body: dict[str, Any] = {"model": self.model, "max_tokens": 1, "temperature": 0}
        if self.endpoint == "completions":
            body.update(prompt=prompt, logprobs=self.top_logprobs)
            route = "/completions"
        else:
            body.update(
                messages=[{"role": "user", "content": prompt}],
                logprobs=True,
                top_logprobs=self.top_logprobs,
            )
            route = "/chat/completions"
        reply = self._post(route, body)
        return p_yes_from_top_logprobs(self._top(reply), self.answers)

    def _top(self, reply: Any) -> dict[str, float]:
        """The first generated token's ``{token: logprob}`` from a reply."""
        try:
            choice = reply["choices"][0]
            logprobs = choice.get("logprobs")
            if logprobs is None:
                raise GraderError(
                    f"the server at {self.base_url} returned no logprobs; the grader needs "
                    "them: use a server that supports "
                    + (
                        "'logprobs' on /v1/completions"
                        if self.endpoint == "completions"
                        else "'logprobs'/'top_logprobs' on /v1/chat/completions"
                    )
                    + " (vLLM, SGLang, specc.grade.server)"
                )
            top: dict[str, float] = {}
            if self.endpoint == "completions":
                entries = logprobs.get("top_logprobs") or []
                if entries and entries[0]:
                    top = {str(t): float(lp) for t, lp in entries[0].items()}
            else:
                content = logprobs.get("content") or []
                if content:
                    for item in content[0].get("top_logprobs") or []:
                        tok, lp = str(item["token"]), float(item["logprob"])
                        top[tok] = logaddexp_all([top[tok], lp]) if tok in top else lp
        except GraderError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise GraderError(
                f"unexpected reply from {self.base_url} ({type(exc).__name__}: {exc}); "
                "is it an OpenAI-compatible server?"
            ) from None
        if not top:
            raise GraderError(
                f"the server at {self.base_url} returned no top logprobs for the answer token; "
                f"ask a server that supports top logprobs (up to {self.top_logprobs})"
            )
        return top

    # ------------------------------------------------------------------ HTTP

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._scheme == "https"
                else http.client.HTTPConnection
            )
            conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _post(self, route: str, body: dict[str, Any]) -> Any:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.max_attempts):
            try:
                return self._request(self._path + route, data, headers)
            except _Retryable as exc:
                last = str(exc)
                if attempt + 1 == self.max_attempts:
                    break
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                delay = delay * (0.5 + random.random())  # jitter: 0.5x to 1.5x
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, self.max_backoff))
                time.sleep(delay)
        raise GraderError(
            f"{self.base_url}{route}: giving up after {self.max_attempts} attempts: {last}"
        )

    def _request(self, path: str, data: bytes, headers: dict[str, str]) -> Any:
        with self._count:
            self.requests += 1
        conn = self._connection()
        try:
            conn.request("POST", path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop_connection()
            raise _Retryable(f"connection error: {exc or type(exc).__name__}") from None
        if resp.getheader("Connection", "").lower() == "close":
            self._drop_connection()
        if resp.status in _RETRY_STATUS:
            retry_after = resp.getheader("Retry-After")
            try:
                wait = float(retry_after) if retry_after else None
            except ValueError:
                wait = None
            raise _Retryable(f"HTTP {resp.status}: {_message(payload)}", wait)
        if resp.status >= 400:
            hint = {
                401: "check the API key (OPENAI_API_KEY)",
                403: "check the API key's permissions",
                404: "check the base URL (it usually ends in /v1) and the model name",
            }.get(resp.status, "check the request settings")
            raise GraderError(f"{self.base_url}: HTTP {resp.status}: {_message(payload)}; {hint}")
        try:
            return json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GraderError(
                f"{self.base_url}: the reply is not JSON: {payload[:200]!r}"
            ) from None


def _message(payload: bytes) -> str:
    try:
        obj = json.loads(payload)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        msg = err.get("message", err) if isinstance(err, dict) else err
        return str(msg)[:300]
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return payload[:300].decode("utf-8", "replace")
