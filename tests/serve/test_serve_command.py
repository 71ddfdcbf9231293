"""``specc serve`` as a real subprocess: start-up, options, SIGTERM with requests in flight."""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from golden import ROOT

from .conftest import openrlhf_body, rule_rows


class Served:
    """A ``python -m specc serve`` process and the URL it announced."""

    def __init__(self, *args: str):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("SPECC_SERVE_API_KEY", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "specc", "serve", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = ""

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def wait_ready(self) -> str:
        while True:
            line = self.lines.get(timeout=120)
            found = re.search(r"on (http://\S+) ", line)
            if found:
                self.url = found.group(1)
                return self.url


@pytest.fixture
def served(rules_artifact: Path) -> Iterator[Served]:
    srv = Served(str(rules_artifact), "--grader", "rules", "--port", "0")
    yield srv
    if srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait(timeout=60)


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=30) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def test_sigterm_answers_requests_in_flight_and_exits_0(served: Served) -> None:
    url = served.wait_ready()
    assert "rewards shaped by constraints (lambda: no_hotline_spam 1)" in served.stderr[0]
    parts = urllib.parse.urlsplit(url)
    rows = rule_rows(10, seed=9)
    # Ten requests whose bodies are half sent: in flight, and held there by us.
    conns, bodies = [], []
    for row in rows:
        body = json.dumps(openrlhf_body([row])).encode()
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        conn.putrequest("POST", "/get_reward")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body[: len(body) // 2])
        conns.append(conn)
        bodies.append(body)
    in_flight = 'specc_requests_in_flight{path="/get_reward"}'
    for _ in range(600):
        if metric(url, in_flight) == len(rows):
            break
    else:
        raise AssertionError("the requests never arrived")
    served.proc.send_signal(signal.SIGTERM)
    replies = []
    for conn, body in zip(conns, bodies, strict=True):
        conn.send(body[len(body) // 2 :])
        resp = conn.getresponse()
        replies.append((resp.status, json.loads(resp.read())))
        conn.close()
    assert served.proc.wait(timeout=120) == 0, "".join(served.stderr)
    assert [status for status, _ in replies] == [200] * len(rows)
    assert all(len(reply["rewards"]) == 1 for _, reply in replies)
    assert "stopped after 10 completions" in "".join(served.stderr)


def test_serve_refuses_a_remote_host_without_allow_remote(rules_artifact: Path) -> None:
    srv = Served(str(rules_artifact), "--grader", "rules", "--host", "0.0.0.0", "--port", "0")
    assert srv.proc.wait(timeout=120) == 2
    assert "--allow-remote" in "".join(srv.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-batch", "0"], "--max-batch must be a finite number greater than 0"),
        (["--shutdown-timeout", "inf"], "--shutdown-timeout must be a finite number"),
        (["--body-timeout", "inf"], "--body-timeout must be a finite number greater than 0"),
        (["--max-wait-ms", "nan"], "--max-wait-ms must be a finite number, 0 or more"),
        (["--response-type", "Comlpy"], "did you mean"),
        (["--grader", "hf:/no/such/model"], "never downloads"),
        (["--port", "70000"], "--port must be between"),
        (["--lambda-every", "0"], "--lambda-every must be a finite number greater than 0"),
        (["--lambda-lr", "-1"], "--lambda-lr must be > 0"),
        (["--lambda-window", "0"], "--lambda-window must be an integer >= 1"),
        (["--lambda-state", "/no/such/dir/state.json"], "--lambda-state: no folder"),
        (["--api-key", "k\udcffk"], "--api-key (or $SPECC_SERVE_API_KEY) must be printable"),
    ],
)
def test_serve_usage_errors_exit_2(rules_artifact: Path, args: list[str], message: str) -> None:
    srv = Served(str(rules_artifact), "--grader", "rules", *args)
    assert srv.proc.wait(timeout=120) == 2, "".join(srv.stderr)
    assert message in "".join(srv.stderr)


def test_serve_an_artifact_that_is_not_one(tmp_path: Path) -> None:
    srv = Served(str(tmp_path), "--grader", "rules")
    assert srv.proc.wait(timeout=120) == 2
    assert "not a specc artifact" in "".join(srv.stderr)


def test_serve_help_ends_with_an_example() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "specc", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.rstrip().splitlines()
    assert lines[lines.index("example:") + 1].strip().startswith("specc serve ")
    for flag in ("--max-body-bytes", "--api-key", "--allow-remote", "--eos-text"):
        assert flag in out


def test_serve_on_a_port_in_use_says_so(rules_artifact: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        srv = Served(str(rules_artifact), "--grader", "rules", "--port", port)
        assert srv.proc.wait(timeout=120) == 2
    err = "".join(srv.stderr)
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in err
    assert "= hint: another process listens there; pass another --port" in err
