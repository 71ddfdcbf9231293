"""specc's default fit side by side with the RBR reference fitter.

    python benchmarks/bench_reference.py                          # specc only
    python benchmarks/bench_reference.py --reference ~/safety-rbr-code-and-data

The reference is OpenAI's ``rbr_weight_fitter.py`` (github.com/openai/safety-rbr-code-
and-data); it runs only when ``--reference`` points at a checkout of that repository
(it is never vendored), with its own setting: AdamW, 1000 steps, lr 1e-2, weight
decay 0.05, all pairs (``train_data_frac=1.0``).

Data of the RBR paper's shape, one response type: prompts of 13-21 completions (17 on
average), three ordered labels (ideal > less_good > unacceptable), 20 features in [0, 1]
(17 proposition probabilities, some marking better tiers, some worse, some noise, and
3 tier-class probabilities), and a base reward drawn from N(0, 1).

1. **Held-out accuracy.** 20% of the prompts are held out; every fitter sees the same
   other 80% and one shared evaluator scores held-out same-prompt pairs with the total
   reward ``base_reward + w . features`` (share of pairs with the better tier strictly
   higher). specc runs as ``specc fit --valid-fraction 0`` (all training prompts; a spec
   that names neither optimiser nor weight decay), and its AdamW port of the reference
   setting runs in process as a cross-check.
2. **Whole process.** ``specc fit`` on all rows (weights, report.json and report.png)
   against the reference fitter reading the same file and fitting it, each a fresh
   process, interleaved.

Prints tables, then one key=value line.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from specc.fit import FitSettings, fit_response_type, make_pairs  # noqa: E402
from specc.fit.report import format_table  # noqa: E402

TIERS = ("ideal", "less_good", "unacceptable")
N_PROPS = 17
#: As installed code runs: with bytecode caches.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

SPEC = (
    'policy "paper-shape" version "1.0.0"\n\n'
    + "".join(f'proposition p{j} {{ match regex "\\\\bp{j}\\\\b" }}\n' for j in range(N_PROPS))
    + """
response_type refuse "Refuse" {
  ideal when p0 and not p2
  less_good when not p0 and not p2
  unacceptable otherwise
  reward { base_reward = true extra = [EXTRA] }
}
""".replace("EXTRA", ", ".join(f"p{j}" for j in range(N_PROPS) if j not in (0, 2)))
)

# The reference fitter, driven as a user would: read the JSONL, build its examples,
# fit, write the weights. Run as a script so that its start-up is measured too.
DRIVER = """\
import json, sys
sys.path.insert(0, sys.argv[1])
from rbr_weight_fitter import RBR_ExampleWithMetadata, RBRWeightFitter
rows = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8")]
names = [f"f{j}" for j in range(len(rows[0]["features"]))]
examples = [
    RBR_ExampleWithMetadata(
        convo_prompt=r["prompt_id"], convo_completion=r["id"],
        response_type=r["response_type"], completion_label=r["completion_label"],
        base_reward=r["base_reward"], features=dict(zip(names, r["features"])),
    )
    for r in rows
]
orderings = {"ideal": ["less_good", "unacceptable"], "less_good": ["unacceptable"],
             "unacceptable": []}
fitter = RBRWeightFitter(feature_names=names, examples=examples, orderings=orderings,
                         wd=0.05, train_data_frac=1.0)
weights, _ = fitter.fit_weights()
json.dump([float(weights[n]) for n in names], open(sys.argv[3], "w"))
"""


def paper_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features (n, 20) float32, prompt codes, tier ranks and a N(0, 1) base reward."""
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(min(int(rng.integers(13, 22)), n - sum(sizes)))
    group = np.repeat(np.arange(len(sizes)), sizes)
    rank = rng.choice(3, size=n, p=[0.35, 0.35, 0.30])
    direction = rng.choice([1.0, -1.0, 0.0], size=N_PROPS, p=[0.4, 0.4, 0.2])
    strength = rng.uniform(0.5, 2.0, size=N_PROPS)
    effect = np.array([1.0, 0.0, -1.0])[rank]
    x = np.empty((n, N_PROPS + 3), np.float32)
    for j in range(N_PROPS):
        offset = rng.normal(0.0, 1.0, size=len(sizes))[group]
        logit = 2.0 * strength[j] * direction[j] * effect + offset + rng.normal(0, 1.5, n)
        x[:, j] = 1 / (1 + np.exp(-logit))
    logits = 2.0 * np.eye(3)[rank] + rng.normal(0, 1.0, (n, 3))
    soft = np.exp(logits - logits.max(1, keepdims=True))
    x[:, N_PROPS:] = soft / soft.sum(1, keepdims=True)
    return x, group, rank, rng.normal(size=n)


