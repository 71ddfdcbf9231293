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

Every request is bounded. ``timeout`` (``--timeout``, default 60 s) is one deadline
for the whole exchange, connect to the last byte of the reply: a server that drips
one byte every few seconds is cut off when it passes. A reply larger than
:data:`MAX_REPLY_BYTES` is refused (by its Content-Length before reading, or once
that much has arrived). Each logprob must be a log-probability: at most 0 (within
:data:`LOGPROB_TOLERANCE`) and not NaN; ``-inf`` is probability 0.

429, 5xx, timeouts and connection errors are retried with exponential backoff and
jitter (``Retry-After`` is honoured), a bounded number of times, each retry announced
in one line (attempt k of N, the reason, the wait). A server that has never answered
gets :data:`FIRST_CONTACT_ATTEMPTS` attempts at connecting, so a wrong host or port
fails in about two seconds; once it has answered, the full ``max_attempts`` apply.

>>> g = OpenAIGrader("http://127.0.0.1:8000/v1", "my-grader")   # doctest: +SKIP
>>> g.grade(["Is the sky blue? Answer:"])                       # doctest: +SKIP
array([0.97])
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from specc.errors import UsageError
from specc.grade.base import Answers, GraderError, answer_forms, logaddexp_all

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOP_LOGPROBS",
    "FIRST_CONTACT_ATTEMPTS",
    "LOGPROB_TOLERANCE",
    "MAX_REPLY_BYTES",
    "GraderError",
    "OpenAIGrader",
    "p_yes_from_top_logprobs",
]

Endpoint = Literal["completions", "chat"]
_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})

#: Seconds for one request, connect to the last byte of the reply (``--timeout``).
DEFAULT_TIMEOUT = 60.0
#: Top tokens asked for at the answer slot (``--top-logprobs``).
DEFAULT_TOP_LOGPROBS = 20
#: The largest reply read from a server; a grade reply is a few KiB.
MAX_REPLY_BYTES = 8 * 1024 * 1024
#: How far above 0 a logprob may be (rounding in the server) before it is refused.
LOGPROB_TOLERANCE = 1e-3
#: Connection attempts before a server has ever answered (a wrong host or port).
FIRST_CONTACT_ATTEMPTS = 3

