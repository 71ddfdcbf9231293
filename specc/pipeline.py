"""The commands that chain stages: ``specc fit``, ``specc build`` and ``specc explain``.

``build`` is the main job: check -> compile -> grade -> fit -> report, leaving the
artifact, the weights and the report picture in one directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.artifact import Artifact, ResponseTypeEntry, load_artifact
from specc.errors import DataError, SpecError, UsageError

if TYPE_CHECKING:
    from specc.audit import AuditedRow, LabelAudit
    from specc.fit import FitResult
    from specc.fit.metrics import Polarity
    from specc.fit.read import FeatureTable
    from specc.grade import FeatureRow

Locate = Callable[[int], str]  # row index -> "file:line"

__all__ = [
    "fit_artifact",
    "grading_options",
    "model_options",
    "polarity",
    "run_build",
    "run_explain",
    "run_fit",
]


def _say(message: str, quiet: bool = False) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def polarity(artifact: Artifact, rt: ResponseTypeEntry) -> dict[str, Polarity | None]:
    """Which way each feature must push the reward, read off the compiled rules.

    Only what the rules force counts: a proposition is "bad" when its being true puts
    the completion in the worst tier whatever else holds, "good" when the best tier
    cannot hold without it. (With every other proposition at 1/2 every assignment has
    weight, so the exact probabilities 1 and 0 are statements about all of them.) The
    best tier's class probability is "good", the worst tier's "bad"."""
    import numpy as np

    rules = artifact.rules
    out: dict[str, Polarity | None] = {}
    props = set(rt.propositions)
    for feature in rt.features:
        kind, _, name = feature.partition(":")
        if kind == "class":
            out[feature] = (
                "good" if name == rt.tiers[0] else "bad" if name == rt.tiers[-1] else None
            )
            continue
        if kind != "prop" or name not in props:
            out[feature] = None
            continue
        tiers = {}
        for value in (0.0, 1.0):
            probs = {p: np.array([0.5]) for p in rt.propositions}
            probs[name] = np.array([value])
            tiers[value] = rules.tier_probabilities(rt.name, probs, n=1)[0]
        if tiers[1.0][-1] >= 1.0 - 1e-12:
            out[feature] = "bad"
        elif tiers[0.0][0] <= 1e-12:
            out[feature] = "good"
        else:
            out[feature] = None
    return out


def _process_age() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or None elsewhere."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            started = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def fit_artifact(
    artifact: Artifact,
    table: FeatureTable | Sequence[FeatureRow],
    *,
    source: str = "features",
    optimizer: str | None = None,
    valid_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[list[FitResult], list[str]]:
    """Fit every response type that has rows (a table read by
    :func:`specc.fit.read.read_feature_table`, or feature rows in memory, ``source``
    naming them in errors); returns the results and warnings."""
    from specc.fit import FitSettings, fit_response_type
    from specc.fit.read import FeatureTable, table_from_rows

    if not isinstance(table, FeatureTable):
        if not table:
            raise DataError("no rows to fit", where=source, hint="the features file is empty")
        table = table_from_rows(artifact, table, source)

    warnings = [
        f"response type '{rt.name}' has no rows: it is not fitted"
        for rt in artifact.manifest.response_types
        if rt.name not in table.types
    ]
    results = []
    for rt in artifact.manifest.response_types:
        rows = table.types.get(rt.name)
        if rows is None:
            continue
        overrides: dict[str, Any] = {"valid_fraction": valid_fraction}
        if optimizer:
            overrides["optimizer"] = optimizer
        result = fit_response_type(
            rows.features,
            rows.prompt_ids,  # ids, not file order: the split sorts them
            rows.tier_rank,
            tier_names=rt.tiers,
            feature_names=rt.features,
            tier_margins=[rt.tier_margins[t] for t in rt.tiers],
            base_reward=rows.base_reward,
            settings=FitSettings.from_reward(rt.reward, **overrides),
            seed=seed,
            feature_polarity=polarity(artifact, rt),
            response_type=rt.name,
            locate=rows.locate,
        )
        results.append(result)
    if not results:
        raise DataError("no response type has rows to fit", where=table.source)
    return results, warnings


def _audit(rows: Sequence[AuditedRow], args: argparse.Namespace, locate: Locate) -> LabelAudit:
    """The label audit (specc.audit): a warning, or an error with --strict-labels."""
    from specc.audit import audit_labels

    audit = audit_labels(rows, locate)
    if audit.disagreements and getattr(args, "strict_labels", False):
        raise DataError(
            "\n".join([audit.summary(), *audit.examples()]),
            hint="fix the labels (or the rules); without --strict-labels this is a warning",
        )
    quiet = getattr(args, "quiet", False)
    if audit.audited or audit.not_audited:
        _say(("warning: " if audit.disagreements else "") + audit.summary(), quiet)
        for line in audit.examples():
            _say(line, quiet)
    return audit


def _fit_and_save(
    artifact: Artifact,
    features_path: Path,
    report_dir: Path,
    args: argparse.Namespace,
    extra: Mapping[str, Any] | None = None,
    startup: float | None = None,
    locate: Locate | None = None,
) -> dict[str, Any]:
    """Fit, save the weights and the report, print the summary table (unless
    ``args.json``); returns the fit's JSON summary (``--json``)."""
    t_start = time.perf_counter()
    from specc.files import Staging
    from specc.fit import summary_table, write_report
    from specc.fit.read import read_feature_table
    from specc.weights import WEIGHTS_DIR, save_weights, weights_from_results

    t_imported = time.perf_counter()
    table = read_feature_table(features_path, artifact)
    t_read = time.perf_counter()
    audit = _audit(table.audit, args, locate or (lambda i: f"{features_path}:{i + 1}"))
    extra = {**(extra or {}), "label_audit": audit.to_json()}
    results, warnings = fit_artifact(
        artifact,
        table,
        optimizer=args.optimizer,
        valid_fraction=args.valid_fraction,
        seed=args.seed,
    )
    t_fit = time.perf_counter()
    weights = weights_from_results(artifact.spec_hash, results)
    # The weights unit and the report appear together, or (an error, a full disk)
    # neither changes.
    with Staging() as stage:
        save_weights(artifact.path, weights, key=artifact.key, stage=stage)
        timings = {
            # `specc fit`'s start-up: the interpreter, the command line and the artifact
            **({"startup": startup} if startup is not None else {}),
            "imports": t_imported - t_start,  # the fit's modules
            "read": t_read - t_imported,
            "fit": t_fit - t_read,
            "weights": time.perf_counter() - t_fit,
        }
        paths = write_report(
            results,
            report_dir,
            spec_hash=artifact.spec_hash,
            extra={
                "policy": {"name": artifact.manifest.name, "version": artifact.manifest.version},
                "data": str(features_path),
                **extra,
            },
            timings=timings,
            stage=stage,
        )
    quiet = getattr(args, "quiet", False)
    for w in warnings:
        _say(f"warning: {w}", quiet)
    if not getattr(args, "json", False):
        print(summary_table(results))
    _say(
        f"weights -> {artifact.path / WEIGHTS_DIR}\nreport  -> {paths.json}"
        + (f", {paths.png}" if paths.png else ""),
        quiet,
    )
    return {
        "weights": str(artifact.path / WEIGHTS_DIR),
        "report": str(paths.json),
        "plot": str(paths.png) if paths.png else None,
        "warnings": warnings,
        **json.loads(paths.json.read_text(encoding="utf-8")),  # what report.json holds
    }