def write_features(
    path: Path,
    x: np.ndarray,
    group: np.ndarray,
    rank: np.ndarray,
    base: np.ndarray,
    rows: np.ndarray,
) -> Path:
    """A features file as `specc grade` writes it, for the rows ``rows``."""
    layout = ["p0", "p2", *(f"p{j}" for j in range(N_PROPS) if j not in (0, 2))]
    with path.open("w", encoding="utf-8") as f:
        for i in rows.tolist():
            values = [round(float(v), 6) for v in x[i]]
            f.write(
                json.dumps(
                    {
                        "id": f"row-{i}",
                        "prompt_id": f"prompt-{group[i]}",
                        "response_type": "refuse",
                        "completion_label": TIERS[rank[i]],
                        "base_reward": round(float(base[i]), 6),
                        "propositions": dict(zip(layout, values[:N_PROPS], strict=True)),
                        "derived": {},
                        "classes": dict(zip(TIERS, values[N_PROPS:], strict=True)),
                        "features": values,
                        "sources": dict.fromkeys(layout, "rules"),
                        "costs": {},
                    }
                )
                + "\n"
            )
    return path


def held_out_accuracy(
    weights: np.ndarray, x: np.ndarray, group: np.ndarray, rank: np.ndarray, base: np.ndarray
) -> float:
    """The shared evaluator: same-prompt pairs ordered by base + w . x."""
    pairs = make_pairs(group, rank)
    total = base + x.astype(np.float64) @ np.asarray(weights, dtype=np.float64)
    return float(np.mean(total[pairs.better] > total[pairs.worse]))


def run(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=ENV)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def specc_fit_weights(art: Path, features: Path, report: Path) -> np.ndarray:
    run(
        [
            sys.executable,
            "-m",
            "specc",
            "fit",
            str(art),
            str(features),
            "--valid-fraction",
            "0",
            "--report",
            str(report),
        ],
        ROOT,
    )
    from specc.weights import load_weights

    return load_weights(art).get("refuse").weights


