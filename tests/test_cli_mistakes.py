"""Ordinary mistakes are usage errors (exit 2) or data errors (exit 1) that say what
went wrong and what to do: never exit 70, never a traceback, never "internal error".

Each row of ``MISTAKES`` runs ``python -m specc ARGV`` in a fresh process. To add a
mistake, add a row. Its ``files`` are written, as they are, into a fresh folder;
its ``argv`` may use the placeholders

* ``{tmp}``: that folder,
* ``{art}``: a compiled artifact of ``MINI_SPEC``, ``{spec}``: that spec,
* ``{data}``: a good data file for it, or the row's own ``data.jsonl`` if it has
  one; ``{row}``: one good row as a JSON file,
* ``{server}``: a loopback server that answers badly (``/plus1000/v1``, ``/nan/v1``),
* ``{closed}``: a loopback port nothing listens on.

Faults this machine cannot produce for real are simulated in the child process by
``patch`` (Python run before ``main``): the tests run as root, whom ``chmod`` does not
stop, so "permission denied" on the input is an ``open`` that raises EACCES, and a
full disk is an ``fsync`` that raises ENOSPC. Writing under ``/sys``, which root
cannot create files in either, is the real unwritable output.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from golden import ROOT
from mini_policy import MINI_SPEC

GOOD_ROW = {
    "id": "r1",
    "prompt": "Hi",
    "completion": "Sorry, no.",
    "response_type": "Comply",
    "propositions": {"apology": 0.9},
}


def jsonl(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


def good(**fields: object) -> str:
    return json.dumps({**GOOD_ROW, **fields})


def _patch(code: str) -> str:
    return textwrap.dedent(code).strip()


DENY_READ = _patch(
    """
    import errno, io, os, pathlib
    _open = io.open
    def _deny(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and pathlib.Path(file).name == "data.jsonl":
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return _open(file, *args, **kwargs)
    io.open = _deny
    """
)
DISK_FULL = _patch(
    """
    import errno, os
    def _full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    os.fsync = _full
    """
)


def _kept_old_output(tmp: Path) -> None:
    assert (tmp / "f.jsonl").read_text() == "old\n"
    assert sorted(p.name for p in tmp.iterdir()) == ["data.jsonl", "f.jsonl"]


def _kept_data(tmp: Path) -> None:
    assert (tmp / "data.jsonl").read_text() == jsonl(good())


@dataclass(frozen=True)
class Mistake:
    """One mistake: what is run, the exit code, and what the error must say."""

    name: str
    argv: tuple[str, ...]
    exit: int  # 1: bad data or spec; 2: usage (options, files, the machine)
    says: str  # a regex the error output must match
    hint: str  # a regex for the part that says what to do
    files: Mapping[str, str] = field(default_factory=dict)
    patch: str = ""  # Python run in the child before main (simulated faults)
    after: Callable[[Path], None] | None = None  # checks on {tmp} afterwards
    skip: str | None = None  # a reason to skip on this machine


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


GRADE = ("grade", "{art}", "{data}", "-o", "{tmp}/f.jsonl")
OPENAI_HINT = r"expected http\(s\)://host\[:port\]/v1"
HELP_HINT = r"= hint: see `specc \w+ --help`"

MISTAKES = [
    # -- grade: the output, the device, the server URL
    Mistake(
        "grade -o a directory",
        ("grade", "{art}", "{data}", "--grader", "labels", "-o", "{tmp}"),
        2,
        r"is a folder; -o names the features file",
        r"hint: e\.g\. -o .*features\.jsonl",
    ),
    Mistake(
        "grade -o the data file itself",
        ("grade", "{art}", "{data}", "--grader", "labels", "-o", "{tmp}/./data.jsonl"),
        2,
        r"-o is the data file itself; writing the features would replace its rows",
        r"hint: give another file",
        files={"data.jsonl": jsonl(good())},
        after=_kept_data,
    ),
    Mistake(
        "grade -o where root cannot write (/sys)",
        ("grade", "{art}", "{data}", "--grader", "labels", "-o", "/sys/specc-mistake.jsonl"),
        2,
        r"/sys/specc-mistake\.jsonl: cannot write: (Permission denied|Read-only file system)",
        r"hint: (check the permissions|that file system is read-only)",
    ),
    Mistake(
        "--device cuda on a CPU-only torch",
        (*GRADE, "--grader", "hf:{tmp}/no-model", "--device", "cuda"),
        2,
        r"--device cuda: no CUDA device is available",
        r"hint: use --device cpu",
        skip="this torch has CUDA" if _cuda() else None,
    ),
    Mistake(
        "--device cuda:99",
        (*GRADE, "--grader", "hf:{tmp}/no-model", "--device", "cuda:99"),
        2,
        r"--device cuda:99: (no CUDA device|this machine has \d+ CUDA device)",
        r"hint: use --device (cpu|cuda:0)",
    ),
    Mistake(
        "--device tpu",
        (*GRADE, "--grader", "hf:{tmp}/no-model", "--device", "tpu"),
        2,
        r"argument --device: unknown device 'tpu'",
        r"hint: auto picks CUDA",
    ),
    Mistake(
        "an out-of-range port in an openai URL",
        (*GRADE, "--grader", "openai:http://127.0.0.1:99999/v1#m"),
        2,
        r"invalid server URL 'http://127\.0\.0\.1:99999/v1' \(Port out of range",
        OPENAI_HINT,
    ),
    Mistake(
        "garbage in an openai URL",
        (*GRADE, "--grader", "openai:http://exa mple.com/v1#m"),
        2,
        r"'exa mple\.com' is not a host name",
        OPENAI_HINT,
    ),
    Mistake(
        "a broken IPv6 openai URL",
        (*GRADE, "--grader", "openai:http://[::1/v1#m"),
        2,
        r"Invalid IPv6 URL",
        OPENAI_HINT,
    ),
    Mistake(
        "an openai URL with no model",
        (*GRADE, "--grader", "openai:http://127.0.0.1:8000/v1"),
        2,
        r"no model name",
        r"write openai:URL#MODEL",
    ),
    # -- grade: the server answers, or does not
    Mistake(
        "a server that sends a logprob of +1000",
        (*GRADE, "--grader", "openai:{server}/plus1000/v1#m"),
        1,
        r"data\.jsonl:1 \(id 'r1'\), proposition 'apology': .*sent logprob 1000\.0",
        r"check the server",
        files={"data.jsonl": jsonl(good())},
    ),
    Mistake(
        "a server that sends a NaN logprob",
        (*GRADE, "--grader", "openai:{server}/nan/v1#m"),
        1,
        r"data\.jsonl:1 \(id 'r1'\), proposition 'apology': .*sent logprob nan",
        r"check the server",
        files={"data.jsonl": jsonl(good())},
    ),
    Mistake(
        "a wrong port (nothing listens)",
        (*GRADE, "--grader", "openai:http://127.0.0.1:{closed}/v1#m"),
        1,
        r"attempt 1 of 3 failed \(connection error: .*\); retrying in .*cannot reach",
        r"hint: is the server running, and are the host and port right\?",
        files={"data.jsonl": jsonl(good())},
    ),
    # -- data rows beyond the bounds
    Mistake(
        "a row nested 100 deep",
        (*GRADE, "--grader", "labels"),
        1,
        r"data\.jsonl:2: JSON nested too deeply",
        r"hint: flatten the row",
        files={"data.jsonl": jsonl(good(), good(id="r2", extra=json.loads("[" * 99 + "]" * 99)))},
    ),
    Mistake(
        "a 400-digit integer",
        (*GRADE, "--grader", "labels"),
        1,
        r"data\.jsonl:1: number 1{20}\.\.\. has 400 digits",
        r"hint: write numbers as finite floats",
        files={"data.jsonl": jsonl(good()[:-1] + ', "base_reward": ' + "1" * 400 + "}")},
    ),
    Mistake(
        "a 5000-digit id",
        (*GRADE, "--grader", "labels"),
        1,
        r"data\.jsonl:1: number 7{20}\.\.\. has 5000 digits",
        r"an id can be a string",
        files={"data.jsonl": jsonl(good().replace('"r1"', "7" * 5000))},
    ),
    Mistake(
        "a lone surrogate",
        (*GRADE, "--grader", "labels"),
        1,
        r"data\.jsonl:1: a string holds a lone UTF-16 surrogate",
        r"hint: fix the encoder",
        files={"data.jsonl": jsonl(good(completion="@").replace('"@"', '"\\ud800"'))},
    ),
    # -- numeric options
    *(
        Mistake(
            f"{option} {value}",
            (*GRADE, "--grader", "labels", option, value),
            2,
            rf"argument {option}: must be {what}, not '{value}'",
            HELP_HINT,
        )
        for option, value, what in [
            ("--batch-size", "0", "a whole number of at least 1"),
            ("--batch-size", "-2", "a whole number of at least 1"),
            ("--concurrency", "0", "a whole number of at least 1"),
            ("--limit", "-1", "a whole number of at least 1"),
            ("--top-logprobs", "0", "a whole number of at least 1"),
            ("--timeout", "0", "a number of seconds above 0"),
            ("--timeout", "nan", "a finite number"),
        ]
    ),
    Mistake(
        "fit --valid-fraction 1.5",
        ("fit", "{art}", "{tmp}/f.jsonl", "--valid-fraction", "1.5"),
        2,
        r"argument --valid-fraction: must be a fraction from 0 up to",
        HELP_HINT,
    ),
    Mistake(
        "fit --seed -1",
        ("fit", "{art}", "{tmp}/f.jsonl", "--seed", "-1"),
        2,
        r"argument --seed: must be a whole number of at least 0",
        HELP_HINT,
    ),
    Mistake(
        "build --batch-size 0",
        ("build", "{spec}", "--data", "{data}", "-o", "{tmp}/out", "--batch-size", "0"),
        2,
        r"argument --batch-size: must be a whole number of at least 1",
        HELP_HINT,
    ),
    Mistake(
        "serve --batch-size 0",
        ("serve", "{art}", "--grader", "labels", "--batch-size", "0"),
        2,
        r"argument --batch-size: must be a whole number of at least 1",
        HELP_HINT,
    ),
    Mistake(
        "eval --holdout 1",
        ("eval", "{art}", "{data}", "--grader", "labels", "--calibrate", "--holdout", "1"),
        2,
        r"argument --holdout: must be a fraction between 0 and 1",
        HELP_HINT,
    ),
    Mistake(
        "test --concurrency 0",
        ("test", "{spec}", "--concurrency", "0"),
        2,
        r"argument --concurrency: must be a whole number of at least 1",
        HELP_HINT,
    ),
    # -- files the machine refuses
    Mistake(
        "permission denied on the input (simulated: open raises EACCES)",
        (*GRADE, "--grader", "labels"),
        2,
        r"data\.jsonl: cannot read the data file: Permission denied",
        r"hint: check the permissions of the file and of its folder",
        files={"data.jsonl": jsonl(good())},
        patch=DENY_READ,
    ),
    Mistake(
        "a full disk while writing (simulated: fsync raises ENOSPC)",
        (*GRADE, "--grader", "labels"),
        2,
        r"f\.jsonl: cannot write: No space left on device",
        r"hint: free some space on that disk",
        files={"data.jsonl": jsonl(good()), "f.jsonl": "old\n"},
        patch=DISK_FULL,
        after=_kept_old_output,
    ),
    Mistake(
        "a data file that is a directory",
        ("grade", "{art}", "{tmp}", "--grader", "labels", "-o", "{tmp}/f.jsonl"),
        2,
        r"is a directory, not a data file",
        r"data file",
    ),
    # -- names mistyped, paths wrong
    Mistake(
        "a mistyped command",
        ("chek", "{spec}"),
        2,
        r"invalid choice: 'chek'",
        r"= hint: did you mean 'check'\? see `specc --help`",
    ),
    Mistake(
        "a mistyped choice",
        ("fit", "{art}", "{tmp}/f.jsonl", "--optimizer", "adam"),
        2,
        r"argument --optimizer: invalid choice: 'adam'",
        r"= hint: did you mean 'adamw'\?",
    ),
    Mistake(
        "a mistyped grader",
        (*GRADE, "--grader", "label"),
        2,
        r"unknown grader 'label'",
        r"= hint: did you mean 'labels'\? a grader is hf:PATH",
    ),
    Mistake(
        "hf: a folder that is not a model",
        (*GRADE, "--grader", "hf:{tmp}"),
        2,
        r"not a model directory \(it has no config\.json\)",
        r"= hint: pass the folder a model was saved to",
    ),
    Mistake(
        "check a file that does not exist",
        ("check", "{tmp}/nothere.rbr"),
        2,
        r"error\[E004\]: file not found",
        r"= hint: check the path \(relative paths start in the current folder\)",
    ),
    Mistake(
        "check a folder",
        ("check", "{tmp}"),
        2,
        r"error\[E004\]: .* is a directory, not a \.rbr file",
        r"= hint: name the files, e\.g\. `.*/\*\.rbr`",
    ),
    Mistake(
        "explain a JSONL file",
        ("explain", "{art}", "{tmp}/rows.jsonl"),
        1,
        r"rows\.jsonl:2:1: not valid JSON: Extra data",
        r"= hint: ROW\.json holds one row; .* \| specc explain .* -`",
        files={"rows.jsonl": jsonl(good(), good(id="r2"))},
    ),
    Mistake(
        "explain a row nested 100 deep",
        ("explain", "{art}", "{tmp}/row.json"),
        1,
        r"row\.json: JSON nested too deeply",
        r"hint: flatten the row",
        files={"row.json": "[" * 100 + "]" * 100},
    ),
]


class _BadServer(BaseHTTPRequestHandler):
    """Answers every completion with an impossible logprob for ' yes'."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        value = {"/plus1000": "1000.0", "/nan": "NaN"}.get(self.path.split("/v1")[0], "-0.1")
        body = (
            '{"choices": [{"index": 0, "text": " yes", "logprobs": {"tokens": [" yes"], '
            f'"top_logprobs": [{{" yes": {value}, " no": -2.5}}]}}}}]}}'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    from specc.compiler import compile_spec

    base = tmp_path_factory.mktemp("mistakes")
    spec = base / "mini.rbr"
    spec.write_text(MINI_SPEC, encoding="utf-8")
    compile_spec(spec, base / "art")
    (base / "data.jsonl").write_text(jsonl(good()), encoding="utf-8")
    (base / "row.json").write_text(good(), encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BadServer)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    yield {
        "spec": str(spec),
        "art": str(base / "art"),
        "data": str(base / "data.jsonl"),
        "row": str(base / "row.json"),
        "server": f"http://127.0.0.1:{server.server_address[1]}",
        "closed": str(closed),
    }
    server.shutdown()
    server.server_close()


def run_specc(argv: list[str], patch: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m specc ARGV`` (after running ``patch``) in a fresh process."""
    code = f"{patch}\nimport sys\nfrom specc.cli import main\nsys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    for name in ("FORCE_COLOR", "OPENAI_BASE_URL", "OPENAI_API_KEY", "SPECC_GRADE_CACHE"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "specc", *argv] if not patch else [sys.executable, "-c", code]
    if patch:
        cmd += argv
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_a_mistake_is_a_clear_error(
    mistake: Mistake, context: dict[str, str], tmp_path: Path
) -> None:
    if mistake.skip:
        pytest.skip(mistake.skip)
    values = {**context, "tmp": str(tmp_path)}
    for name, content in mistake.files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    if "data.jsonl" in mistake.files:
        values["data"] = str(tmp_path / "data.jsonl")
    argv = [a.format(**values) for a in mistake.argv]
    done = run_specc(argv, mistake.patch)
    out = done.stderr + done.stdout
    assert done.returncode == mistake.exit, out
    assert "Traceback" not in out and "internal error" not in out, out
    assert re.search(mistake.says, out, re.DOTALL), out
    assert re.search(mistake.hint, out), out
    if mistake.after is not None:
        mistake.after(tmp_path)


def test_the_table_catches_an_internal_error(context: dict[str, str]) -> None:
    """The checks above can fail: a crash in a command is exit 70 with "internal
    error", which every row refuses."""
    crash = "import specc.cli\nspecc.cli.cmd_check = lambda args: 1 / 0"
    done = run_specc(["check", context["spec"]], patch=crash)
    assert done.returncode == 70
    assert "internal error" in done.stderr
