"""``specc serve``: load the reward, bind the socket, run uvicorn until SIGTERM.

The model is loaded (and an hf model warmed up) before the socket opens, so a bad
artifact or grader fails with exit code 1 or 2 and no half-started server. SIGTERM
(or Ctrl-C) stops accepting connections, answers the requests in flight, stops the
batcher and exits 0 (Ctrl-C: 130); ``--shutdown-timeout`` bounds the wait.

:class:`BackgroundServer` runs the same server on a thread, for tests, benchmarks
and notebooks::

    with BackgroundServer(create_app(engine, ServeConfig())) as srv:
        requests.post(srv.url + "/get_reward", json=...)
"""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from specc.errors import UsageError
from specc.serve.config import LagrangeOptions, ServeConfig, is_loopback

log = logging.getLogger("specc.serve")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: any free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"cannot resolve --host {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    try:
        sock = socket.create_server(address, family=family, backlog=2048)
    except OSError as exc:
        hint = (
            "\n  = hint: another process listens there; pass another --port (0 picks a free one)"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        why = os.strerror(exc.errno) if exc.errno else exc.strerror
        raise UsageError(f"cannot listen on {host}:{port}: {why}{hint}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://HOST:PORT`` of a listening socket (an IPv6 host in brackets)."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def head_deadline_protocol(seconds: float) -> type[Any]:
    """uvicorn's HTTP/1.1 protocol (h11), with a deadline on each request's head.

    uvicorn bounds only the idle time after a response: a connection that sends
    nothing, or drips a request line and headers a byte at a time, is held forever,
    and ``--max-connections`` of them make every other client get 503. Here a
    connection has ``seconds`` from its start, or from the first byte of each next
    request, to send the whole head; then it is closed. (The body has its own
    deadline in the app: 408.)"""
    import asyncio

    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadDeadline(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_timer = self.loop.call_later(seconds, self._head_expired)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the head is in
                self._stop_head_timer()
            elif self._head_timer is None:  # the first bytes of a next request
                self._head_timer = self.loop.call_later(seconds, self._head_expired)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_expired(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                log.warning("closed a connection that sent no request head within %g s", seconds)
                self.transport.close()

    return HeadDeadline


def uvicorn_server(
    app: Any,
    *,
    max_connections: int = ServeConfig.max_connections,
    shutdown_timeout: float = 60.0,
    head_timeout: float = ServeConfig.body_timeout_s,
    log_level: str = "warning",
) -> Any:
    """A ``uvicorn.Server`` for ``app`` with specc's limits (no access log: the
    query string may hold the API key; ``head_timeout`` seconds for a request's
    head, see :func:`head_deadline_protocol`)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        http=head_deadline_protocol(head_timeout),
        lifespan="on",
        access_log=False,
        log_level=log_level,
        limit_concurrency=max_connections,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=max(1, math.ceil(shutdown_timeout)),
        server_header=False,
    )
    return uvicorn.Server(config)


class BackgroundServer:
    """uvicorn serving ``app`` on a thread, on ``host`` and a free port."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, **options: Any):
        self.sock = bind(host, port)
        self.server = uvicorn_server(app, **options)
        self.url = url_of(self.sock)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=120)
        self.sock.close()


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


_SERVE_HELP = "\n  = hint: see `specc serve --help` for each option's default"


def _positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and not 0 < value < math.inf:  # nan and inf too
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"{flag} must be a finite number greater than 0, not {value}" + _SERVE_HELP
            )


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """The app settings from the parsed ``specc serve`` options."""
    _positive(args, "max_body_bytes", "max_batch", "max_request_rows", "max_queue", "body_timeout")
    if not 0 <= args.max_wait_ms < math.inf:
        raise UsageError(
            f"--max-wait-ms must be a finite number, 0 or more, not {args.max_wait_ms}"
            + _SERVE_HELP
        )
    if args.api_key and not (args.api_key.isascii() and args.api_key.isprintable()):
        raise UsageError(
            "--api-key (or $SPECC_SERVE_API_KEY) must be printable ASCII: clients send it "
            "in a header or the URL"
        )
    eos = () if args.keep_eos else tuple(args.eos_text or ServeConfig().eos_texts)
    return ServeConfig(
        api_key=args.api_key or None,
        max_body_bytes=args.max_body_bytes,
        body_timeout_s=args.body_timeout,
        max_request_rows=args.max_request_rows,
        max_batch_rows=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue_rows=args.max_queue,
        eos_texts=eos,
        default_response_type=args.response_type,
    )


def lagrange_from_args(args: argparse.Namespace) -> LagrangeOptions:
    """The multipliers' settings (``specc.safe`` checks the controller's own)."""
    _positive(args, "lambda_every")
    if args.lambda_state is not None:
        parent = Path(args.lambda_state).resolve().parent
        if not parent.is_dir():
            raise UsageError(f"--lambda-state: no folder {str(parent)!r}")
    options = LagrangeOptions(
        enabled=not args.no_constraints,
        every=args.lambda_every,
        lambda_init=args.lambda_init,
        lr=args.lambda_lr,
        window=args.lambda_window,
        lambda_max=args.lambda_max,
        delay=args.lambda_delay,
        state_path=args.lambda_state,
    )
    from specc.safe import LagrangeController

    try:  # the controllers' own checks, said in the options' names
        LagrangeController(0.0, **options.controller_settings())
    except UsageError as exc:
        text = str(exc)
        for name, flag in _LAMBDA_FLAGS.items():
            text = re.sub(rf"\b{name}\b", flag, text)
        raise UsageError(text + _SERVE_HELP) from None
    return options


_LAMBDA_FLAGS = {
    "lambda_init": "--lambda-init",
    "lambda_max": "--lambda-max",
    "window": "--lambda-window",
    "delay": "--lambda-delay",
    "lr": "--lambda-lr",
}


def run_serve(args: argparse.Namespace) -> int:
    """The ``specc serve`` command; returns the exit code."""
    from specc.pipeline import model_options
    from specc.serve.app import create_app
    from specc.serve.engine import RewardEngine

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_zero)  # before uvicorn: exit 0, not -15
    if not is_loopback(args.host) and not args.allow_remote:
        raise UsageError(
            f"refusing to listen on {args.host!r}: specc serve listens on loopback only "
            "unless --allow-remote is given (then set --api-key too)"
        )
    _positive(args, "max_connections", "shutdown_timeout")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, not {args.port}")
    config = config_from_args(args)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="specc serve: %(levelname)s: %(message)s", stream=sys.stderr
        )
    engine = RewardEngine.load(
        args.artifact, args.grader, lagrange_from_args(args), **model_options(args)
    )
    if config.default_response_type is not None:
        try:
            engine.artifact.response_type(config.default_response_type)
        except KeyError as exc:
            raise UsageError(f"--response-type: {exc.args[0]}") from None
    engine.warm_up()
    sock = bind(args.host, args.port)
    app = create_app(engine, config)
    server = uvicorn_server(
        app,
        max_connections=args.max_connections,
        shutdown_timeout=args.shutdown_timeout,
        head_timeout=config.body_timeout_s,
    )
    m = engine.artifact.manifest
    shaping = ""
    if engine.shaping:
        lams = ", ".join(f"{c} {v['lambda']:.4g}" for c, v in engine.lagrange_status().items())
        shaping = f"; rewards shaped by constraints (lambda: {lams})"
    print(
        f"specc serve: {m.name} {m.version} graded by {engine.grader_source} on "
        f"{url_of(sock)} (POST /get_reward, /score; GET /health, /metrics){shaping}",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.run(sockets=[sock])
    except SystemExit as exc:  # uvicorn re-raises the SIGTERM it handled: we are done
        if exc.code not in (0, None):
            raise
    finally:
        sock.close()
    if not server.started:
        print("specc serve: the server failed to start", file=sys.stderr)
        return 1
    n = engine.completions
    print(f"specc serve: stopped after {n} completion{'' if n == 1 else 's'}", file=sys.stderr)
    return 0
