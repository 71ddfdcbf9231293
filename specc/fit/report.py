"""The fit report: ``report.json``, ``report.png`` and a terminal summary table.

>>> paths = write_report(results, "out/fit", spec_hash=art.spec_hash)  # doctest: +SKIP
>>> print(summary_table(results))                                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from specc.files import Staging
from specc.fit.fitter import FitResult

FORMAT = "specc.fit-report/1"

# One colour per tier, best first (colour-blind-safe Okabe-Ito order, then tab10).
TIER_COLOURS: tuple[str, ...] = (
    "#009E73",
    "#56B4E9",
    "#E69F00",
    "#D55E00",
    "#CC79A7",
    "#0072B2",
    "#F0E442",
    "#000000",
)


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    png: Path | None


def report_dict(
    results: Sequence[FitResult],
    *,
    spec_hash: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything about the fits (metrics per response type, pair counts, settings,
    timings) as one JSON-ready dict. ``extra`` is merged in at the top level."""
    from specc import __version__

    out: dict[str, Any] = {
        "format": FORMAT,
        "specc_version": __version__,
        "spec_hash": spec_hash,
        "response_types": {r.response_type: r.to_json() for r in results},
        "total_s": round(sum(r.timings.get("total", 0.0) for r in results), 4),
    }
    if extra:
        out.update(extra)
    return out


def write_report(
    results: Sequence[FitResult],
    out_dir: str | Path,
    *,
    spec_hash: str | None = None,
    extra: Mapping[str, Any] | None = None,
    plot: bool = True,
    stage: Staging | None = None,
) -> ReportPaths:
    """Write ``report.json`` (and ``report.png`` unless ``plot`` is false) in ``out_dir``,
    atomically (:mod:`specc.files`); with ``stage``, when that staging commits."""
    root = Path(out_dir)
    json_path = root / "report.json"
    data = report_dict(results, spec_hash=spec_hash, extra=extra)
    own = stage is None
    stage = stage or Staging()
    try:
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
        stage.write_bytes(json_path, text.encode())
        png_path = None
        if plot:
            png_path = root / "report.png"
            plot_report(results, png_path, stage=stage)
    except BaseException:
        stage.discard()
        raise
    if own:
        stage.commit()
    return ReportPaths(json_path, png_path)


def plot_report(
    results: Sequence[FitResult], path: str | Path, *, stage: Staging | None = None
) -> None:
    """One subplot per response type: histograms of rewards centred on the prompt's
    mean ideal reward, one colour per tier (like Figure 4a of the RBR paper)."""
    # The object-oriented API with the Agg canvas: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = max(len(results), 1)
    ncols = min(k, 3)
    nrows = math.ceil(k / ncols)
    fig = Figure(figsize=(5.0 * ncols, 3.6 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1)
    for ax, result in zip(axes, results, strict=False):
        values = result.centred
        finite = values[np.isfinite(values)]
        if finite.shape[0] == 0:
            ax.text(0.5, 0.5, "no prompt has an ideal completion", ha="center", va="center")
        else:
            lo, hi = np.quantile(finite, [0.002, 0.998])
            if not hi > lo:
                lo, hi = lo - 0.5, hi + 0.5
            bins = np.linspace(lo, hi, 61)
            for rank, tier in enumerate(result.tier_names):
                v = values[(result.tier_rank == rank) & np.isfinite(values)]
                if v.shape[0] == 0:
                    continue
                colour = TIER_COLOURS[rank % len(TIER_COLOURS)]
                counts, edges = np.histogram(np.clip(v, lo, hi), bins=bins)
                ax.stairs(counts, edges, fill=True, alpha=0.35, color=colour)
                ax.stairs(counts, edges, color=colour, label=f"{tier} ({v.shape[0]})")
            ax.axvline(0.0, color="0.3", linewidth=0.8, linestyle="--")
            ax.legend(fontsize="small", frameon=False)
        acc = result.valid.pair_accuracy if result.valid else result.train.pair_accuracy
        which = "valid" if result.valid else "train"
        ax.set_title(f"{result.response_type or 'reward'}  ({which} pair acc {acc:.3f})")
        ax.set_xlabel("reward - mean ideal reward of the prompt")
        ax.set_ylabel("completions")
    for ax in axes[len(results) :]:
        ax.set_axis_off()
    with contextlib.ExitStack() as scope:
        staging = stage or scope.enter_context(Staging())
        fig.savefig(scope.enter_context(staging.open(path)), format="png", dpi=110)


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def summary_table(results: Sequence[FitResult], *, show_weights: bool = False) -> str:
    """A terminal summary: one row per response type, then warnings (and weights)."""
    headers = [
        "response type",
        "rows",
        "prompts",
        "train pairs",
        "valid pairs",
        "train acc",
        "valid acc",
        "valid err",
        "beyond margin",
        "loss",
        "time s",
    ]
    rows = []
    for r in results:
        v = r.valid
        rows.append(
            [
                r.response_type or "-",
                str(r.n_rows),
                str(r.n_prompts),
                str(r.train.n_pairs),
                str(v.n_pairs if v else 0),
                _fmt(r.train.pair_accuracy),
                _fmt(v.pair_accuracy if v else None),
                _fmt(v.error_rate if v else None),
                _fmt((v or r.train).beyond_margin),
                _fmt(r.train.hinge_loss, 4),
                _fmt(r.timings.get("total"), 2),
            ]
        )
    parts = [format_table(headers, rows)]
    notes = [f"warning: {w}" for r in results for w in r.warnings]
    notes += [
        f"warning: {r.response_type or 'reward'}: {s.message}"
        for r in results
        for s in r.sign_warnings
    ]
    if notes:
        parts.append("\n".join(notes))
    if show_weights:
        for r in results:
            weight_rows = [[name, f"{w:+.4f}"] for name, w in r.weight_dict().items()]
            if r.base_reward:
                weight_rows.append(["base_reward", "+1 (fixed)"])
            parts.append(
                f"{r.response_type or 'reward'}:\n"
                + format_table(["feature", "weight"], weight_rows)
            )
    return "\n\n".join(parts)
