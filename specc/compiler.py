"""IR to artifact directory (``specc compile SPEC -o DIR``).

The artifact is content-addressed and reproducible: ``ir.json`` is the canonical IR
(spans stripped, keys sorted) and ``spec_hash`` is its sha256; every file is written
with sorted keys and no timestamps, so two compiles of the same spec produce the
same bytes on any machine and from any working directory. ``seal.json`` records the
sha256 of every file (signed when a key is configured, see :mod:`specc.integrity`),
and every loader verifies it.

>>> manifest = compile_spec("policies/minimal.rbr", "out/minimal")   # doctest: +SKIP
>>> manifest.spec_hash[:8]                                           # doctest: +SKIP
'3f2a9c1e'
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from specc import ir
from specc.artifact import (
    FORMAT,
    IR_FILE,
    MANIFEST_FILE,
    RULES_FILE,
    ConstraintEntry,
    DerivedEntry,
    GraderEntry,
    Manifest,
    PropositionEntry,
    ResponseTypeEntry,
    RewardEntry,
    TierEntry,
)
from specc.errors import SpecccError, SpecError, UsageError
from specc.integrity import SEAL_FILE, write_unit
from specc.prompts import render_prompts, template_text

__all__ = ["DEFAULT_REWARD", "canonical_ir", "compile_spec"]

DEFAULT_REWARD = {
    "features": ("propositions", "classes"),
    "margin": 1.0,
    "weight_decay": None,  # None: chosen by validation (L-BFGS), see docs/fitting.md
    "steps": 1000,
    "lr": 0.01,
    "optimizer": "lbfgs",
    "base_reward": False,
}


_NUMBER_LIST = re.compile(r"\[\s+(-?[0-9.e+-]+(?:,\s+-?[0-9.e+-]+)*)\s+\]")


def _dumps(data: Any) -> str:
    """Indented, sorted JSON; lists of numbers (BDD nodes) stay on one line."""
    text = json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False)
    text = _NUMBER_LIST.sub(
        lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text
    )
    return text + "\n"


def canonical_ir(spec: ir.Spec) -> bytes:
    """The hashed form of a spec: no spans, sorted keys, compact."""
    data = ir.strip_spans(spec.model_dump(mode="json"))
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --------------------------------------------------------------------------- manifest


def _reward(spec: ir.Spec, rt: ir.ResponseType) -> tuple[ir.RewardSettings, RewardEntry]:
    base = ir.RewardSettings(span=spec.span, **DEFAULT_REWARD)  # type: ignore[arg-type]
    merged = base.merged(spec.reward).merged(rt.reward)
    entry = RewardEntry(
        margin=float(merged.margin or 0.0),
        weight_decay=None if merged.weight_decay is None else float(merged.weight_decay),
        steps=int(merged.steps or 1),
        lr=float(merged.lr or DEFAULT_REWARD["lr"]),  # type: ignore[arg-type]
        optimizer=merged.optimizer or "lbfgs",
        base_reward=bool(merged.base_reward),
    )
    return merged, entry


def build_manifest(spec: ir.Spec, spec_hash: str, prompts: dict[str, str]) -> Manifest:
    from specc import __version__
    from specc.logic.runtime import compile_rules

    rules = compile_rules(spec)
    order = {p.name: i for i, p in enumerate(spec.propositions)}
    derived_names = {d.name for d in spec.derived}
    tier_order = spec.tier_names()
    tier_margin = {t.name: t.margin for t in spec.tiers}

    def support(root: str) -> list[str]:
        return list(rules.support(root))

    props = []
    for p in spec.propositions:
        if p.question is not None:
            props.append(
                PropositionEntry(
                    name=p.name,
                    kind="llm",
                    description=p.description,
                    prompt=f"prompts/{p.name}.txt",
                    prompt_sha256=hashlib.sha256(prompts[p.name].encode()).hexdigest(),
                )
            )
        else:
            assert p.extractor is not None
            props.append(
                PropositionEntry(
                    name=p.name,
                    kind="rules",
                    description=p.description,
                    extractor=ir.strip_spans(p.extractor.model_dump(mode="json")),
                )
            )

    constraints: list[ConstraintEntry] = []
    for c in spec.constraints:
        applies = tuple(r.name for r in c.applies_to) or tuple(
            rt.name for rt in spec.response_types
        )
        constraints.append(
            ConstraintEntry(
                name=c.name,
                description=c.description,
                expr=str(c.cost),
                limit=c.limit,
                applies_to=applies,
                propositions=tuple(support(f"cost:{c.name}")),
            )
        )

    types = []
    for rt in spec.response_types:
        merged, reward = _reward(spec, rt)
        tiers = sorted({r.tier for r in rt.rules}, key=tier_order.index)
        rule_props: set[str] = set()
        for tier in tiers:
            rule_props.update(support(f"tier:{rt.name}:{tier}"))
        extra_props: list[str] = []
        extra_derived: list[str] = []
        for ref in merged.extra or ():
            if ref.name in derived_names:
                extra_derived.append(ref.name)
                rule_props.update(support(f"derived:{ref.name}"))
            elif ref.name not in rule_props and ref.name not in extra_props:
                extra_props.append(ref.name)
        feature_props = sorted(rule_props, key=order.__getitem__) + extra_props
        graded = set(feature_props)
        for entry in constraints:
            if rt.name in entry.applies_to:
                graded.update(entry.propositions)
        features = []
        kinds = merged.features or ()
        if "propositions" in kinds:
            features += [f"prop:{n}" for n in feature_props]
        if "derived" in kinds:
            used = _derived_used(rt, spec) + [d for d in extra_derived]
            features += [f"derived:{n}" for n in dict.fromkeys(used)]
        if "classes" in kinds:
            features += [f"class:{t}" for t in tiers]
        types.append(
            ResponseTypeEntry(
                name=rt.name,
                display=rt.display,
                tiers=tuple(tiers),
                tier_margins={t: _margin(tier_margin.get(t), reward.margin) for t in tiers},
                rules={r.tier: ("otherwise" if r.when is None else str(r.when)) for r in rt.rules},
                propositions=tuple(sorted(graded, key=order.__getitem__)),
                features=tuple(features),
                reward=reward,
            )
        )

    g = spec.grader or ir.GraderSettings(span=spec.span)
    return Manifest(
        name=spec.name,
        version=spec.version,
        specc_version=__version__,
        spec_hash=spec_hash,
        grader=GraderEntry(yes=g.yes, no=g.no),
        tiers=tuple(TierEntry(name=t, margin=tier_margin.get(t)) for t in tier_order),
        propositions=tuple(props),
        derived=tuple(
            DerivedEntry(
                name=d.name, expr=str(d.expr), propositions=tuple(support(f"derived:{d.name}"))
            )
            for d in spec.derived
        ),
        response_types=tuple(types),
        constraints=tuple(constraints),
    )


def _margin(tier: float | None, default: float) -> float:
    return default if tier is None else tier


def _derived_used(rt: ir.ResponseType, spec: ir.Spec) -> list[str]:
    """Derived propositions a response type's rules mention, transitively, in spec order."""
    derived = {d.name: d for d in spec.derived}
    found: set[str] = set()
    stack = [r.name for rule in rt.rules if rule.when for r in ir.expr_names(rule.when)]
    while stack:
        name = stack.pop()
        if name in derived and name not in found:
            found.add(name)
            stack.extend(r.name for r in ir.expr_names(derived[name].expr))
    return [d.name for d in spec.derived if d.name in found]


