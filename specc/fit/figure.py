"""The report picture: one row of three panels per response type.

1. **Reward by tier**: each tier's rewards centred on its prompt's mean ideal reward
   (the RBR paper's Figure 4a), as violins (a smoothed histogram, so overlapping
   tiers stay readable side by side) with the 25-75 % box, the 5-95 % whiskers and
   the median.
2. **Error rate** (the paper's Figure 4b): for pairs of an ideal completion and one
   of each worse tier, the share where the ideal one is not scored higher, for the
   fitted reward and, when the fit adds it, for the base reward alone.
3. **Weights**: one bar per feature, green where its sign is the one the spec's rules
   expect (``(+)`` or ``(-)`` after the name), orange-red where it is not, grey where
   the rules do not say.

The header names the policy, its version, the spec hash and the data file.

Drawn with Pillow (``PIL.ImageDraw``, its built-in FreeType font), not matplotlib:
the picture is a fixed layout of bars, polygons, lines and text, and importing
matplotlib alone took longer than reading, fitting and writing everything else of a
5,000-row ``specc fit`` (docs/fitting.md). A violin's density comes from a histogram
of at most :data:`VIOLIN_SAMPLE` values, so drawing does not grow with the data.

>>> image = draw_report(results, header=("policy minimal 0.1.0", "spec 0123abcd"))  # doctest: +SKIP
>>> image.save("report.png")                                                      # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

    from specc.fit.fitter import FitResult

RGB = tuple[int, int, int]

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
FITTED, BASE_ALONE = "#0072B2", "#b8b8b8"
INK, GRID, MUTED = "#222222", "#e6e6e6", "#555555"

#: Values a violin's density is estimated from, at most (a seeded sample beyond).
VIOLIN_SAMPLE = 200_000
#: Bins of a violin's histogram.
VIOLIN_BINS = 48

# Layout, in pixels.
WIDTH = 1500
HEADER = 86
ROW_GAP = 62
BOTTOM = 24
DIST = (78, 640)  # x range of the reward panel's plot area
ERRORS = (710, 1010)
WEIGHTS = (1235, 1478)  # feature names go left of it


def _rgb(colour: str) -> RGB:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def _light(colour: str, amount: float = 0.5) -> RGB:
    """``colour`` mixed with white."""
    r, g, b = _rgb(colour)
    return (
        round(r + (255 - r) * amount),
        round(g + (255 - g) * amount),
        round(b + (255 - b) * amount),
    )


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes: its bitmap font
        return ImageFont.load_default()


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.

    >>> nice_ticks(-9.7, 2.3)
    [-8.0, -4.0, 0.0]
    """
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(target, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + 1e-9 * step:
        ticks.append(round(value / step) * step + 0.0)
        value += step
    return ticks


def _tick_label(value: float, percent: bool = False, step: float = 1.0) -> str:
    if percent:
        decimals = max(0, -math.floor(math.log10(step * 100) + 1e-9)) if step > 0 else 0
        return f"{value:.{decimals}%}"
    text = f"{value:.6g}"
    return "0" if text in ("-0", "0") else text


@dataclass
class Canvas:
    """An RGB image with the few drawing operations the report needs."""

    image: Image.Image
    draw: ImageDraw.ImageDraw

    def text(
        self,
        xy: tuple[float, float],
        text: str,
        size: int = 12,
        fill: str | RGB = INK,
        anchor: str = "la",
    ) -> None:
        self.draw.text(xy, text, fill=fill, font=_font(size), anchor=anchor)

    def text_width(self, text: str, size: int = 12) -> float:
        return float(self.draw.textlength(text, font=_font(size)))

    def fitted(self, text: str, width: float, size: int = 11) -> str:
        """``text``, shortened with an ellipsis until it is at most ``width`` wide."""
        if self.text_width(text, size) <= width:
            return text
        while len(text) > 1 and self.text_width(text + "…", size) > width:
            text = text[:-1]
        return text + "…"

    def label_lines(self, text: str, width: float, size: int = 11) -> list[str]:
        """``text`` on one line, or split at an underscore onto two, each at most
        ``width`` wide (shortened if need be)."""
        if self.text_width(text, size) <= width or "_" not in text:
            return [self.fitted(text, width, size)]
        cuts = [i for i, ch in enumerate(text) if ch == "_"]
        cut = min(cuts, key=lambda i: abs(2 * i - len(text)))
        return [
            self.fitted(text[: cut + 1], width, size),
            self.fitted(text[cut + 1 :], width, size),
        ]

    def vertical_text(self, xy: tuple[int, int], text: str, size: int = 12) -> None:
        """``text`` rotated a quarter turn, centred on ``xy``."""
        from PIL import Image, ImageDraw

        width = int(self.text_width(text, size)) + 4
        label = Image.new("L", (width, size + 6), 0)
        ImageDraw.Draw(label).text((2, 1), text, fill=255, font=_font(size))
        label = label.rotate(90, expand=True)
        box = (xy[0] - label.width // 2, xy[1] - label.height // 2)
        self.image.paste(Image.new("RGB", label.size, _rgb(INK)), box, label)

    def line(self, points: Sequence[tuple[float, float]], fill: str | RGB, width: int = 1) -> None:
        self.draw.line(list(points), fill=fill, width=width)

    def dashed(self, x0: float, x1: float, y: float, fill: str | RGB, dash: int = 6) -> None:
        x = x0
        while x < x1:
            self.draw.line([(x, y), (min(x + dash, x1), y)], fill=fill, width=1)
            x += 2 * dash

    def rect(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        fill: str | RGB | None = None,
        outline: str | RGB | None = None,
    ) -> None:
        self.draw.rectangle(
            [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], fill=fill, outline=outline
        )


@dataclass(frozen=True)
class Axes:
    """A plot area in pixels with data limits: maps data to pixels."""

    x0: int
    y0: int
    x1: int
    y1: int
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    def x(self, value: float) -> float:
        lo, hi = self.xlim
        return self.x0 + (value - lo) / (hi - lo) * (self.x1 - self.x0)

    def y(self, value: float) -> float:
        lo, hi = self.ylim
        return self.y1 - (value - lo) / (hi - lo) * (self.y1 - self.y0)

    def frame(self, canvas: Canvas) -> None:
        canvas.rect(self.x0, self.y0, self.x1, self.y1, outline=MUTED)

    def y_ticks(self, canvas: Canvas, ticks: Sequence[float], percent: bool = False) -> None:
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        for t in ticks:
            py = self.y(t)
            canvas.line([(self.x0 + 1, py), (self.x1 - 1, py)], fill=GRID)
            canvas.line([(self.x0 - 4, py), (self.x0, py)], fill=MUTED)
            canvas.text((self.x0 - 7, py), _tick_label(t, percent, step), 11, MUTED, "rm")

    def x_ticks(self, canvas: Canvas, ticks: Sequence[float]) -> None:
        for t in ticks:
            px = self.x(t)
            canvas.line([(px, self.y0 + 1), (px, self.y1 - 1)], fill=GRID)
            canvas.line([(px, self.y1), (px, self.y1 + 4)], fill=MUTED)
            canvas.text((px, self.y1 + 7), _tick_label(t), 11, MUTED, "ma")


def _density(values: npt.NDArray[np.float64], lo: float, hi: float) -> tuple[Any, Any]:
    """A smoothed histogram of ``values`` on [lo, hi]: (bin centres, density scaled to
    a maximum of 1)."""
    if values.shape[0] > VIOLIN_SAMPLE:
        rng = np.random.default_rng(0)
        values = values[rng.choice(values.shape[0], VIOLIN_SAMPLE, replace=False)]
    counts, edges = np.histogram(np.clip(values, lo, hi), bins=VIOLIN_BINS, range=(lo, hi))
    kernel = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    density = np.convolve(counts.astype(np.float64), kernel, mode="same")
    top = density.max()
    centres = (edges[:-1] + edges[1:]) / 2
    return centres, density / top if top > 0 else density


def _title(canvas: Canvas, x: int, y: int, text: str) -> None:
    canvas.text((x, y - 8), text, 13, INK, "ld")


def _distributions(canvas: Canvas, result: FitResult, top: int, bottom: int) -> None:
    values = result.centred
    finite = np.isfinite(values)
    n_tiers = len(result.tier_names)
    which = "valid" if result.valid else "train"
    acc = (result.valid or result.train).pair_accuracy
    _title(
        canvas,
        DIST[0],
        top,
        f"{result.response_type or 'reward'}: reward by tier   "
        f"({which} pair accuracy {acc:.4f}, train {result.train.pair_accuracy:.4f})",
    )
    if finite.any():
        lo, hi = (float(v) for v in np.quantile(values[finite], [0.005, 0.995]))
    else:
        lo, hi = -1.0, 1.0
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    ax = Axes(DIST[0], top, DIST[1], bottom - 46, (-0.6, n_tiers - 0.4), (lo - pad, hi + pad))
    ax.y_ticks(canvas, nice_ticks(lo - pad, hi + pad))
    canvas.vertical_text((DIST[0] - 52, (ax.y0 + ax.y1) // 2), "reward - prompt's mean ideal")
    if not finite.any():
        canvas.text(
            ((ax.x0 + ax.x1) / 2, (ax.y0 + ax.y1) / 2),
            "no prompt has an ideal completion",
            12,
            MUTED,
            "mm",
        )
    slot = (ax.x(1) - ax.x(0)) * 0.94
    for t, tier in enumerate(result.tier_names):
        v = values[finite & (result.tier_rank == t)]
        centre = ax.x(t)
        lines = canvas.label_lines(tier, slot)
        for k, line in enumerate(lines):
            canvas.text((centre, ax.y1 + 5 + 13 * k), line, 11, INK, "ma")
        canvas.text((centre, ax.y1 + 5 + 13 * len(lines)), f"({v.shape[0]:,})", 11, MUTED, "ma")
        if v.shape[0] == 0:
            continue
        colour = TIER_COLOURS[t % len(TIER_COLOURS)]
        ys, density = _density(v, lo - pad, hi + pad)
        shown = np.flatnonzero(density > 0.005)  # no hairline tails beyond the data
        ys, density = ys[shown[0] : shown[-1] + 1], density[shown[0] : shown[-1] + 1]
        half = 0.42 * (ax.x(1) - ax.x(0)) * density
        outline = [(centre - h, ax.y(y)) for y, h in zip(ys, half, strict=True)]
        outline += [(centre + h, ax.y(y)) for y, h in zip(ys[::-1], half[::-1], strict=True)]
        canvas.draw.polygon(outline, fill=_light(colour, 0.45), outline=_rgb(colour))
        q05, q25, q50, q75, q95 = (float(q) for q in np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95]))
        canvas.line([(centre, ax.y(q05)), (centre, ax.y(q95))], INK, 1)
        canvas.rect(centre - 3, ax.y(q75), centre + 3, ax.y(q25), fill=INK)
        my = ax.y(q50)
        canvas.draw.ellipse([centre - 3, my - 3, centre + 3, my + 3], fill="white", outline=INK)
    zero = ax.y(0.0)
    if ax.y0 < zero < ax.y1:
        canvas.dashed(ax.x0, ax.x1, zero, MUTED)
    ax.frame(canvas)


def _error_rates(canvas: Canvas, result: FitResult, top: int, bottom: int) -> None:
    metrics = result.valid or result.train
    base = result.base_valid if result.valid else result.base_train
    tiers = result.tier_names[1:]
    which = "valid" if result.valid else "train"
    total = "–" if not math.isfinite(metrics.error_rate) else f"{metrics.error_rate:.2%}"
    _title(canvas, ERRORS[0], top, f"error rate vs {result.tier_names[0]} ({which}; all {total})")
    series: list[tuple[str, list[float], str]] = []
    if base is not None:
        series.append(("base reward alone", list(base.error_rate_by_tier()[1:]), BASE_ALONE))
    series.append(("fitted reward", list(metrics.error_rate_by_tier()[1:]), FITTED))
    highest = max((r for _, rates, _ in series for r in rates if math.isfinite(r)), default=0.0)
    ymax = max(highest * 1.22, 0.01)
    ax = Axes(ERRORS[0], top, ERRORS[1], bottom - 46, (-0.5, len(tiers) - 0.5), (0.0, ymax))
    ax.y_ticks(canvas, nice_ticks(0.0, ymax, 4), percent=True)
    width = (ax.x(1) - ax.x(0)) * 0.8 / len(series)
    for k, (_, rates, colour) in enumerate(series):
        for i, rate in enumerate(rates):
            left = ax.x(i) - width * len(series) / 2 + k * width
            if math.isfinite(rate):
                canvas.rect(left + 1, ax.y(rate), left + width - 1, ax.y(0.0), fill=colour)
            label = "–" if not math.isfinite(rate) else f"{rate:.1%}"
            y = ax.y(rate if math.isfinite(rate) else 0.0)
            canvas.text((left + width / 2, y - 2), label, 10, INK, "md")
    slot = (ax.x(1) - ax.x(0)) * 0.96
    for i, tier in enumerate(tiers):
        for k, line in enumerate(canvas.label_lines(tier, slot, 10)):
            canvas.text((ax.x(i), ax.y1 + 5 + 12 * k), line, 10, INK, "ma")
    # legend, top left inside the frame
    y = ax.y0 + 8
    for name, _, colour in series:
        canvas.rect(ax.x0 + 8, y, ax.x0 + 18, y + 10, fill=colour)
        canvas.text((ax.x0 + 23, y + 5), name, 11, INK, "lm")
        y += 16
    ax.frame(canvas)


def _weights(canvas: Canvas, result: FitResult, top: int, bottom: int) -> None:
    chart = result.weights_chart()
    wd = f"weight decay {result.weight_decay:g}" + (" (chosen)" if result.selection else "")
    _title(canvas, WEIGHTS[0] - 190, top, f"weights   ({wd})")
    weights = np.array([c["weight"] for c in chart], dtype=np.float64)
    span = float(np.abs(weights).max(initial=0.0)) or 1.0
    ax = Axes(WEIGHTS[0], top, WEIGHTS[1], bottom - 46, (-1.12 * span, 1.12 * span), (0, 1))
    ax.x_ticks(canvas, nice_ticks(-1.12 * span, 1.12 * span, 4))
    step = (ax.y1 - ax.y0) / max(len(chart), 1)
    mark = {"good": " (+)", "bad": " (-)", None: ""}
    for i, c in enumerate(chart):
        y = ax.y0 + step * (i + 0.5)
        colour = NEUTRAL if c["agrees"] is None else AGREES if c["agrees"] else CONTRADICTS
        half = max(min(step * 0.36, 7.0), 1.0)
        canvas.rect(ax.x(0.0), y - half, ax.x(c["weight"]), y + half, fill=colour)
        label = canvas.fitted(c["feature"], 178 - canvas.text_width(mark[c["expected"]], 11))
        canvas.text((ax.x0 - 6, y), label + mark[c["expected"]], 11, INK, "rm")
    canvas.line([(ax.x(0.0), ax.y0), (ax.x(0.0), ax.y1)], MUTED)
    ax.frame(canvas)


def _row_height(result: FitResult) -> int:
    return max(300, 17 * len(result.feature_names) + 80)


def draw_report(results: Sequence[FitResult], header: Sequence[str] = ()) -> Image.Image:
    """The report picture (see the module docstring); ``header`` lines go on top."""
    from PIL import Image, ImageDraw

    heights = [_row_height(r) for r in results] or [120]
    total = HEADER + sum(heights) + ROW_GAP * len(heights) + BOTTOM
    image = Image.new("RGB", (WIDTH, total), "white")
    canvas = Canvas(image, ImageDraw.Draw(image))
    lines = list(header) or ["specc fit report"]
    canvas.text((DIST[0] - 50, 18), lines[0], 20, INK)
    if len(lines) > 1:
        canvas.text((DIST[0] - 50, 50), "     ".join(lines[1:]), 12, MUTED)
    x = WIDTH - 24
    for colour, label in reversed(
        [
            (AGREES, "sign as the rules expect"),
            (CONTRADICTS, "sign against the rules"),
            (NEUTRAL, "no expectation"),
        ]
    ):
        x -= int(canvas.text_width(label, 11))
        canvas.text((x, 28), label, 11, INK, "lm")
        canvas.rect(x - 16, 23, x - 6, 33, fill=colour)
        x -= 34
    if not results:
        canvas.text((WIDTH / 2, total / 2), "no response type was fitted", 14, MUTED, "mm")
        return image
    top = HEADER
    panels: tuple[Callable[[Canvas, FitResult, int, int], None], ...] = (
        _distributions,
        _error_rates,
        _weights,
    )
    for result, height in zip(results, heights, strict=True):
        top += ROW_GAP
        for panel in panels:
            panel(canvas, result, top, top + height)
        top += height
    return image
