"""The ``specc`` command: a thin argparse front end over the library.

Exit codes are named in :class:`Exit`. Each subcommand imports what it needs when it
runs, so ``specc check`` never loads torch or transformers.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import json
import os
import sys
import textwrap
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from specc.errors import DataError, Diagnostic, SpecccError, SpecError, UsageError, did_you_mean


class Exit(enum.IntEnum):
    OK = 0
    ERRORS = 1  # spec errors, data errors, a file that fmt --check would change
    USAGE = 2  # bad arguments, unreadable files
    INTERNAL = 70
    INTERRUPTED = 130
    PIPE = 141  # the output was cut (a closed pipe); what a shell reports for SIGPIPE


def _color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def _print_diagnostics(
    report_diags: Sequence[Any], sources: dict[str, str], fmt: str, limit: int | None = None
) -> None:
    from specc.errors import MAX_SHOWN, render_all, to_json

    if fmt == "json":
        print(to_json(report_diags))  # every diagnostic, whatever the limit
    else:
        shown = MAX_SHOWN if limit is None else limit
        print(render_all(report_diags, sources, _color(sys.stderr), shown), file=sys.stderr)


def _allow_paths(args: argparse.Namespace) -> list[str]:
    """``--allow-path`` folders, each checked to be an existing directory."""
    paths: list[str] = args.allow_path or []
    for path in paths:
        if not os.path.isdir(path):
            raise UsageError(
                f"--allow-path {path}: no such directory\n"
                "  = hint: give the folder that holds the files the spec imports"
            )
    return paths


def _new(found: Sequence[Diagnostic], known: Sequence[Diagnostic]) -> list[Diagnostic]:
    """``found`` less what ``known`` already has (files checked twice: a library on
    its own and through the policy that imports it)."""
    seen = set(known)
    return [d for d in found if d not in seen]


def _quiet_third_party() -> None:
    """Silence other libraries' progress bars, advisory log lines and warnings
    (``-q``): transformers' and huggingface_hub's loading bars, tqdm bars, and
    Python warnings such as FutureWarning. Errors still surface as exceptions.

    Environment variables cover libraries imported later; those already imported are
    told directly."""
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TQDM_DISABLE"] = "1"
    warnings.simplefilter("ignore")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils.tqdm import disable_progress_bars

        disable_progress_bars()


# --------------------------------------------------------------------------- commands


def cmd_check(args: argparse.Namespace) -> int:
    from specc.checker import check_file

    status = Exit.OK
    all_diags: list[Diagnostic] = []
    sources: dict[str, str] = {}
    allow_paths = _allow_paths(args)
    for path in args.files:
        # A file without a header is checked as a library (or a file of tests).
        report = check_file(path, allow_paths, alone=True)
        # A library checked on its own and through a policy reports a problem once.
        all_diags.extend(_new(report.diagnostics, all_diags))
        sources.update(report.load.sources)
        errors = [d for d in report.diagnostics if d.severity == "error"]
        if any(d.code == "E004" and d.span.file not in report.load.sources for d in errors):
            status = Exit.USAGE  # the file itself could not be read (not one it imports)
        elif errors or (args.strict and report.diagnostics):
            status = max(status, Exit.ERRORS)
    if all_diags or args.format == "json":
        _print_diagnostics(all_diags, sources, args.format, args.max_diagnostics)
    if status == Exit.OK and args.format == "text":
        names = ", ".join(args.files)
        print(f"ok: {names}", file=sys.stderr)
    return int(status)


def cmd_test(args: argparse.Namespace) -> int:
    from specc.spectest import GraderOptions, format_reports, reports_json, run_file

    options = None
    if args.grader is not None:
        from specc.pipeline import model_options

        options = GraderOptions(grader=args.grader, cache=args.cache, **model_options(args))
    allow_paths = _allow_paths(args)
    reports = [run_file(path, options, allow_paths) for path in args.files]
    diags: list[Diagnostic] = []
    sources: dict[str, str] = {}
    for report in reports:
        diags.extend(_new(report.diagnostics, diags))
        sources.update(report.sources)
    if args.format == "json":
        print(json.dumps(reports_json(reports), indent=2))
    else:
        shown = [d for d in diags if d.severity == "error" or args.warnings]
        if shown:
            _print_diagnostics(shown, sources, "text")
        sys.stdout.write(format_reports(reports, verbose=not args.quiet))
    if any(d.code == "E004" for r in reports for d in r.errors):
        return int(Exit.USAGE)
    return int(Exit.OK if all(r.ok for r in reports) else Exit.ERRORS)


def cmd_fmt(args: argparse.Namespace) -> int:
    from specc.formatter import format_file

    status = Exit.OK
    for path in args.files:
        result = format_file(path, write=not args.check and not args.diff)
        if result.diagnostics:
            _print_diagnostics(result.diagnostics, result.sources, "text")
            status = max(status, Exit.ERRORS)
            continue
        if result.changed:
            if args.check:
                print(f"would reformat {path}", file=sys.stderr)
                status = max(status, Exit.ERRORS)
            elif args.diff:
                sys.stdout.write(result.diff())
            else:
                print(f"reformatted {path}", file=sys.stderr)
    return int(status)


def cmd_compile(args: argparse.Namespace) -> int:
    from specc.compiler import compile_spec

    manifest = compile_spec(args.spec, args.output, _allow_paths(args))
    if args.json:
        info = {
            "name": manifest.name,
            "version": manifest.version,
            "spec_hash": manifest.spec_hash,
            "output": str(args.output),
            "propositions": len(manifest.propositions),
            "response_types": len(manifest.response_types),
        }
        print(json.dumps(info, indent=2))
        return int(Exit.OK)
    print(
        f"compiled {manifest.name} {manifest.version} -> {args.output} "
        f"(spec_hash {manifest.spec_hash[:12]}, {len(manifest.propositions)} propositions, "
        f"{len(manifest.response_types)} response types)",
        file=sys.stderr,
    )
    return int(Exit.OK)


def cmd_grade(args: argparse.Namespace) -> int:
    from specc.grade.command import run_grade
    from specc.grade.graders import notices
    from specc.pipeline import grading_options

    summary = run_grade(
        args.artifact,
        args.data,
        args.grader,
        args.output,
        cache_path=args.cache,
        progress=not args.quiet,
        notify=notices(args.quiet),
        **grading_options(args),
    )
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    return int(Exit.OK)


def cmd_fit(args: argparse.Namespace) -> int:
    from specc.pipeline import run_fit

    return run_fit(args)


def cmd_build(args: argparse.Namespace) -> int:
    from specc.pipeline import run_build

    _allow_paths(args)  # refused before anything is written, as check and compile do
    return run_build(args)


def cmd_explain(args: argparse.Namespace) -> int:
    from specc.pipeline import run_explain

    return run_explain(args)


def cmd_import(args: argparse.Namespace) -> int:
    from specc.importer import import_config, write_policy

    result = import_config(
        args.config,
        name=args.name,
        version=args.policy_version,
        resolve=args.resolve,
        answer_cue=args.answer_cue,
    )
    write_policy(result, args.output, force=args.force)
    if args.json:
        print(json.dumps({**result.summary(), "out": args.output}, indent=2))
    else:
        s = result.summary()
        print(
            f"imported {args.config} -> {args.output}: {s['propositions']} propositions, "
            f"{s['derived']} derived, {len(result.spec.response_types)} response types, "
            f"{len(result.spec.tier_names())} tiers",
            file=sys.stderr,
        )
        for note in result.notes:
            print(f"  note: {note}", file=sys.stderr)
        warnings = [d for d in result.diagnostics if d.severity == "warning"]
        if warnings:
            codes = sorted({d.code for d in warnings})
            print(
                f"  {len(warnings)} warning(s) from `specc check` ({', '.join(codes)}); "
                f"run `specc check {args.output}` to see them",
                file=sys.stderr,
            )
    return int(Exit.OK)


def cmd_eval(args: argparse.Namespace) -> int:
    from specc.evaluate import EvalOptions, format_report, run_eval
    from specc.pipeline import grading_options

    options = EvalOptions(
        **grading_options(args),
        cache_path=args.cache,
        progress=not args.quiet,
        few_shot=not args.no_few_shot,
        calibrate=args.calibrate,
        holdout=args.holdout,
        seed=args.seed,
        plot=args.plot,
        force=args.force,
    )
    report = run_eval(
        args.artifact,
        args.gold,
        grader_spec=args.grader,
        predictions=args.predictions,
        options=options,
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(format_report(report))
    sys.stdout.flush()
    if args.plot and not args.quiet:
        print(f"wrote {args.plot}", file=sys.stderr)
    if report.calibration is not None and not args.quiet:
        from specc.calibrate import calibration_path

        print(f"wrote {calibration_path(args.artifact)}", file=sys.stderr)
    return int(Exit.OK)


def cmd_serve(args: argparse.Namespace) -> int:
    from specc.serve.command import run_serve

    return run_serve(args)


# --------------------------------------------------------------------------- parser


_STRICT_LABELS = (
    "stop with exit 1, fitting nothing, when a row's completion_label disagrees with the "
    "tier its 0/1 propositions imply (default: off, a warning)"
)


def _did_you_mean(message: str) -> str | None:
    """For argparse's "invalid choice: 'chek' (choose from 'check', ...)", "did you
    mean 'check'?" if a choice is close (:func:`specc.errors.did_you_mean`)."""
    import re

    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    if found is None:
        return None
    choices = [c.strip().strip("'\"") for c in found.group(2).split(",")]
    return did_you_mean(found.group(1), choices)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"specc: error: {message}", file=sys.stderr)
        if "= hint:" not in message:
            see = f"see `{self.prog} --help`"
            close = _did_you_mean(message)  # "did you mean 'check'?", or None
            print(f"  = hint: {close} {see}" if close else f"  = hint: {see}", file=sys.stderr)
        raise SystemExit(int(Exit.USAGE))