# --------------------------------------------------------------------------- writing


#: The files of a compile; everything else in an artifact directory (the weights unit,
#: reports, features, the grading cache) is carried over when it is recompiled.
_COMPILED = frozenset({MANIFEST_FILE, IR_FILE, RULES_FILE, "prompts", SEAL_FILE})


def _write_tree(out: Path, files: dict[str, str], spec_hash: str) -> None:
    """Write the artifact's files and their seal as the directory ``out``: a sibling
    temp directory renamed into place, so a failed compile (a full disk included)
    leaves the old artifact, or nothing. What was written into ``out`` after the last
    compile (fitted weights, reports, features, the grading cache) is carried over;
    weights of another spec hash are refused when loaded ("refit"). An ``out`` that is
    a symbolic link is followed: the user named it."""
    if out.is_symlink():
        out = out.resolve()
    if out.is_dir() and any(out.iterdir()) and not _is_artifact(out):
        raise UsageError(
            f"{out} exists and is not a specc artifact\n  = hint: choose an empty or new directory"
        )
    write_unit(
        out,
        {rel: text.encode() for rel, text in files.items()},
        kind="artifact",
        spec_hash=spec_hash,
        keep=lambda name: name not in _COMPILED,
    )


def _is_artifact(path: Path) -> bool:
    """Whether ``path`` holds a specc artifact: a ``manifest.json`` of specc's format.
    (Only the name would let a compile replace a web app's ``manifest.json`` and the
    ``prompts/`` beside it.)"""
    from specc.files import PathRefused, read_inside
    from specc.integrity import MAX_FILE_BYTES
    from specc.jsonl import parse_line

    try:
        manifest = parse_line(read_inside(path, MANIFEST_FILE, MAX_FILE_BYTES), MANIFEST_FILE)
    except (OSError, PathRefused, SpecccError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def compile_loaded(spec: ir.Spec) -> tuple[Manifest, dict[str, str]]:
    """Build every artifact file's text in memory."""
    from specc.logic.runtime import compile_rules

    canonical = canonical_ir(spec)
    digest = hashlib.sha256(canonical)
    if spec.grader is not None and spec.grader.template_file is not None:
        # The template's text is part of the spec's meaning, not only its path.
        digest.update(b"\0" + template_text(spec).encode())
    spec_hash = digest.hexdigest()
    prompts = render_prompts(spec)
    manifest = build_manifest(spec, spec_hash, prompts)
    files = {
        MANIFEST_FILE: _dumps(manifest.model_dump(mode="json")),
        IR_FILE: _dumps(json.loads(canonical)),
        RULES_FILE: _dumps(compile_rules(spec).to_json()),
    }
    for name, text in prompts.items():
        files[f"prompts/{name}.txt"] = text
    return manifest, files


def compile_spec(
    spec_path: str | Path, out_dir: str | Path, allow_paths: Iterable[str | Path] = ()
) -> Manifest:
    """Check a spec and write its artifact; raises SpecError if the spec has errors.
    ``allow_paths`` as for :func:`specc.checker.check_file`."""
    from specc.checker import check_file

    report = check_file(spec_path, allow_paths)
    errors = [d for d in report.diagnostics if d.severity == "error"]
    if errors or report.spec is None:
        exc = SpecError(errors or report.diagnostics)
        exc.sources = report.load.sources  # type: ignore[attr-defined]
        raise exc
    manifest, files = compile_loaded(report.spec)
    _write_tree(Path(out_dir), files, manifest.spec_hash)
    return manifest
