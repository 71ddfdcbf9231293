"""Benchmark of reward fitting at scale on synthetic data.

    python benchmarks/bench_fit.py                          # 1,000,000 completions
    python benchmarks/bench_fit.py --completions 10000000   # the scale target
    python benchmarks/bench_fit.py --weight-decay auto      # the spec default (selection)
    python benchmarks/bench_fit.py --optimizer adamw        # the reference's 1000 AdamW steps
    python benchmarks/bench_fit.py --precision float64      # the float64 path

Data: prompts of 17 completions (the last prompt takes the remainder), 20 features
that look like grader probabilities (sigmoid of a per-tier effect, a per-prompt offset
and noise; some features favour better tiers, some worse, some are noise), 5 tiers
drawn uniformly, generated straight into a float32 array as ``specc fit`` reads a
features file. ``fit_s`` is the wall time of ``fit_response_type`` (checks, pairs,
split, weight-decay selection, optimisation and metrics), ``cpu_s`` its CPU time (on a
shared machine the wall time also counts waiting for a core). ``peak_rss_mb`` is the
process's peak resident set size (``resource.getrusage``), data generation included.
Nothing imports torch. The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from specc.fit import FitSettings, fit_response_type
from specc.fit.report import format_table

TIERS = ("ideal", "minimum_acceptable_style", "unacceptable", "illogical", "disallowed")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def synthetic(
    n: int, per_prompt: int, d: int, n_tiers: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (n, d) float32, prompt ids (n,) and tier ranks (n,)."""
    rng = np.random.default_rng(seed)
    group = np.arange(n, dtype=np.int64) // per_prompt
    n_prompts = int(group[-1]) + 1
    rank = rng.integers(0, n_tiers, n).astype(np.int8)
    # Per feature: how strongly each tier moves it (better tiers up or down, or not at all).
    direction = rng.choice([1.0, -1.0, 0.0], size=d, p=[0.45, 0.35, 0.2])
    strength = rng.uniform(0.3, 1.5, size=d)
    tier_effect = -np.linspace(-1.0, 1.0, n_tiers)[:, None] * direction * strength
    prompt_offset = rng.normal(0.0, 0.7, size=n_prompts).astype(np.float32)[group]
    x = np.empty((n, d), dtype=np.float32)
    for j in range(d):  # column by column: no (n, d) temporaries
        logits = rng.normal(0.0, 1.5, size=n).astype(np.float32)
        logits += tier_effect[rank, j].astype(np.float32)
        logits += prompt_offset
        np.negative(logits, out=logits)
        np.exp(logits, out=logits)
        logits += 1.0
        np.reciprocal(logits, out=logits)
        x[:, j] = logits
    return x, group, rank


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--completions", type=int, default=1_000_000)
    ap.add_argument("--per-prompt", type=int, default=17)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--tiers", type=int, default=5, choices=range(2, len(TIERS) + 1))
    ap.add_argument("--optimizer", choices=["lbfgs", "adamw"], default="lbfgs")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument(
        "--weight-decay",
        default="0.01",
        help="a number, or 'auto' (chosen by validation, the spec default) (default 0.01)",
    )
    ap.add_argument("--valid-fraction", type=float, default=0.1)
    ap.add_argument("--precision", choices=["float32", "float64"], default="float32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="fit this many times in the process; the figures are the first (cold) fit's, "
        "later fits show the warm time and must give bit-identical weights",
    )
    args = ap.parse_args(argv)

    t = time.perf_counter()
    x, group, rank = synthetic(
        args.completions, args.per_prompt, args.features, args.tiers, args.seed
    )
    gen_s = time.perf_counter() - t
    settings = FitSettings(
        optimizer=args.optimizer,
        steps=args.steps,
        lr=args.lr,
        weight_decay=None if args.weight_decay == "auto" else float(args.weight_decay),
        valid_fraction=args.valid_fraction,
        precision=args.precision,
    )
    names = [f"prop:p{j}" for j in range(args.features)]
    fits = []
    cpu0 = time.process_time()
    for _ in range(max(args.repeat, 1)):
        t = time.perf_counter()
        fitted = fit_response_type(
            x,
            group,
            rank,
            tier_names=TIERS[: args.tiers],
            feature_names=names,
            settings=settings,
            seed=args.seed,
            response_type="synthetic",
        )
        fits.append((time.perf_counter() - t, fitted))
    fit_s, result = fits[0]
    cpu_s = (time.process_time() - cpu0) / max(args.repeat, 1)
    rss = peak_rss_mb()
    valid = result.valid
    n_pairs = result.train.n_pairs + (valid.n_pairs if valid else 0)
    valid_acc = valid.pair_accuracy if valid else float("nan")
    rows = [
        ["completions", f"{result.n_rows:,}"],
        ["prompts", f"{result.n_prompts:,} ({result.n_valid_prompts:,} held out)"],
        ["features x tiers", f"{args.features} x {args.tiers}"],
        ["pairs (train / valid)", f"{result.train.n_pairs:,} / {valid.n_pairs if valid else 0:,}"],
        [
            "optimizer",
            f"{args.optimizer}: {result.iterations} iterations, {result.evaluations} evaluations",
        ],
        ["precision", settings.precision],
        [
            "weight decay",
            f"{result.weight_decay:g}"
            + (" (chosen by validation)" if result.selection else " (given)"),
        ],
        ["data generation s", f"{gen_s:.2f} (not timed)"],
        *[[f"  {k} s", f"{v:.3f}"] for k, v in result.timings.items() if k != "total"],
        ["fit s", f"{fit_s:.2f}"],
        ["fit CPU s (this process, all threads)", f"{cpu_s:.2f}"],
        *[[f"fit s, repeat {i}", f"{s:.2f}"] for i, (s, _) in enumerate(fits[1:], 1)],
        ["peak RSS MB", f"{rss:.0f}"],
        ["train pair accuracy", f"{result.train.pair_accuracy:.4f}"],
        ["valid pair accuracy", f"{valid_acc:.4f}"],
        ["valid error rate", f"{valid.error_rate:.4f}" if valid else "-"],
        ["train hinge loss", f"{result.train.hinge_loss:.5f}"],
    ]
    if len(fits) > 1:
        same = all(f.weights.tobytes() == result.weights.tobytes() for _, f in fits[1:])
        rows.append(["repeats bit-identical", "yes" if same else "NO"])
    print(format_table(["measure", "value"], rows))
    print(
        f"completions={result.n_rows} prompts={result.n_prompts} pairs={n_pairs} "
        f"fit_s={fit_s:.2f} cpu_s={cpu_s:.2f} peak_rss_mb={rss:.0f} valid_pair_acc={valid_acc:.4f} "
        f"torch_imported={'torch' in sys.modules}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
