"""The fit report: ``report.json``, ``report.png`` and a terminal summary table.

``report.json`` carries the figures the picture shows (:mod:`specc.fit.figure`):
per response type the tier distributions (``centred_by_tier``), the error rates by
tier (``train``/``valid`` ``error_rate_by_tier``, and ``base_reward_alone``) and the
weights with the sign the rules expect (``weights_chart``); at the top level the
policy, spec hash, data file and ``timings_s``.

>>> paths = write_report(results, "out/fit", spec_hash=art.spec_hash)  # doctest: +SKIP
>>> print(summary_table(results))                                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specc.files import Staging
from specc.fit.fitter import FitResult

FORMAT = "specc.fit-report/1"


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
    timings: Mapping[str, float | None] | None = None,
    stage: Staging | None = None,
) -> ReportPaths:
    """Write ``report.json`` (and ``report.png`` unless ``plot`` is false) in ``out_dir``,
    atomically (:mod:`specc.files`); with ``stage``, when that staging commits.

    ``extra`` goes into ``report.json`` at the top level; its ``policy`` (``name``,
    ``version``) and ``data`` also head the picture. ``timings`` (seconds, e.g. start-up
    and reading) become ``timings_s``, with the picture's own drawing time added."""
    root = Path(out_dir)
    json_path = root / "report.json"
    data = report_dict(results, spec_hash=spec_hash, extra=extra)
    times: dict[str, float | None] = dict(timings or {})
    own = stage is None
    stage = stage or Staging()
    try:
        png_path = None
        if plot:
            png_path = root / "report.png"
            t0 = time.perf_counter()
            plot_report(results, png_path, header=report_header(data), stage=stage)
            times["picture"] = time.perf_counter() - t0
        data["timings_s"] = {k: None if v is None else round(v, 4) for k, v in times.items()}
        text = json.dumps(data, indent=2, allow_nan=False) + "\n"
        stage.write_bytes(json_path, text.encode())
    except BaseException:
        stage.discard()
        raise
    if own:
        stage.commit()
    return ReportPaths(json_path, png_path)


def report_header(data: Mapping[str, Any]) -> list[str]:
    """The picture's title lines from a :func:`report_dict`: policy and version, then
    spec hash, data file and specc version."""
    policy = data.get("policy")
    title = "specc fit report"
    if isinstance(policy, Mapping):
        title = f"policy {policy.get('name', '?')} {policy.get('version', '')}".rstrip()
    details = [
        f"spec {str(data.get('spec_hash') or '-')[:16]}",
        f"data {data.get('data') or '-'}",
        f"specc {data.get('specc_version', '')}",
    ]
    return [title, *details]


def plot_report(
    results: Sequence[FitResult],
    path: str | Path,
    *,
    header: Sequence[str] = (),
    stage: Staging | None = None,
) -> None:
    """Draw the report picture (:func:`specc.fit.figure.draw_report`) into ``path``."""
    from specc.fit.figure import draw_report

    image = draw_report(results, header)
    with contextlib.ExitStack() as scope:
        staging = stage or scope.enter_context(Staging())
        image.save(scope.enter_context(staging.open(path)), format="PNG", compress_level=3)


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
