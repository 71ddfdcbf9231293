"""Benchmark: ``specc serve`` under OpenRLHF-style load, next to in-process and offline.

OpenRLHF sends one sample per request, as many at once as it has rollouts in
flight. This runs the real ``python -m specc serve`` in a subprocess and drives
``POST /get_reward`` from an aiohttp client with 1, 32 and 200 concurrent clients
(each sends its requests one after another), one sample per request, and measures
requests per second and the p50/p99 latency seen by the clients. Next to it, on the
same rows:

* ``specc.load(...)`` called in process on all rows at once (a warm grader);
* offline ``specc grade`` (``run_grade``: the command's code, a fresh grade cache,
  the model loaded from disk).

Two graders: ``rules`` (a policy of extractors over the same data, 400 rows) and
``hf``, a tiny random Llama-style model (built offline, ``tests/tiny_models.py``)
grading the four-proposition policy of ``benchmarks/bench_grade.py`` (instructions
and five few-shot examples per proposition; 200 rows, so each of the 200 clients
sends one request). Rows come from ``policies/data/safety.jsonl``; prompts are
ChatML-templated like OpenRLHF's ``--data.apply_chat_template`` and each query ends
with ``<|im_end|>``. Every reply is checked: status 200 and the reward equal to
``specc.load(...)`` on the same row. The machine may be shared, so offline grading
and the 200-client level alternate for ``--repeat`` rounds and each keeps its best.

    python benchmarks/bench_serve.py               # about 6 minutes on 2 busy cores
    python benchmarks/bench_serve.py --rows 100 --skip-hf

Targets: all 200 concurrent single-sample requests answered, and with the hf grader
at 200 clients the server's throughput at least 80% of offline ``specc grade``. The
last line holds the key figures as key=value pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: Extractors only, over the same data: what ``--grader rules`` serves.
RULES_SPEC = r"""
policy "bench_rules" version "1.0.0"

proposition apology { match keywords ["sorry", "apologise", "apologize", "apologies"] }
proposition refuses { match regex "(?i)\\b(can't|cannot|won't|will not|unable to)\\b" }
proposition short { match length < 40 words }
proposition helpline { match regex "(?i)\\b(hotline|helpline|therapist|doctor|counsel\\w*)\\b" }

response_type hard_refuse "Hard Refuse" {
  ideal        when refuses and apology and short
  less_good    when refuses and not (apology and short)
  unacceptable otherwise
}

response_type comply "Comply" {
  ideal        when not refuses and not apology
  less_good    when not refuses and apology
  unacceptable otherwise
}

response_type safe_refuse_1 "Safe Refuse 1" {
  ideal        when helpline and short
  less_good    when helpline and not short
  unacceptable otherwise
}

