"""Benchmark diagnostics at scale: a 5 MB spec with 12,000 unused propositions
(12,000 W001 warnings), as in issue 7 (194 s before rendering became linear).

Run: ``python benchmarks/bench_diagnostics.py [--props N] [--size-mb M]``. Prints a
table (load = read + parse, the checker's passes, rendering every diagnostic as
text, rendering the default 50, and `specc check` end to end), then one line of
key=value figures, e.g.
``diag_props=12000 diag_mb=5.0 diag_check_passes_s=0.40 diag_render_all_s=0.10 ...``.
Target: every figure in seconds, none growing with diagnostics x file size.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def big_spec(props: int, size_mb: float) -> str:
    """``props`` propositions no rule uses, padded with descriptions to ``size_mb``."""
    pad = max(0, int(size_mb * 1e6 / props) - 70)
    text = "x" * pad
    lines = ['policy "big" version "1"']
    lines += [
        f'proposition p{i} {{ description = "{text}" match keywords ["w{i}"] }}'
        for i in range(props)
    ]
    return "\n".join(lines) + "\n"


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--props", type=int, default=12_000)
    parser.add_argument("--size-mb", type=float, default=5.0)
    args = parser.parse_args()

    from specc.checker import _order, check_spec
    from specc.errors import render_all
    from specc.loader import load_spec

    work = Path(tempfile.mkdtemp(prefix="specc-bench-diag-"))
    path = work / "big.rbr"
    path.write_text(big_spec(args.props, args.size_mb), encoding="utf-8")
    mb = path.stat().st_size / 1e6

    result, load_s = timed(lambda: load_spec(path))
    assert result.spec is not None
    diags, passes_s = timed(lambda: sorted(check_spec(result.spec), key=_order))
    assert len(diags) >= args.props, len(diags)
    text, render_all_s = timed(lambda: render_all(diags, result.sources, limit=0))
    _, render_capped_s = timed(lambda: render_all(diags, result.sources))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "specc", "check", str(path)], capture_output=True, text=True
    )
    cli_s = time.perf_counter() - t0
    assert proc.returncode == 0 and "more: " in proc.stderr, proc.stderr[-500:]

    rows = [
        (f"load (read + parse), {mb:.1f} MB", load_s),
        (f"checker passes, {len(diags):,} diagnostics", passes_s),
        (f"render all {len(diags):,} as text ({len(text) / 1e6:.1f} MB)", render_all_s),
        ("render the default 50 + summary", render_capped_s),
        ("specc check (subprocess, end to end)", cli_s),
    ]
    print(f"{'what':<52} {'s':>8}")
    for name, secs in rows:
        print(f"{name:<52} {secs:8.3f}")
    print(
        f"diag_props={args.props} diag_mb={mb:.1f} diag_load_s={load_s:.2f} "
        f"diag_check_passes_s={passes_s:.2f} diag_render_all_s={render_all_s:.2f} "
        f"diag_render_capped_s={render_capped_s:.3f} diag_cli_check_s={cli_s:.2f}"
    )


if __name__ == "__main__":
    main()