_HOST = re.compile(r"[A-Za-z0-9._~-]+|[0-9A-Fa-f:.]+")
#: Printable ASCII: what a header value (the API key) can carry.
_HEADER_TEXT = re.compile(r"[\x20-\x7e]+")


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None, *, connect: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.connect = connect  # the server was never reached


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
            "yes/no: check the prompt template and the model, or pass a larger --top-logprobs "
            f"(this reply has {len(top)})"
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
    ``OPENAI_API_KEY`` (sent as a bearer token when set). ``notify`` gets the one-line
    retry notices (default: stderr; pass ``lambda _: None`` to drop them)."""

    kind = "openai"

    def __init__(
        self,
        base_url: str | None,
        model: str,
        *,
        api_key: str | None = None,
        endpoint: Endpoint = "completions",
        answers: Answers | None = None,
        top_logprobs: int = DEFAULT_TOP_LOGPROBS,
        concurrency: int = 8,
        timeout: float = DEFAULT_TIMEOUT,
        max_attempts: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        notify: Callable[[str], None] | None = None,
    ):
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise UsageError(
                "no server URL for the openai grader: write openai:URL#MODEL or set "
                "OPENAI_BASE_URL (e.g. http://127.0.0.1:8000/v1)"
            )
        parts = _split_url(url)
        if not model:
            raise UsageError("no model name for the openai grader: write openai:URL#MODEL")
        if endpoint not in ("completions", "chat"):
            raise UsageError(f"unknown endpoint {endpoint!r}: completions or chat")
        for name, value, low in (
            ("top_logprobs", top_logprobs, 1),
            ("concurrency", concurrency, 1),
            ("max_attempts", max_attempts, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UsageError(f"{name} must be a whole number of at least {low}, not {value!r}")
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise UsageError(f"timeout must be a number of seconds above 0, not {timeout!r}")
        self.base_url = urllib.parse.urlunsplit(parts)
        self._scheme = parts.scheme
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = parts.path
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if self.api_key and not _HEADER_TEXT.fullmatch(self.api_key):
            raise UsageError(
                "the API key (OPENAI_API_KEY) holds a line break, a control character or "
                "a character outside ASCII, which cannot be sent in a header; check how it "
                "was set"
            )
        self.endpoint: Endpoint = endpoint
        self.answers = answers or Answers()
        self.top_logprobs = top_logprobs
        self.concurrency = concurrency
        self.batch_size = 4 * self.concurrency
        self.timeout = float(timeout)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.notify: Callable[[str], None] = notify or _stderr
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        #: Requests sent (retries included), for tests and reports.
        self.requests = 0
        self._count = threading.Lock()
        #: Whether the server has ever sent an HTTP reply (see FIRST_CONTACT_ATTEMPTS).
        self.reached = False

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
        (servers with automatic prefix caching, such as vLLM and SGLang, find it).

        The first failure stops the call (requests not yet sent are cancelled) and is
        raised as a :class:`GraderError` whose ``prompt_index`` says which prompt."""
        import numpy as np

        if not prompts:
            return np.empty(0, dtype=np.float64)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="specc-grade"
            )
        futures: list[Future[float]] = [self._pool.submit(self.grade_one, p) for p in prompts]
        values = []
        try:
            for i, future in enumerate(futures):
                try:
                    values.append(future.result())
                except GraderError as exc:
                    raise GraderError(str(exc), prompt_index=i) from None
        finally:
            for future in futures:
                future.cancel()
        return np.asarray(values, dtype=np.float64)

    def close(self) -> None:
        """Stop the worker threads (their keep-alive connections close with them)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
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
        """The first generated token's ``{token: logprob}`` from a reply, each logprob
        checked to be a log-probability."""
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
                    for t, lp in entries[0].items():
                        top[str(t)] = self._logprob(t, lp)
            else:
                content = logprobs.get("content") or []
                if content:
                    for item in content[0].get("top_logprobs") or []:
                        tok = str(item["token"])
                        lp = self._logprob(tok, item["logprob"])
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

    def _logprob(self, token: object, value: object) -> float:
        """``value`` as a log-probability: a number, not NaN, at most 0 (within
        :data:`LOGPROB_TOLERANCE`, clipped to 0); ``-inf`` is probability 0."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GraderError(
                f"the server at {self.base_url} sent logprob {value!r} for token {token!r}, "
                "which is not a number; is it an OpenAI-compatible server?"
            )
        try:
            lp = float(value)
        except OverflowError:  # an integer past any float: -10**400 is probability 0
            lp = -math.inf if value < 0 else math.inf
        if math.isnan(lp) or lp > LOGPROB_TOLERANCE:
            raise GraderError(
                f"the server at {self.base_url} sent logprob {lp!r} for token {token!r}; a "
                "log-probability is at most 0 and not NaN, so the server's logprobs cannot be "
                "used: check the server (its version, its logprobs mode) or use another one"
            )
        return min(lp, 0.0)

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
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._request(self._path + route, data, headers)
            except _Retryable as exc:
                budget = self.max_attempts
                if exc.connect and not self.reached:
                    budget = min(budget, FIRST_CONTACT_ATTEMPTS)
                if attempt >= budget:
                    if exc.connect and not self.reached:
                        raise GraderError(
                            f"cannot reach {self.base_url} ({exc}; {attempt} attempts)"
                            "\n  = hint: is the server running, and are the host and port "
                            "right?"
                        ) from None
                    raise GraderError(
                        f"{self.base_url}{route}: giving up after {attempt} attempts: {exc}"
                    ) from None
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                delay = delay * (0.5 + random.random())  # jitter: 0.5x to 1.5x
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, self.max_backoff))
                self.notify(
                    f"specc: {self.base_url}{route}: attempt {attempt} of {budget} failed "
                    f"({exc}); retrying in {delay:.1f} s"
                )
                time.sleep(delay)

    def _request(self, path: str, data: bytes, headers: dict[str, str]) -> Any:
        """One POST, all of it (connect, send, the whole reply) within ``timeout``."""
        with self._count:
            self.requests += 1
        conn = self._connection()
        deadline = time.monotonic() + self.timeout
        if conn.sock is None:
            try:
                conn.connect()
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                reason = (
                    f"no connection within {self.timeout:g} s (--timeout)"
                    if isinstance(exc, TimeoutError)
                    else f"connection error: {_reason(exc)}"
                )
                raise _Retryable(reason, connect=True) from None
        sock = conn.sock
        assert sock is not None
        remaining = max(deadline - time.monotonic(), 0.001)
        sock.settimeout(remaining)
        expired = threading.Event()

        def cut() -> None:  # the deadline passed: unblock whatever read is in progress
            expired.set()
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

        watchdog = threading.Timer(remaining, cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.request("POST", path, body=data, headers=headers)
            resp = conn.getresponse()
            self.reached = True
            payload = self._read_reply(resp)
        except GraderError:
            self._drop_connection()
            raise
        except (OSError, http.client.HTTPException) as exc:
            self._drop_connection()
            if expired.is_set() or isinstance(exc, TimeoutError):
                raise _Retryable(
                    f"no complete reply within {self.timeout:g} s (--timeout)"
                ) from None
            raise _Retryable(f"connection error: {_reason(exc)}") from None
        finally:
            watchdog.cancel()
        if resp.getheader("Connection", "").lower() == "close":
            self._drop_connection()
        if resp.status in _RETRY_STATUS:
            retry_after = resp.getheader("Retry-After")
            try:
                wait = float(retry_after) if retry_after else None
            except ValueError:
                wait = None
            if wait is not None and not math.isfinite(wait):
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
        except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
            raise GraderError(
                f"{self.base_url}: the reply is not JSON: {payload[:200]!r}"
            ) from None

    def _read_reply(self, resp: http.client.HTTPResponse) -> bytes:
        """The reply body, refused once it passes :data:`MAX_REPLY_BYTES`."""
        too_large = GraderError(
            f"{self.base_url}: the reply is larger than {MAX_REPLY_BYTES // 1024 // 1024} MiB, "
            "far more than a grade (a few KiB); is this an OpenAI-compatible grading server?"
        )
        length = (resp.getheader("Content-Length") or "").strip()
        if length.isascii() and length.isdigit() and int(length) > MAX_REPLY_BYTES:
            raise too_large
        payload = resp.read(MAX_REPLY_BYTES + 1)
        if len(payload) > MAX_REPLY_BYTES or (not resp.isclosed() and resp.read(1)):
            raise too_large
        return payload


def _split_url(url: str) -> urllib.parse.SplitResult:
    """``url`` split, or a :class:`UsageError` that says what is wrong with it."""
    expected = "expected http(s)://host[:port]/v1, e.g. http://127.0.0.1:8000/v1"
    try:
        parts = urllib.parse.urlsplit(url.rstrip("/"))
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"invalid server URL {url!r} ({exc}); {expected}") from None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError(f"invalid server URL {url!r}: {expected}")
    if not _HOST.fullmatch(host):
        raise UsageError(f"invalid server URL {url!r}: {host!r} is not a host name; {expected}")
    if port == 0:
        raise UsageError(f"invalid server URL {url!r}: port 0; {expected}")
    if re.search(r"[\x00-\x20\x7f]", parts.path) or parts.query or parts.username:
        raise UsageError(
            f"invalid server URL {url!r}: only scheme, host, port and path are allowed (no "
            f"spaces, query or user name; the API key goes in OPENAI_API_KEY); {expected}"
        )
    if not parts.path.isascii():
        raise UsageError(
            f"invalid server URL {url!r}: the path holds a character outside ASCII; write "
            f"it percent-encoded (%C3%A9 for é); {expected}"
        )
    return parts


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _message(payload: bytes) -> str:
    try:
        obj = json.loads(payload)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        msg = err.get("message", err) if isinstance(err, dict) else err
        return str(msg)[:300]
    except (ValueError, RecursionError, AttributeError):
        return payload[:300].decode("utf-8", "replace")