response_type safe_refuse_2 "Safe Refuse 2" {
  ideal        when helpline and apology
  less_good    when helpline and not apology
  unacceptable otherwise
}
"""

LEVELS = (1, 32, 200)


def chatml(messages: list[dict[str, Any]]) -> str:
    """The prompt as a ChatML chat template renders it, ready for the reply."""
    parts = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
    return "".join(parts) + "<|im_start|>assistant\n"


def fit(spec_text: str, folder: Path, rows: list[dict[str, Any]], grader: str) -> Path:
    """Compile the policy and fit it on ``rows``, each labelled with its likeliest tier
    (with ``labels``, random ones: the benchmark needs weights, not good ones)."""
    from specc import compile_spec
    from specc.artifact import load_artifact
    from specc.grade import extract_features, make_grader
    from specc.grade.data import parse_row
    from specc.pipeline import fit_artifact
    from specc.weights import save_weights, weights_from_results

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.rbr").write_text(spec_text, encoding="utf-8")
    out = folder / "artifact"
    compile_spec(folder / "policy.rbr", out)
    art = load_artifact(out)
    if grader == "labels":  # random labels: the weights only need to exist and differ
        rng = random.Random(0)
        rows = [
            {
                **r,
                "propositions": {
                    p: rng.random() for p in art.response_type(r["response_type"]).propositions
                },
            }
            for r in rows
        ]
    parsed = [parse_row(r, f"row {i}", i) for i, r in enumerate(rows)]
    feats = extract_features(art, parsed, make_grader(grader))
    for f in feats:
        f.completion_label = max(f.classes, key=f.classes.__getitem__)
    results, _ = fit_artifact(art, feats)
    save_weights(out, weights_from_results(art.spec_hash, results))
    return out


class Server:
    """``python -m specc serve`` in a subprocess, on a free loopback port."""

    def __init__(self, artifact: Path, grader: str, threads: int):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "specc", "serve", str(artifact), "--grader", grader]
        cmd += ["--port", "0", "--device", "cpu", "--dtype", "float32"]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        while True:
            line = self.lines.get(timeout=600)
            found = re.search(r"on (http://\S+) ", line)
            if found:
                self.url = found.group(1)
                break

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=300)


async def drive(url: str, bodies: list[dict[str, Any]], clients: int) -> dict[str, Any]:
    """``clients`` concurrent clients send ``bodies`` (one request each, in turn)."""
    import aiohttp

    latencies: list[float] = [0.0] * len(bodies)
    rewards: list[float | None] = [None] * len(bodies)
    statuses: list[int] = [0] * len(bodies)
    todo = iter(range(len(bodies)))
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            for i in todo:
                t0 = time.perf_counter()
                async with session.post(url + "/get_reward", json=bodies[i]) as resp:
                    reply = await resp.json()
                    statuses[i] = resp.status
                latencies[i] = time.perf_counter() - t0
                if resp.status == 200:
                    rewards[i] = reply["rewards"][0]

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return {"wall": wall, "latencies": latencies, "rewards": rewards, "statuses": statuses}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def level(
    name: str, url: str, bodies: list[dict[str, Any]], clients: int, expected: Any
) -> dict[str, Any]:
    """One load level: throughput, latency percentiles, answers, agreement."""
    import numpy as np

    res = asyncio.run(drive(url, bodies, clients))
    n = len(bodies)
    ok = sum(s == 200 for s in res["statuses"])
    got = np.array([r if r is not None else np.nan for r in res["rewards"]])
    diff = float(np.nanmax(np.abs(got - expected[:n]))) if ok else float("nan")
    print(
        f"  {name:5} {clients:>3} clients: {n} requests, {ok} answered, "
        f"{n / res['wall']:.2f} req/s, max |server - in-process| {diff:.1e}",
        flush=True,
    )
    return {
        "requests": n,
        "answered": ok,
        "rps": n / res["wall"],
        "p50": percentile(res["latencies"], 0.5),
        "p99": percentile(res["latencies"], 0.99),
        "max_diff": diff,
    }


def run_grader(
    name: str,
    artifact: Path,
    grader: str,
    rows: list[dict[str, Any]],
    args: argparse.Namespace,
    work: Path,
) -> dict[str, Any]:
    """In process, then ``--repeat`` rounds of offline grading and 200 clients
    (alternating, best of each: the machine may be shared), and 1 and 32 clients."""
    import numpy as np

    import specc
    from specc.grade.command import run_grade

    bodies = [
        {
            "query": [r["prompt"] + r["completion"] + "<|im_end|>"],
            "prompts": [r["prompt"]],
            "labels": [r["response_type"]],
        }
        for r in rows
    ]
    options = {"device": "cpu", "dtype": "float32"} if grader.startswith("hf:") else {}
    reward = specc.load(artifact, grader=grader, **options)
    reward(rows[:2])  # load and warm the model
    t0 = time.perf_counter()
    expected = np.asarray(reward(rows))
    in_process = len(rows) / (time.perf_counter() - t0)
    data = work / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    server = Server(artifact, grader, args.threads)
    out: dict[str, Any] = {"in_process": in_process, "offline": 0.0, "levels": {}}
    try:
        asyncio.run(drive(server.url, bodies[:4], 2))  # warm-up
        for k in range(args.repeat):
            t0 = time.perf_counter()
            summary = run_grade(
                artifact,
                data,
                grader,
                work / f"{name}-features.jsonl",
                cache_path=work / f"{name}-{k}.sqlite",
                progress=False,
                **options,
            )
            assert summary["rows"] == len(rows) and summary["cache_hits"] == 0
            offline = len(rows) / (time.perf_counter() - t0)
            print(f"  {name:5} offline specc grade: {offline:.2f} rows/s", flush=True)
            out["offline"] = max(out["offline"], offline)
            result = level(name, server.url, bodies, 200, expected)
            if 200 not in out["levels"] or result["rps"] > out["levels"][200]["rps"]:
                out["levels"][200] = result
        out["levels"][1] = level(name, server.url, bodies[: args.c1_requests], 1, expected)
        out["levels"][32] = level(name, server.url, bodies, 32, expected)
    finally:
        out["exit"] = server.stop()
    out["levels"] = {c: out["levels"][c] for c in LEVELS}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=400, help="rules: requests per level (400)")
    ap.add_argument("--hf-rows", type=int, default=200, help="hf: requests per level (200)")
    ap.add_argument("--c1-requests", type=int, default=20, help="requests with 1 client (20)")
    ap.add_argument("--repeat", type=int, default=2, help="offline/200-client rounds (2)")
    ap.add_argument("--layers", type=int, default=4, help="tiny model layers (4)")
    ap.add_argument("--hidden", type=int, default=256, help="tiny model width (256)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, both sides (1)")
    ap.add_argument("--skip-hf", action="store_true", help="only the rules grader")
    args = ap.parse_args()

    import torch
    from bench_grade import bench_model, bench_spec

    from specc.artifact import load_artifact
    from specc.grade import read_rows

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="specc-bench-serve-"))
    data = ROOT / "policies/data/safety.jsonl"
    raw = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    picked = list(range(0, len(raw), max(1, len(raw) // args.rows)))[: args.rows]
    rows = [
        {
            "id": raw[i]["id"],
            "prompt": chatml(raw[i]["prompt"]),
            "completion": raw[i]["completion"][0]["content"],
            "response_type": raw[i]["response_type"],
        }
        for i in picked
    ]
    print(f"rows: {len(rows)} from {data.name}, one sample per request", flush=True)
    results: dict[str, dict[str, Any]] = {}
    # Fitting needs several completions per prompt: fit on the whole file.
    fit_rows = [{**r, "completion_label": None} for r in raw]
    rules_art = fit(RULES_SPEC, work / "rules", fit_rows, "rules")
    results["rules"] = run_grader("rules", rules_art, "rules", rows, args, work)

    if not args.skip_hf:
        every = read_rows(data)
        chosen = set(picked)
        pool = [r for i, r in enumerate(every) if i not in chosen]
        hf_art = fit(bench_spec(pool[::7]), work / "hf", fit_rows, "labels")
        art = load_artifact(hf_art)
        corpus = [
            art.render_prompt(p, r["prompt"], r["completion"])
            for r in rows[:100]
            for p in art.response_type(r["response_type"]).propositions
        ]
        model = bench_model(work / "model", corpus, args.layers, args.hidden)
        print(f"hf grader: llama {args.layers} layers x {args.hidden} hidden, float32", flush=True)
        hf_rows = rows[:: max(1, len(rows) // args.hf_rows)][: args.hf_rows]
        results["hf"] = run_grader("hf", hf_art, f"hf:{model}", hf_rows, args, work)

    print()
    print(
        f"{'grader':6} {'clients':>7} {'requests':>8} {'answered':>8} {'req/s':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8}"
    )
    for name, res in results.items():
        for clients, lv in res["levels"].items():
            print(
                f"{name:6} {clients:>7} {lv['requests']:>8} {lv['answered']:>8} "
                f"{lv['rps']:>8.1f} {1000 * lv['p50']:>8.1f} {1000 * lv['p99']:>8.1f}"
            )
        print(f"{name:6} {'in-process specc.load':>25} {res['in_process']:>17.1f} rows/s")
        print(f"{name:6} {'offline specc grade':>25} {res['offline']:>17.1f} rows/s")
    kv = {}
    for name, res in results.items():
        for clients, lv in res["levels"].items():
            kv[f"{name}_c{clients}_rps"] = f"{lv['rps']:.1f}"
            kv[f"{name}_c{clients}_p99_ms"] = f"{1000 * lv['p99']:.0f}"
        c200 = res["levels"][200]
        kv[f"{name}_c200_answered"] = f"{c200['answered']}/{c200['requests']}"
        kv[f"{name}_in_process_rows_s"] = f"{res['in_process']:.1f}"
        kv[f"{name}_offline_grade_rows_s"] = f"{res['offline']:.1f}"
        kv[f"{name}_server_vs_offline"] = f"{c200['rps'] / res['offline']:.2f}"
        kv[f"{name}_max_diff"] = f"{max(lv['max_diff'] for lv in res['levels'].values()):.1e}"
        kv[f"{name}_exit"] = str(res["exit"])
    print(" ".join(f"{k}={v}" for k, v in kv.items()))
    answered = all(
        r["levels"][200]["answered"] == r["levels"][200]["requests"] for r in results.values()
    )
    fast = (
        "hf" not in results or results["hf"]["levels"][200]["rps"] >= 0.8 * results["hf"]["offline"]
    )
    return 0 if answered and fast else 1


if __name__ == "__main__":
    sys.exit(main())