def _command(
    sub: Any, name: str, summary: str, example: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` ends with ``example`` (one command per line); its
    description is ``summary`` as a sentence unless given."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=description or summary[:1].upper() + summary[1:] + ".",
        epilog="example:\n" + "\n".join(f"  {line}" for line in example.splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _wrap(text: str) -> str:
    """A long description as lines (RawDescriptionHelpFormatter keeps lines as given)."""
    return textwrap.fill(text, width=79)


_GRADERS = "hf:PATH | openai:URL#MODEL | openai-chat:URL#MODEL | labels | rules"


def add_model_options(p: argparse.ArgumentParser) -> None:
    """How a grader runs: ``--batch-size``, ``--device``, ``--dtype``, ``--concurrency``
    (every command that builds a grader takes them)."""
    from specc.argtypes import device, positive_int

    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="prompts per batch (default: 16 for hf, 4 x --concurrency for openai)",
    )
    p.add_argument(
        "--device",
        type=device,
        default="auto",
        help="hf: cpu, cuda, cuda:N, mps or xpu (default: auto: CUDA, then MPS, then the CPU)",
    )
    p.add_argument(
        "--dtype",
        default="auto",
        choices=("auto", "float32", "bfloat16", "float16"),
        help="hf: the weights' dtype (default: auto: bfloat16 on GPUs that have it, else float32)",
    )
    p.add_argument(
        "--concurrency",
        type=positive_int,
        default=8,
        metavar="N",
        help="openai: requests in flight at once (default: 8)",
    )


def add_grading_options(p: argparse.ArgumentParser, *, cache_default: str) -> None:
    """The options of ``specc grade`` that say how to grade (``build`` and ``eval`` take
    them too): which rows, the cache, the model options and the openai request limits."""
    from specc.argtypes import positive_int, seconds

    p.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="use only the first N rows (default: all)",
    )
    p.add_argument(
        "--cache",
        default=None,
        metavar="PATH",
        help=f"the sqlite grade cache (default: {cache_default})",
    )
    add_model_options(p)
    p.add_argument(
        "--timeout",
        type=seconds,
        default=60.0,
        metavar="SECONDS",
        help="openai: deadline of each request, from connecting to the last byte of the "
        "reply; retried up to 6 times (default: 60)",
    )
    p.add_argument(
        "--top-logprobs",
        type=positive_int,
        default=20,
        metavar="N",
        help="openai: top tokens the server returns at the answer slot; raise it when the "
        "yes/no words fall outside them (default: 20)",
    )


def _output_options(p: argparse.ArgumentParser, results: str) -> None:
    p.add_argument(
        "--json", action="store_true", help=f"print {results} as JSON on stdout (default: text)"
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress, notices or warnings (specc's or other libraries'); errors and "
        "results still print",
    )


def _add_allow_path(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-path",
        action="append",
        default=None,
        metavar="DIR",
        help="also read imports and file(...) templates from DIR (repeatable; default: "
        "only the spec's own folder)",
    )


def build_parser() -> argparse.ArgumentParser:
    from specc import __version__
    from specc.argtypes import fraction, non_negative_int, share

    p = _Parser(
        prog="specc",
        description="Compile rule-based reward policies (.rbr) into graders and rewards.",
        epilog="example:\n  specc build policies/safety.rbr --data policies/data/safety.jsonl "
        "-o out/safety\n\nrun `specc COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"specc {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = _command(
        sub,
        "check",
        "check specs and print diagnostics",
        "specc check policies/safety.rbr\nspecc check --format json --strict policies/*.rbr",
    )
    c.add_argument("files", nargs="+", metavar="SPEC", help="the .rbr files to check")
    c.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text on stderr, or a JSON array of diagnostics on stdout (default: text)",
    )
    c.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        help="the same as --format json",
    )
    c.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 1)")
    c.add_argument(
        "--max-diagnostics",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="print at most N diagnostics, then a count per code (default: 50; 0 prints "
        "all; --format json always lists all)",
    )
    _add_allow_path(c)
    c.set_defaults(func=cmd_check)

    t = _command(
        sub,
        "test",
        "run the tests a policy or a test file declares",
        "specc test policies/minimal.rbr policies/safety_test.rbr\n"
        "specc test policies/safety_test.rbr --grader rules --format json",
        description=(
            "Run `test` blocks. Rule tests (given answers, an expected tier) are proved\n"
            "for every value of the propositions they leave out, without a grader.\n"
            "Completion tests (a reply to grade) run only with --grader. Exits 1 when a\n"
            "test fails or the spec has errors."
        ),
    )
    t.add_argument("files", nargs="+", metavar="SPEC", help="policies or test files")
    t.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people, json for CI and editors (default: text)",
    )
    t.add_argument(
        "--grader",
        default=None,
        metavar="G",
        help="grade completion tests with rules, hf:PATH, openai:URL#MODEL or "
        "openai-chat:URL#MODEL (default: none; completion tests are skipped)",
    )
    t.add_argument(
        "--cache",
        default=None,
        metavar="PATH",
        help="grade cache for completion tests, ':memory:' for none (default: "
        "$SPECC_GRADE_CACHE, else ~/.cache/specc/test-grades.sqlite)",
    )
    add_model_options(t)
    t.add_argument(
        "-q", "--quiet", action="store_true", help="list failures and skips only (default: off)"
    )
    t.add_argument(
        "--warnings",
        action="store_true",
        help="also print the spec's warnings; errors are always printed (default: off)",
    )
    _add_allow_path(t)
    t.set_defaults(func=cmd_test)

    f = _command(
        sub,
        "fmt",
        "rewrite specs in the canonical layout",
        "specc fmt policies/*.rbr\nspecc fmt --check policies/safety.rbr",
    )
    f.add_argument("files", nargs="+", metavar="SPEC", help="the .rbr files to format")
    g = f.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true", help="exit 1 if a file would change")
    g.add_argument("--diff", action="store_true", help="print a diff instead of writing")
    f.set_defaults(func=cmd_fmt)

    k = _command(
        sub,
        "compile",
        "compile a spec into an artifact directory",
        "specc compile policies/safety.rbr -o out/safety",
    )
    k.add_argument("spec", metavar="SPEC", help="the policy's root .rbr file")
    k.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="the artifact directory to write"
    )
    k.add_argument(
        "--json", action="store_true", help="print what was compiled as JSON (default: text)"
    )
    _add_allow_path(k)
    k.set_defaults(func=cmd_compile)

    gr = _command(
        sub,
        "grade",
        "grade conversations into features",
        "specc grade out/safety data.jsonl --grader hf:models/grader -o features.jsonl\n"
        "specc grade out/safety data.jsonl -o features.jsonl \\\n"
        "    --grader openai:http://127.0.0.1:8000/v1#grader --concurrency 16",
    )
    gr.add_argument("artifact", metavar="ARTIFACT", help="a directory from `specc compile`")
    gr.add_argument("data", metavar="DATA.jsonl", help="the rows to grade, one JSON object a line")
    gr.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FEATURES.jsonl",
        help="the feature rows to write (atomically)",
    )
    gr.add_argument("--grader", required=True, metavar="G", help=_GRADERS)
    add_grading_options(gr, cache_default="OUTPUT.cache.sqlite, or $SPECC_GRADE_CACHE")
    _output_options(gr, "the summary")
    gr.set_defaults(func=cmd_grade)

    def fit_options(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--optimizer",
            choices=("adamw", "lbfgs"),
            default=None,
            help="the optimiser (default: each response type's, from the spec)",
        )
        q.add_argument(
            "--valid-fraction",
            type=fraction,
            default=0.2,
            metavar="F",
            help="share of prompts held out for validation, 0 to hold none (default: 0.2)",
        )
        q.add_argument(
            "--seed",
            type=non_negative_int,
            default=0,
            metavar="N",
            help="seed of the validation split (default: 0)",
        )

    ft = _command(
        sub,
        "fit",
        "fit the reward weights on graded features",
        "specc fit out/safety features.jsonl\nspecc fit out/safety features.jsonl --json",
    )
    ft.add_argument("artifact", metavar="ARTIFACT", help="a directory from `specc compile`")
    ft.add_argument("features", metavar="FEATURES.jsonl", help="feature rows from `specc grade`")
    fit_options(ft)
    ft.add_argument(
        "--report",
        default=None,
        metavar="DIR",
        help="where report.json and report.png go (default: the artifact)",
    )
    ft.add_argument("--strict-labels", action="store_true", help=_STRICT_LABELS)
    _output_options(ft, "the fit's metrics")
    ft.set_defaults(func=cmd_fit)

    b = _command(
        sub,
        "build",
        "check, compile, grade, fit and report in one go",
        "specc build policies/safety.rbr --data policies/data/safety.jsonl -o out/safety\n"
        "specc build policies/safety.rbr --data d.jsonl -o out/s --grader hf:models/grader",
    )
    b.add_argument("spec", metavar="SPEC", help="the policy's root .rbr file")
    b.add_argument(
        "--data", required=True, metavar="DATA.jsonl", help="the rows to grade and fit on"
    )
    b.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="the artifact directory; features, cache, weights and report go in it too",
    )
    b.add_argument(
        "--grader",
        default="labels",
        metavar="G",
        help=f"{_GRADERS} (default: labels, the rows' own proposition values)",
    )
    add_grading_options(b, cache_default="DIR/grade-cache.sqlite")
    fit_options(b)
    _output_options(b, "the grading summary and the fit's metrics")
    _add_allow_path(b)
    b.add_argument("--strict-labels", action="store_true", help=_STRICT_LABELS)
    b.set_defaults(func=cmd_build)

    im = _command(
        sub,
        "import",
        "convert an RBR proposition config (YAML) into a .rbr policy",
        "specc import proposition_prompts.yaml -o policies/imported.rbr",
        description=_wrap(
            "Convert an RBR proposition config (the YAML format of OpenAI's RBR "
            "release: prompt_template, simple_propositions, derived_propositions, "
            "completion_classes, completion_class_order) into a .rbr policy that checks clean "
            "and is in the canonical layout. See docs/authoring.md."
        ),
    )
    im.add_argument("config", metavar="CONFIG.yaml", help="the config to convert")
    im.add_argument(
        "-o", "--output", required=True, metavar="POLICY.rbr", help="the policy file to write"
    )
    im.add_argument(
        "--force", action="store_true", help="replace POLICY.rbr if it exists (default: refuse)"
    )
    im.add_argument(
        "--name", default=None, help="the policy's name (default: the config file's stem)"
    )
    im.add_argument(
        "--policy-version",
        default="1.0.0",
        metavar="VERSION",
        help="the policy's version string (default: 1.0.0)",
    )
    im.add_argument(
        "--resolve",
        choices=("error", "worst-first", "best-first"),
        default="error",
        help="what to do when completion classes overlap or leave answers unclassified: "
        "error refuses, worst-first gives a completion the worst of its classes, best-first "
        "the best; both put unclassified ones in the worst class (default: error)",
    )
    im.add_argument(
        "--answer-cue",
        default="Answer:",
        metavar="TEXT",
        help="text appended to the grader template so that the prompt ends where the answer "
        "goes, unless it already ends with it; '' appends nothing (default: 'Answer:')",
    )
    im.add_argument(
        "--json", action="store_true", help="print a summary as JSON on stdout (default: text)"
    )
    im.set_defaults(func=cmd_import)

    ev = sub.add_parser(
        "eval",
        help="measure a grader against gold labels (accuracy, calibration, tiers)",
        description=_wrap(
            "Measure a grader against human gold labels: per proposition n, "
            "accuracy, precision, recall, F1 (yes iff P(yes) >= 0.5), Brier score and ECE "
            "(10 bins); tier accuracy with a confusion matrix per response type; the "
            "few-shot check (the propositions' own examples the grader answers wrongly). "
            "Predictions come from grading the gold rows now (--grader, through the grade "
            "cache) or from a `specc grade` output (--predictions), matched by id. See "
            "docs/authoring.md."
        ),
        epilog="examples:\n"
        "  specc eval out/safety gold.jsonl --grader hf:models/grader --plot eval.png\n"
        "  specc eval out/safety gold.jsonl --predictions features.jsonl --json\n"
        "  specc eval out/safety gold.jsonl --grader hf:models/grader --calibrate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument("artifact", metavar="ARTIFACT", help="a compiled artifact directory")
    ev.add_argument("gold", metavar="GOLD.jsonl", help="rows with 0/1 labels in 'propositions'")
    source = ev.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--grader",
        metavar="G",
        help=f"grade the gold rows now: {_GRADERS} (no default: give this or --predictions)",
    )
    source.add_argument(
        "--predictions",
        metavar="FEATURES.jsonl",
        help="use an earlier `specc grade` output instead, matched to the gold rows by id",
    )
    ev.add_argument(
        "--json", action="store_true", help="print the report as JSON on stdout (default: text)"
    )
    ev.add_argument(
        "--plot",
        metavar="FILE.png",
        default=None,
        help="also draw the reliability diagram and the confusion matrices (default: none)",
    )
    ev.add_argument(
        "--calibrate",
        action="store_true",
        help="fit a temperature per LLM-graded proposition on the gold rows not held out, "
        "report held-out ECE before and after, and store it in ARTIFACT/calibration/, where "
        "later grading applies it (default: off)",
    )
    ev.add_argument(
        "--holdout",
        type=share,
        default=0.3,
        metavar="SHARE",
        help="share of gold rows held out from the calibration fit (default: 0.3)",
    )
    ev.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="seed of the held-out draw (default: 0)",
    )
    ev.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --plot file or calibration (default: refuse)",
    )
    ev.add_argument(
        "--no-few-shot",
        action="store_true",
        help="skip grading the propositions' own few-shot examples (default: check them)",
    )
    add_grading_options(ev, cache_default="$SPECC_GRADE_CACHE, else GOLD.jsonl.cache.sqlite")
    ev.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar or messages (default: off)"
    )
    ev.set_defaults(func=cmd_eval)

    e = _command(
        sub,
        "explain",
        "break one row's reward into contributions",
        "specc explain out/safety row.json\nhead -1 data.jsonl | specc explain out/safety - --json",
    )
    e.add_argument("artifact", metavar="ARTIFACT", help="a fitted artifact directory")
    e.add_argument("row", metavar="ROW.json", help="a JSON file with one row, or - for stdin")
    e.add_argument(
        "--grader",
        default="labels",
        metavar="G",
        help=f"{_GRADERS} (default: labels, the row's own proposition values)",
    )
    _output_options(e, "the explanation")
    e.set_defaults(func=cmd_explain)

    _add_serve(sub)
    return p


