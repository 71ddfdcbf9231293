"""The report picture: one row of three panels per response type.

1. **Reward by tier**: each tier's rewards centred on its prompt's mean ideal reward
   (the RBR paper's Figure 4a), as violins (a smoothed histogram, so overlapping
   tiers stay readable side by side) with the 25-75 % box, the 5-95 % whiskers and
   the median.
2. **Error rate** (the paper's Figure 4b): for pairs of an ideal completion and one
   of each worse tier, the share where the ideal one is not scored higher, for the
   fitted reward and, when the fit adds it, for the base reward alone.
3. **Weights**: one bar per feature, green where its sign is the one the spec's rules
   expect (``(+)`` or ``(-)`` after the name), red where it is not, grey where the
   rules do not say.

The header names the policy, its version, the spec hash and the data file. Drawing
uses matplotlib's Agg canvas directly (no pyplot, no global state), a fixed layout in
inches (no layout engine) and a few artists per panel, so a report draws in a
fraction of a second whatever the number of rows.

>>> fig = draw_report(results, header=("policy minimal 0.1.0", "spec 0123abcd"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from specc.fit.fitter import FitResult

# One colour per tier, best first (colour-blind-safe Okabe-Ito order).
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
AGREES, CONTRADICTS, NEUTRAL = "#009E73", "#D55E00", "#9a9a9a"
FITTED, BASE_ALONE = "#0072B2", "#bbbbbb"

#: Values a violin's density is estimated from, at most (a seeded sample beyond).
VIOLIN_SAMPLE = 200_000
#: Bins of a violin's histogram.
VIOLIN_BINS = 48

# Layout, in inches.
_WIDTH = 15.0
_HEADER = 0.95
_BOTTOM = 0.35
_ROW_GAP = 0.85
_LEFT = 0.75
_DIST_W = 5.6
_ERR_GAP = 0.75
_ERR_W = 2.9
_LABEL_W = 2.35
_WEIGHT_W = 2.4


def _short(name: str, width: int = 30) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _row_height(result: FitResult) -> float:
    return max(3.0, 0.17 * len(result.feature_names) + 0.9)


def _violin(values: npt.NDArray[np.float64], lo: float, hi: float) -> tuple[Any, Any]:
    """A smoothed histogram of ``values`` on [lo, hi]: (centres, density scaled to a
    maximum of 1)."""
    if values.shape[0] > VIOLIN_SAMPLE:
        rng = np.random.default_rng(0)
        values = values[rng.choice(values.shape[0], VIOLIN_SAMPLE, replace=False)]
    counts, edges = np.histogram(np.clip(values, lo, hi), bins=VIOLIN_BINS, range=(lo, hi))
    kernel = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    density = np.convolve(counts.astype(np.float64), kernel, mode="same")
    top = density.max()
    centres = (edges[:-1] + edges[1:]) / 2
    return centres, density / top if top > 0 else density


def _distributions(ax: Axes, result: FitResult) -> None:
    values = result.centred
    finite = np.isfinite(values)
    ax.set_xticks(range(len(result.tier_names)))
    ax.set_xticklabels(
        [
            f"{tier}\n({int(np.count_nonzero(finite & (result.tier_rank == t))):,})"
            for t, tier in enumerate(result.tier_names)
        ],
        fontsize=8,
    )
    if not finite.any():
        ax.text(0.5, 0.5, "no prompt has an ideal completion", ha="center", va="center")
        return
    lo, hi = (float(v) for v in np.quantile(values[finite], [0.005, 0.995]))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.04 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    whiskers, boxes, medians = [], [], []
    for t, _tier in enumerate(result.tier_names):
        v = values[finite & (result.tier_rank == t)]
        if v.shape[0] == 0:
            continue
        colour = TIER_COLOURS[t % len(TIER_COLOURS)]
        centres, density = _violin(v, lo, hi)
        ax.fill_betweenx(
            centres, t - 0.42 * density, t + 0.42 * density, color=colour, alpha=0.45, lw=0
        )
        q05, q25, q50, q75, q95 = np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95])
        whiskers.append((t, q05, q95))
        boxes.append((t, q25, q75))
        medians.append((t, q50))
    if whiskers:
        w = np.array(whiskers)
        b = np.array(boxes)
        m = np.array(medians)
        ax.vlines(w[:, 0], w[:, 1], w[:, 2], color="0.15", lw=0.9)
        ax.vlines(b[:, 0], b[:, 1], b[:, 2], color="0.15", lw=4.5)
        ax.scatter(m[:, 0], m[:, 1], s=14, color="white", zorder=3, edgecolors="0.15", lw=0.6)
    ax.axhline(0.0, color="0.35", lw=0.8, ls="--")
    ax.set_ylim(lo, hi)
    ax.set_xlim(-0.6, len(result.tier_names) - 0.4)
    ax.set_ylabel("reward − prompt's mean ideal reward", fontsize=8)
    which = "valid" if result.valid else "train"
    acc = (result.valid or result.train).pair_accuracy
    ax.set_title(
        f"{result.response_type or 'reward'}: reward by tier "
        f"({which} pair accuracy {acc:.4f}, train {result.train.pair_accuracy:.4f})",
        fontsize=9.5,
        loc="left",
    )


def _error_rates(ax: Axes, result: FitResult) -> None:
    metrics = result.valid or result.train
    base = result.base_valid if result.valid else result.base_train
    tiers = result.tier_names[1:]
    x = np.arange(len(tiers))
    fitted = np.array(metrics.error_rate_by_tier()[1:], dtype=np.float64)
    series: list[tuple[str, npt.NDArray[np.float64], str]] = []
    if base is not None:
        series.append(("base reward alone", np.array(base.error_rate_by_tier()[1:]), BASE_ALONE))
    series.append(("fitted reward", fitted, FITTED))
    width = 0.8 / len(series)
    top = 0.0
    for k, (name, rates, colour) in enumerate(series):
        pos = x - 0.4 + width * (k + 0.5)
        shown = np.nan_to_num(rates, nan=0.0)
        ax.bar(pos, shown, width=width * 0.92, color=colour, label=name)
        for px, rate in zip(pos.tolist(), rates.tolist(), strict=True):
            label = "–" if not np.isfinite(rate) else f"{rate:.1%}"
            ax.text(px, float(np.nan_to_num(rate)), label, ha="center", va="bottom", fontsize=7)
        top = max(top, float(np.nanmax(rates, initial=0.0)))
    ax.set_xticks(x)
    ax.set_xticklabels([_short(t, 14) for t in tiers], fontsize=8)
    ax.set_ylim(0, max(top * 1.25, 0.01))
    ax.yaxis.set_major_formatter(_percent())
    ax.tick_params(axis="y", labelsize=7.5)
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    which = "valid" if result.valid else "train"
    total = "–" if not np.isfinite(metrics.error_rate) else f"{metrics.error_rate:.2%}"
    ax.set_title(
        f"error rate vs {result.tier_names[0]} ({which}; all: {total})", fontsize=9.5, loc="left"
    )


def _percent() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


def _weights(ax: Axes, result: FitResult) -> None:
    chart = result.weights_chart()
    y = np.arange(len(chart))[::-1]
    weights = np.array([c["weight"] for c in chart], dtype=np.float64)
    colours = [
        NEUTRAL if c["agrees"] is None else AGREES if c["agrees"] else CONTRADICTS for c in chart
    ]
    ax.barh(y, weights, color=colours, height=0.72)
    ax.axvline(0.0, color="0.3", lw=0.8)
    mark = {"good": " (+)", "bad": " (−)", None: ""}
    ax.set_yticks(y)
    ax.set_yticklabels([_short(c["feature"]) + mark[c["expected"]] for c in chart], fontsize=7.5)
    ax.set_ylim(-0.7, len(chart) - 0.3)
    span = float(np.abs(weights).max(initial=0.0)) or 1.0
    ax.set_xlim(-1.12 * span, 1.12 * span)
    ax.tick_params(axis="x", labelsize=7.5)
    wd = f"weight decay {result.weight_decay:g}" + (" (chosen)" if result.selection else "")
    ax.set_title(f"weights ({wd})", fontsize=9.5, loc="left")


def draw_report(results: Sequence[FitResult], header: Sequence[str] = ()) -> Figure:
    """The report figure (see the module docstring); ``header`` lines go on top."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    heights = [_row_height(r) for r in results] or [1.0]
    total = _HEADER + sum(heights) + _ROW_GAP * len(heights) + _BOTTOM
    fig = Figure(figsize=(_WIDTH, total))
    FigureCanvasAgg(fig)
    lines = list(header) or ["specc fit report"]
    fig.text(0.5 / _WIDTH, 1 - 0.3 / total, lines[0], fontsize=12, weight="bold", va="center")
    if len(lines) > 1:
        fig.text(0.5 / _WIDTH, 1 - 0.62 / total, "   ".join(lines[1:]), fontsize=8.5, va="center")
    fig.legend(
        handles=[
            Patch(color=AGREES, label="sign as the rules expect"),
            Patch(color=CONTRADICTS, label="sign against the rules"),
            Patch(color=NEUTRAL, label="no expectation"),
        ],
        loc="upper right",
        bbox_to_anchor=(1 - 0.2 / _WIDTH, 1 - 0.12 / total),
        fontsize=7.5,
        frameon=False,
        ncol=3,
    )
    if not results:
        fig.text(0.5, 0.5, "no response type was fitted", ha="center")
        return fig
    top = total - _HEADER
    for result, height in zip(results, heights, strict=True):
        top -= _ROW_GAP
        bottom = top - height
        box = (bottom / total, height / total)
        left = _LEFT
        dist = fig.add_axes((left / _WIDTH, box[0], _DIST_W / _WIDTH, box[1]))
        left += _DIST_W + _ERR_GAP
        err = fig.add_axes((left / _WIDTH, box[0], _ERR_W / _WIDTH, box[1]))
        left += _ERR_W + _LABEL_W
        wts = fig.add_axes((left / _WIDTH, box[0], _WEIGHT_W / _WIDTH, box[1]))
        _distributions(dist, result)
        _error_rates(err, result)
        _weights(wts, result)
        top = bottom
    return fig
