"""``specc eval --plot``: a reliability diagram and the tier confusion matrices, as PNG.

The first panel plots, for each of the 10 equal-width bins of P(yes), the share of
gold yes labels against the mean P(yes) (every proposition pooled, the marker's area
growing with the bin's count; each proposition is a thin grey line); a calibrated
grader follows the diagonal. The other panels are one confusion matrix per response
type: gold tier down, predicted tier across, counts in the cells, shaded by the
share of their row.

>>> plot_report(report, "eval.png")     # doctest: +SKIP
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from specc.errors import UsageError
from specc.evaluate.metrics import reliability
from specc.evaluate.report import EvalReport

__all__ = ["plot_report", "render_png"]


def render_png(report: EvalReport) -> bytes:
    """The figure as PNG bytes (the object-oriented API on the Agg canvas: no pyplot,
    no global backend switch)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = 1 + len(report.tiers)
    ncols = min(panels, 3)
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(5.0 * ncols, 4.4 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1)

    ax = axes[0]
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.5", linewidth=0.8)
    for samples in report.samples.values():
        p = np.array([s[1] for s in samples])
        y = np.array([s[2] for s in samples])
        bins = reliability(p, y)
        ax.plot([b.mean_p for b in bins], [b.mean_y for b in bins], color="0.8", linewidth=0.7)
    every = [s for samples in report.samples.values() for s in samples]
    bins = reliability(np.array([s[1] for s in every]), np.array([s[2] for s in every]))
    sizes = np.array([b.n for b in bins], dtype=np.float64)
    ax.plot([b.mean_p for b in bins], [b.mean_y for b in bins], color="#0072B2", linewidth=1.5)
    ax.scatter(
        [b.mean_p for b in bins],
        [b.mean_y for b in bins],
        s=20 + 180 * sizes / sizes.max(),
        color="#0072B2",
        zorder=3,
    )
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_aspect("equal")
    ax.set_xlabel("mean P(yes) in bin")
    ax.set_ylabel("share of gold labels that are yes")
    ax.set_title(
        f"reliability ({report.overall.n} pairs, ECE {report.overall.ece:.3f}, "
        f"acc {report.overall.accuracy:.3f})",
        fontsize="medium",
    )

    for ax, table in zip(axes[1:], report.tiers, strict=False):
        counts = np.array(table.matrix, dtype=np.float64)
        totals = counts.sum(axis=1, keepdims=True)
        shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        k = len(table.tiers)
        for i in range(k):
            for j in range(k):
                colour = "white" if shares[i, j] > 0.6 else "black"
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", color=colour)
        ax.set_xticks(range(k), table.tiers, rotation=35, ha="right", fontsize="small")
        ax.set_yticks(range(k), table.tiers, fontsize="small")
        ax.set_xlabel("predicted tier")
        ax.set_ylabel("gold tier")
        acc = table.correct / table.n if table.n else float("nan")
        ax.set_title(f"{table.response_type} ({table.n} rows, acc {acc:.3f})", fontsize="medium")
    for ax in axes[panels:]:
        ax.set_axis_off()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def plot_report(report: EvalReport, path: str | Path, *, replace: bool = False) -> None:
    """Write the figure to ``path`` (atomically; an existing file only with ``replace``)."""
    from specc.files import write_bytes

    if not replace and (Path(path).exists() or Path(path).is_symlink()):
        raise UsageError(f"{path}: exists; pass --force to replace it")
    write_bytes(path, render_png(report))