def model_options(args: argparse.Namespace) -> dict[str, Any]:
    """The grader keywords the model options (``specc.cli.add_model_options``) set:
    ``batch_size``, ``device``, ``dtype`` and ``concurrency``, for every command that
    builds a grader (:func:`~specc.grade.graders.make_grader` takes them all)."""
    return {
        "batch_size": args.batch_size,
        "device": args.device,
        "dtype": args.dtype,
        "concurrency": args.concurrency,
    }


def grading_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`~specc.grade.command.run_grade` that the grading
    options (``specc.cli.add_grading_options``) set, for ``grade``, ``build`` and
    ``eval``: the model options, ``limit``, ``timeout`` and ``top_logprobs``."""
    return {
        "limit": args.limit,
        **model_options(args),
        "timeout": args.timeout,
        "top_logprobs": args.top_logprobs,
    }


def run_fit(args: argparse.Namespace) -> int:
    startup = _process_age()  # the interpreter and the command line's imports
    t_run = time.perf_counter()
    from specc.files import check_output_dir

    if args.report:
        check_output_dir(args.report, "--report")
    artifact = load_artifact(args.artifact)
    features = Path(args.features)
    if not features.exists():
        raise UsageError(f"{features}: no such file; write it with `specc grade`")
    report_dir = Path(args.report) if args.report else artifact.path
    if startup is not None:  # until now: reading the command line and the artifact
        startup += time.perf_counter() - t_run
    summary = _fit_and_save(artifact, features, report_dir, args, startup=startup)
    if args.json:
        print(json.dumps(summary, indent=2, allow_nan=False))
    return 0


def run_build(args: argparse.Namespace) -> int:
    """check -> compile -> grade -> fit -> report."""
    from specc.checker import check_file
    from specc.compiler import compile_spec
    from specc.errors import render_all
    from specc.grade import read_rows, run_grade
    from specc.grade.graders import notices

    quiet = args.quiet
    out = Path(args.output)
    data = Path(args.data)
    if not data.exists():
        raise UsageError(f"{data}: no such file")
    t0 = time.perf_counter()
    allow_paths = args.allow_path or ()
    report = check_file(args.spec, allow_paths)
    if any(d.severity == "error" for d in report.diagnostics):
        # Stop here, printing each diagnostic once (compile would report them again).
        exc = SpecError(report.diagnostics)
        exc.sources = report.load.sources  # type: ignore[attr-defined]
        raise exc
    if report.diagnostics:
        _say(render_all(report.diagnostics, report.load.sources), quiet)
    _say(f"[1/4] checked {args.spec}", quiet)
    manifest = compile_spec(args.spec, out, allow_paths)
    _say(
        f"[2/4] compiled {manifest.name} {manifest.version} -> {out} "
        f"(spec_hash {manifest.spec_hash[:12]})",
        quiet,
    )
    features = out / "features.jsonl"
    _say(f"[3/4] grading {data} with {args.grader}", quiet)
    summary = run_grade(
        out,
        data,
        args.grader,
        features,
        cache_path=args.cache or out / "grade-cache.sqlite",
        progress=not quiet,
        notify=notices(quiet),
        **grading_options(args),
    )
    _say("[4/4] fitting", quiet)
    wheres: list[str] = []

    def locate(i: int) -> str:
        """Row ``i`` of the features is row ``i`` of the data: name its data line."""
        if not wheres:
            wheres.extend(row.where for row in read_rows(data))
        return wheres[i]

    fitted = _fit_and_save(
        load_artifact(out),
        features,
        out,
        args,
        extra={"data": str(data), "grader": args.grader},
        locate=locate,
    )
    _say(f"done in {time.perf_counter() - t0:.1f} s", quiet)
    if args.json:
        print(json.dumps({"grade": summary, "fit": fitted}, indent=2, allow_nan=False))
    return 0


def run_explain(args: argparse.Namespace) -> int:
    from specc.jsonl import MAX_LINE_BYTES, parse_line
    from specc.oserrors import os_error

    try:
        if args.row == "-":
            raw = sys.stdin.buffer.read(MAX_LINE_BYTES + 1)
        else:
            with Path(args.row).open("rb") as f:
                raw = f.read(MAX_LINE_BYTES + 1)
    except OSError as exc:
        raise os_error(exc, args.row, "read") from None
    if len(raw) > MAX_LINE_BYTES:
        raise DataError(
            f"larger than {MAX_LINE_BYTES // (1024 * 1024)} MiB",
            args.row,
            "give one row (a JSON object in the data format)",
        )
    try:
        row = parse_line(raw, args.row)  # bounded depth and numbers, strict UTF-8
    except DataError:
        try:  # a syntax error: say where as line:col (the file may span lines)
            json.loads(raw)
        except json.JSONDecodeError as exc:
            several = exc.msg == "Extra data"  # a second value: a JSONL file, most likely
            raise DataError(
                f"not valid JSON: {exc.msg}",
                where=f"{args.row}:{exc.lineno}:{exc.colno}",
                hint="ROW.json holds one row; to explain line N of a JSONL file, pipe it: "
                f"`sed -n Np {args.row} | specc explain {args.artifact} -`"
                if several
                else None,
            ) from None
        except (ValueError, RecursionError):
            pass
        raise
    if not isinstance(row, dict):
        raise DataError("expected one JSON object (a data row)", where=args.row)
    # Verify the artifact before the reward (and torch) loads: a bad one fails fast.
    artifact = load_artifact(args.artifact)
    from specc.grade.graders import notices
    from specc.reward import load

    reward = load(artifact, grader=args.grader, notify=notices(getattr(args, "quiet", False)))
    explanation = reward.explain(row)
    if args.json:
        print(json.dumps(explanation.to_json(), indent=2))
    else:
        print(explanation.table())
    return 0
