"""The FastAPI app of ``specc serve``: routes, limits, errors.

=====================  ====================================================
``POST /get_reward``   OpenRLHF's remote reward protocol (``specc.serve.protocol``)
``POST /score``        plain rows, for any other trainer
``GET /health``        the policy, grader and constraints; no key needed
``GET /metrics``       Prometheus text: requests, latency, batches, lambda
=====================  ====================================================

Every request is checked before anything expensive happens: the API key before the
body is read, the body's size from ``Content-Length`` and again while it streams
(413), a time limit on reading it (408), then strict JSON (400) and the fields
(422). Only a grader failure is a 5xx (502), and a full queue is a 503 with
``Retry-After``. Each error is logged on the ``specc.serve`` logger, because
OpenRLHF's client only logs that a request failed, not why.

>>> app = create_app(RewardEngine.load("out/a", "rules"), ServeConfig())  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.requests import ClientDisconnect

from specc.errors import DataError, UsageError
from specc.serve.batcher import MicroBatcher, Overloaded
from specc.serve.config import ServeConfig
from specc.serve.engine import GraderFailure, RewardEngine, Sample, Scored
from specc.serve.metrics import Metrics
from specc.serve.protocol import RequestError, decode_json, parse_get_reward, parse_score

log = logging.getLogger("specc.serve")

PATHS = ("/get_reward", "/score", "/health", "/metrics")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Timing:
    """Pure ASGI middleware: counts every response by path and status, with latency."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500
        self.metrics.start(str(scope.get("path", "")))

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe(str(scope.get("path", "")), status, time.perf_counter() - t0)


def _authorized(request: Request, key: str) -> bool:
    offered = request.headers.get("x-api-key") or request.query_params.get("api_key")
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        offered = auth[7:].strip()
    return offered is not None and hmac.compare_digest(offered.encode(), key.encode())


async def _read_body(request: Request, config: ServeConfig) -> bytes:
    """The body, refused (413) past ``max_body_bytes`` before it is all read."""
    limit = config.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None:
        declared = declared.strip()
        # ASCII digits only ('²' is a digit to isdigit(), not to int()), and few of
        # them (int() refuses more than 4,300).
        if not (declared.isascii() and declared.isdigit()) or len(declared) > 18:
            raise RequestError(400, f"invalid Content-Length {declared[:40]!r}")
        if int(declared) > limit:
            raise RequestError(413, f"the body has {int(declared)} bytes; at most {limit}")
    chunks: list[bytes] = []
    size = 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(413, f"the body is larger than {limit} bytes")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), config.body_timeout_s)
    except asyncio.TimeoutError:
        raise RequestError(
            408, f"the body was not received within {config.body_timeout_s:g} s"
        ) from None
    return b"".join(chunks)


def create_app(engine: RewardEngine, config: ServeConfig) -> FastAPI:
    """The app; its lifespan starts the micro-batcher and stops it after the server
    has drained (so requests in flight at shutdown are still answered)."""
    metrics = Metrics(PATHS)
    batcher: MicroBatcher[Sample, Scored] = MicroBatcher(
        engine.grade_groups,
        max_rows=config.max_batch_rows,
        max_wait_s=config.max_wait_ms / 1000.0,
        max_queue_rows=config.max_queue_rows,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="specc serve",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.engine = engine
    app.state.batcher = batcher
    app.state.metrics = metrics

    def fail(kind: str, status: int, message: str, **headers: str) -> JSONResponse:
        metrics.errors[kind] += 1
        log.warning("HTTP %d: %s", status, message[:500])
        return JSONResponse({"detail": message}, status_code=status, headers=headers or None)

    @app.exception_handler(RequestError)
    async def bad_request(request: Request, exc: RequestError) -> JSONResponse:
        return fail("bad_request", exc.status, exc.message)

    @app.exception_handler(DataError)
    @app.exception_handler(UsageError)
    async def bad_rows(request: Request, exc: Exception) -> JSONResponse:
        return fail("bad_request", 422, str(exc))

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return fail("overloaded", 503, str(exc), **{"Retry-After": "1"})

    @app.exception_handler(GraderFailure)
    async def grader_failed(request: Request, exc: GraderFailure) -> JSONResponse:
        return fail("grader", 502, str(exc))

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, exc: ClientDisconnect) -> JSONResponse:
        return fail("bad_request", 400, "the client disconnected while sending the body")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s", request.url.path, exc_info=exc)
        return fail("grader", 500, f"internal error (a bug in specc): {type(exc).__name__}")

    def authorize(request: Request) -> None:
        if config.api_key is not None and not _authorized(request, config.api_key):
            raise RequestError(401, "missing or wrong API key (send 'Authorization: Bearer KEY')")

    async def rows_of(request: Request) -> Any:
        authorize(request)
        return decode_json(await _read_body(request, config))

    @app.post("/get_reward")
    async def get_reward(request: Request) -> JSONResponse:
        parsed = parse_get_reward(
            await rows_of(request),
            eos_texts=config.eos_texts,
            max_rows=config.max_request_rows,
            default_response_type=config.default_response_type,
        )
        scored = await batcher.submit(engine.samples(parsed.rows))
        return JSONResponse(engine.openrlhf_reply(scored))

    @app.post("/score")
    async def score(request: Request) -> JSONResponse:
        parsed = parse_score(await rows_of(request), max_rows=config.max_request_rows)
        scored = await batcher.submit(engine.samples(parsed.rows, parsed.observe))
        return JSONResponse(engine.score_reply(scored))

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", **engine.describe()})

    @app.get("/metrics")
    async def get_metrics(request: Request) -> PlainTextResponse:
        authorize(request)
        s = batcher.stats
        gauges = {
            "specc_completions_total": float(engine.completions),
            "specc_batches_total": float(s.batches),
            "specc_batch_rows_total": float(s.rows),
            "specc_batch_largest_rows": float(s.largest),
            "specc_grading_seconds_total": s.busy_s,
            "specc_queue_rows": float(batcher.queued_rows),
        }
        lagrange = engine.lagrange_status()
        labelled = {
            "specc_lambda": {c: float(v["lambda"] or 0.0) for c, v in lagrange.items()},
            "specc_lambda_updates_total": {
                c: float(v["updates"] or 0) for c, v in lagrange.items()
            },
            "specc_cost_window_mean": {
                c: float(v["mean_cost"]) for c, v in lagrange.items() if v["mean_cost"] is not None
            },
        }
        text = metrics.render(gauges, labelled)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    app.add_middleware(_Timing, metrics=metrics)
    return app