def _add_serve(sub: Any) -> None:
    from specc.serve.config import DEFAULT_EOS_TEXTS, LagrangeOptions, ServeConfig

    d = ServeConfig()
    lo = LagrangeOptions()
    s = _command(
        sub,
        "serve",
        "serve the reward over HTTP (OpenRLHF's /get_reward, /score)",
        "specc serve out/safety --grader hf:models/grader --port 8000\n"
        "# then, in OpenRLHF (docs/integrations.md):\n"
        "#   python -m openrlhf.cli.train_ppo_ray ... --data.label_key response_type \\\n"
        "#     --reward.remote_url http://127.0.0.1:8000/get_reward",
        description=_wrap(
            "A reward server: OpenRLHF's remote reward protocol on POST /get_reward, "
            "plain rows on POST /score, GET /health and GET /metrics (Prometheus text). "
            "Concurrent requests are graded together in micro-batches."
        ),
    )
    s.add_argument("artifact", metavar="ARTIFACT", help="a compiled artifact with fitted weights")
    s.add_argument(
        "--grader",
        required=True,
        metavar="G",
        help=f"{_GRADERS} (required)",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    s.add_argument(
        "--port", type=int, default=8000, help="port; 0 picks a free one (default: 8000)"
    )
    s.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other than loopback (default: off; set --api-key too)",
    )
    s.add_argument(
        "--api-key",
        default=os.environ.get("SPECC_SERVE_API_KEY"),
        metavar="KEY",
        help="require this key as 'Authorization: Bearer KEY', 'X-API-Key: KEY' or "
        "?api_key=KEY (default: $SPECC_SERVE_API_KEY, else no key)",
    )
    s.add_argument(
        "--response-type",
        default=None,
        metavar="NAME",
        help="response type of /get_reward samples whose label is empty (default: none, "
        "labels are required)",
    )
    s.add_argument(
        "--eos-text",
        action="append",
        metavar="TEXT",
        help="end-of-sequence text stripped from the end of each response; repeat for "
        f"several (default: {' '.join(DEFAULT_EOS_TEXTS)})",
    )
    s.add_argument(
        "--keep-eos", action="store_true", help="strip no end-of-sequence text (default: off)"
    )
    s.add_argument(
        "--no-constraints",
        action="store_true",
        help="return unshaped rewards even when the policy has constraints (default: shape)",
    )
    numbers: tuple[tuple[str, type, Any, str, str], ...] = (
        ("--max-batch", int, d.max_batch_rows, "N", "rows graded together at most"),
        ("--max-wait-ms", float, d.max_wait_ms, "MS", "under load, ms a batch waits to fill"),
        ("--max-queue", int, d.max_queue_rows, "N", "rows waiting at most; more get HTTP 503"),
        ("--max-request-rows", int, d.max_request_rows, "N", "rows in one request at most"),
        ("--max-body-bytes", int, d.max_body_bytes, "BYTES", "largest body; larger: HTTP 413"),
        (
            "--body-timeout",
            float,
            d.body_timeout_s,
            "SECONDS",
            "for a request's head, then its body; slower: closed, or HTTP 408",
        ),
        ("--max-connections", int, d.max_connections, "N", "open connections; more get HTTP 503"),
        ("--shutdown-timeout", float, 60.0, "SECONDS", "on SIGTERM, to finish requests in flight"),
        ("--lambda-every", int, lo.every, "N", "observed completions per multiplier step"),
        ("--lambda-init", float, lo.lambda_init, "X", "initial multiplier"),
        ("--lambda-lr", float, lo.lr, "X", "learning rate of log lambda"),
        ("--lambda-window", int, lo.window, "N", "costs in each multiplier's window"),
        ("--lambda-max", float, lo.lambda_max, "X", "largest multiplier"),
        ("--lambda-delay", int, lo.delay, "N", "steps that only fill the window"),
    )
    for flag, kind, default, metavar, what in numbers:
        shown = "none" if default is None else str(default) if kind is int else f"{default:g}"
        s.add_argument(
            flag, type=kind, default=default, metavar=metavar, help=f"{what} (default: {shown})"
        )
    s.add_argument(
        "--lambda-state",
        default=None,
        metavar="PATH",
        help="JSON file the multipliers are restored from and saved to after each step "
        "(default: none, they start afresh)",
    )
    add_model_options(s)
    s.set_defaults(func=cmd_serve)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return int(Exit.USAGE)
    func: Callable[[argparse.Namespace], int] = args.func
    if getattr(args, "quiet", False):
        _quiet_third_party()
    try:
        return func(args)
    except SpecError as exc:
        sources = getattr(exc, "sources", {})
        _print_diagnostics(exc.diagnostics, sources, "text")
        return int(Exit.ERRORS)
    except DataError as exc:
        print(f"specc: error: {exc}", file=sys.stderr)
        return int(Exit.ERRORS)
    except UsageError as exc:
        print(f"specc: error: {exc}", file=sys.stderr)
        return int(Exit.USAGE)
    except SpecccError as exc:
        print(f"specc: error: {exc}", file=sys.stderr)
        return int(Exit.ERRORS)
    except KeyboardInterrupt:
        print("specc: interrupted", file=sys.stderr)
        return int(Exit.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`| head`): what the command found was not all said,
        # so it does not claim success (a failing `specc check 2>&1 | head` in CI
        # exited 0). Later writes, at exit too, go nowhere instead of failing again.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            for stream in (sys.stdout, sys.stderr):
                os.dup2(devnull, stream.fileno())
        return int(Exit.PIPE)
    except OSError as exc:  # disk full, permission denied, ... where no caller said more
        from specc.oserrors import os_error

        print(f"specc: error: {os_error(exc)}", file=sys.stderr)
        return int(Exit.USAGE)
    except Exception as exc:  # the last line of defence: no tracebacks for users
        if args.debug:
            raise
        print(
            f"specc: internal error: {type(exc).__name__}: {exc}\n"
            "  = hint: this is a bug in specc; rerun with --debug and report the traceback",
            file=sys.stderr,
        )
        return int(Exit.INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
