"""Benchmark the policy author's loop: `specc check` and `specc compile` wall time
(interpreter start-up included), and the tier check alone at 20 propositions.

Run: ``python benchmarks/bench_check.py [--repeat N]``. Prints a table, then one
line of key=value figures, e.g.
``check_wall_s=0.21 compile_wall_s=0.34 exhaustive_20_props_s=0.0014``.
Target: check_wall_s <= 0.3 on a 2-core machine.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def wall(cmd: list[str], repeat: int) -> tuple[float, float]:
    """Best and median wall time of a command, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[0], times[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    from bench_logic import synthetic_spec

    from specc.logic.checks import check_response_types

    specc = [sys.executable, "-m", "specc.cli"]
    spec = "policies/safety.rbr"
    wall([*specc, "check", spec], 1)  # warm the grammar cache and the page cache
    check_best, check_med = wall([*specc, "check", spec], args.repeat)
    out = Path(tempfile.mkdtemp())
    try:
        compile_best, compile_med = wall(
            [*specc, "compile", spec, "-o", str(out / "art")], args.repeat
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    python_best, _ = wall([sys.executable, "-c", "pass"], args.repeat)

    synthetic = synthetic_spec(20)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        diags = check_response_types(synthetic)
        times.append(time.perf_counter() - t0)
    assert not [d for d in diags if d.severity == "error"], diags
    exhaustive = min(times)

    rows = [
        ("python -c pass (start-up floor)", python_best, None),
        (f"specc check {spec}", check_best, check_med),
        (f"specc compile {spec}", compile_best, compile_med),
        ("tier check, 20 propositions (in process)", exhaustive, None),
    ]
    print(f"{'what':<48} {'best s':>8} {'median s':>9}")
    for name, best, med in rows:
        print(f"{name:<48} {best:8.4f} {'' if med is None else f'{med:9.4f}'}")
    print(
        f"check_wall_s={check_best:.3f} compile_wall_s={compile_best:.3f} "
        f"exhaustive_20_props_s={exhaustive:.4f}"
    )


if __name__ == "__main__":
    main()