def whole_process(args: argparse.Namespace, tmp: Path, driver: Path) -> str:
    """Time specc fit and the reference fitter as whole processes on all rows,
    interleaved; print the table and return the key=value figures."""
    x, group, rank, base = paper_rows(args.rows, 0)
    full = write_features(tmp / "all.jsonl", x, group, rank, base, np.arange(args.rows))
    commands: dict[str, tuple[list[str], Path]] = {
        "specc fit (weights, report.json, report.png)": (
            [
                sys.executable,
                "-m",
                "specc",
                "fit",
                str(tmp / "art"),
                str(full),
                "--report",
                str(tmp / "report-all"),
            ],
            ROOT,
        )
    }
    if args.reference is not None:
        commands["reference fitter (read, fit, write)"] = (
            [
                sys.executable,
                str(driver),
                str(args.reference),
                str(full),
                str(tmp / "ref-all.json"),
            ],
            tmp,
        )
    for cmd, cwd in commands.values():
        run(cmd, cwd)  # warm the caches
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, (cmd, cwd) in commands.items():
            times[name].append(run(cmd, cwd))
    report = json.loads((tmp / "report-all" / "report.json").read_text())
    print(f"whole process, {args.rows} completions (interleaved, {args.repeat} runs)")
    print(
        format_table(
            ["command", "median s", "min s"],
            [[n, f"{statistics.median(t):.2f}", f"{min(t):.2f}"] for n, t in times.items()],
        )
    )
    stages = report["timings_s"]
    print(
        "specc fit's own timings_s (last run): " + ", ".join(f"{k} {v}" for k, v in stages.items())
    )
    specc_s = statistics.median(times["specc fit (weights, report.json, report.png)"])
    line = f" specc_fit_s={specc_s:.2f}"
    if args.reference is not None:
        ref_s = statistics.median(times["reference fitter (read, fit, write)"])
        line += f" reference_s={ref_s:.2f} speedup={ref_s / specc_s:.1f}"
    return line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="a checkout of openai/safety-rbr-code-and-data (default: none, "
        "the reference columns are skipped)",
    )
    ap.add_argument("--rows", type=int, default=5000, help="completions (default 5000)")
    ap.add_argument("--seeds", type=int, default=3, help="data sets compared (default 3)")
    ap.add_argument(
        "--no-timing",
        action="store_true",
        help="compare accuracy only, skip the whole-process timings (default: time them)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="whole-process runs of each command, interleaved (default 3)",
    )
    args = ap.parse_args(argv)
    if args.reference is not None and not (args.reference / "rbr_weight_fitter.py").is_file():
        ap.error(f"{args.reference}: no rbr_weight_fitter.py there")

    tmp = Path(tempfile.mkdtemp(prefix="specc-bench-ref-"))
    try:
        (tmp / "paper.rbr").write_text(SPEC, encoding="utf-8")
        run(
            [
                sys.executable,
                "-m",
                "specc",
                "compile",
                str(tmp / "paper.rbr"),
                "-o",
                str(tmp / "art"),
            ],
            ROOT,
        )
        driver = tmp / "reference_driver.py"
        driver.write_text(DRIVER, encoding="utf-8")

        # 1. held-out accuracy
        acc_rows: list[list[str]] = []
        gains: list[float] = []
        specc_accs, ref_accs = [], []
        for seed in range(args.seeds):
            x, group, rank, base = paper_rows(args.rows, seed)
            rng = np.random.default_rng(1000 + seed)
            prompts = int(group.max()) + 1
            held = np.isin(group, rng.permutation(prompts)[: round(0.2 * prompts)])
            train_rows, test_rows = np.flatnonzero(~held), np.flatnonzero(held)
            train_file = write_features(
                tmp / f"train-{seed}.jsonl", x, group, rank, base, train_rows
            )

            test = (x[test_rows], group[test_rows], rank[test_rows], base[test_rows])

            def score(w: np.ndarray, test: tuple[np.ndarray, ...] = test) -> float:
                return held_out_accuracy(w, *test)

            w_specc = specc_fit_weights(tmp / "art", train_file, tmp / f"report-{seed}")
            train = (x[train_rows], group[train_rows], rank[train_rows], base[train_rows])

            def fit_in_process(
                settings: FitSettings, train: tuple[np.ndarray, ...] = train
            ) -> np.ndarray:
                tx, tg, tr, tb = train
                return fit_response_type(
                    tx,
                    tg,
                    tr,
                    base_reward=tb,
                    tier_names=TIERS,
                    feature_names=[f"f{j}" for j in range(tx.shape[1])],
                    settings=settings,
                ).weights

            port = fit_in_process(
                FitSettings(
                    optimizer="adamw",
                    steps=1000,
                    lr=1e-2,
                    weight_decay=0.05,
                    base_reward=True,
                    valid_fraction=0.0,
                    precision="float64",
                )
            )
            old_default = fit_in_process(
                FitSettings(weight_decay=0.01, base_reward=True, valid_fraction=0.0)
            )
            report = json.loads((tmp / f"report-{seed}" / "report.json").read_text())
            chosen = report["response_types"]["refuse"]["weight_decay"]
            row = [
                str(seed),
                f"{score(w_specc):.4f}",
                f"{chosen:g}",
                f"{float(np.linalg.norm(w_specc)):.2f}",
                f"{score(port):.4f}",
                f"{score(old_default):.4f}",
            ]
            specc_accs.append(score(w_specc))
            if args.reference is not None:
                out = tmp / f"ref-{seed}.json"
                run(
                    [sys.executable, str(driver), str(args.reference), str(train_file), str(out)],
                    tmp,
                )
                w_ref = np.array(json.loads(out.read_text()))
                ref_accs.append(score(w_ref))
                gains.append(score(w_specc) - score(w_ref))
                row += [
                    f"{score(w_ref):.4f}",
                    f"{float(np.linalg.norm(w_ref)):.2f}",
                    f"{float(np.abs(port - w_ref).max()):.1e}",
                ]
            acc_rows.append(row)
        headers = [
            "seed",
            "specc default",
            "wd chosen",
            "|w|",
            "specc adamw port",
            "specc old default (wd 0.01)",
        ]
        if args.reference is not None:
            headers += ["reference", "|w| ref", "max |port - ref|"]
        print(f"held-out pair accuracy, {args.rows} completions, 20% of prompts held out")
        print(format_table(headers, acc_rows))
        print()

        line = f"rows={args.rows} specc_acc_mean={np.mean(specc_accs):.4f}"
        if args.reference is not None:
            line += (
                f" reference_acc_mean={np.mean(ref_accs):.4f}"
                f" specc_minus_reference_min={min(gains):+.4f}"
            )
        if not args.no_timing:
            line += whole_process(args, tmp, driver)
        print(line)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
