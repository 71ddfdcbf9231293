"""Benchmark the policy author's loop: `specc check` against the bare import of its
libraries, `specc compile`, what a check spends its time on, and the tier check at
20 propositions.

Run: ``python benchmarks/bench_check.py [--repeat N]``. The whole-process timings are
interleaved (bare import, check, bare import, check, ...) so that a busy machine
slows both alike; each figure is the median of ``N``. The target is
``check_vs_bare_import <= 1.5``: `specc check policies/safety.rbr` as a whole process
against ``python -c "import pydantic, lark, jinja2"``. Then a breakdown, in one fresh
process, of where a check's time goes beyond those imports. Prints tables, then one
line of key=value figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SPEC = "policies/safety.rbr"
BARE = [sys.executable, "-c", "import pydantic, lark, jinja2"]
#: As installed code runs: with bytecode caches (an environment that disables them
#: would charge specc's modules, and not the libraries', for compiling each run).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
CHECK = [sys.executable, "-m", "specc", "check", SPEC]

# Run in a fresh interpreter: the time of each stage of a check, in order.
_STAGES = r"""
import json, sys, time
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import pydantic, lark, jinja2
mark("import pydantic, lark, jinja2 (the bare import)")
from pydantic import BaseModel
mark("pydantic's model machinery (first BaseModel use)")
import specc.ir
mark("specc.ir: the IR classes")
import specc.cli, specc.checker, specc.loader, specc.parser
mark("the other specc modules")
specc.parser._parser()
mark("parser tables")
from specc.loader import load_spec
result = load_spec(sys.argv[1])
mark("read and parse the spec and its imports")
from specc.checker import PASSES, _Names
names = _Names(result.spec)
for check in PASSES:
    check(result.spec, names)
    mark(f"check pass {check.__name__}")
from specc.checker import check_file
from specc.errors import render_all
report = check_file(sys.argv[1])
render_all(report.diagnostics, report.load.sources)
mark("a second check_file and rendering (all warm)")
print(json.dumps([(b[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])]))
"""


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT, env=ENV)
    return time.perf_counter() - t0


def interleaved(cmds: dict[str, list[str]], repeat: int) -> dict[str, list[float]]:
    """Wall times of each command, run in turn ``repeat`` times (after one warm-up)."""
    for cmd in cmds.values():
        run(cmd)  # warm the page cache and the bytecode caches
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(repeat):
        for name, cmd in cmds.items():
            times[name].append(run(cmd))
    return times


def stages(repeat: int) -> list[tuple[str, float]]:
    """Median time of each stage of a check, over ``repeat`` fresh processes."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _STAGES, SPEC],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=ENV,
        ).stdout
        runs.append(json.loads(out))
    return [(name, statistics.median(r[i][1] for r in runs)) for i, (name, _) in enumerate(runs[0])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs per figure (default 10)")
    args = parser.parse_args()

    from bench_logic import synthetic_spec

    from specc.logic.checks import check_response_types

    out = Path(tempfile.mkdtemp())
    try:
        times = interleaved(
            {
                "python -c pass (start-up floor)": [sys.executable, "-c", "pass"],
                "python -c 'import pydantic, lark, jinja2'": BARE,
                f"specc check {SPEC}": CHECK,
                f"specc compile {SPEC}": [
                    *CHECK[:3],
                    "compile",
                    SPEC,
                    "-o",
                    str(out / "art"),
                ],
            },
            args.repeat,
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    medians = {name: statistics.median(t) for name, t in times.items()}
    bare = medians["python -c 'import pydantic, lark, jinja2'"]
    check = medians[f"specc check {SPEC}"]
    compile_s = medians[f"specc compile {SPEC}"]

    synthetic = synthetic_spec(20)
    tier_times = []
    for _ in range(5):
        t0 = time.perf_counter()
        diags = check_response_types(synthetic)
        tier_times.append(time.perf_counter() - t0)
    assert not [d for d in diags if d.severity == "error"], diags
    exhaustive = min(tier_times)

    print(f"{'whole process (interleaved)':<52} {'median s':>9} {'min s':>8}")
    for name, t in times.items():
        print(f"{name:<52} {statistics.median(t):9.4f} {min(t):8.4f}")
    print(f"{'tier check, 20 propositions (in process)':<52} {exhaustive:9.4f}")
    print()
    parts = stages(max(3, args.repeat // 2))
    print(f"{'a check, stage by stage (fresh process, median)':<60} {'s':>8}")
    for name, t in parts:
        print(f"{name:<60} {t:8.4f}")
    print()
    print(
        f"check_wall_s={check:.3f} bare_import_s={bare:.3f} "
        f"check_vs_bare_import={check / bare:.2f} compile_wall_s={compile_s:.3f} "
        f"exhaustive_20_props_s={exhaustive:.4f}"
    )


if __name__ == "__main__":
    main()
