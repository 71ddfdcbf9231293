"""The compiled artifact: its manifest schema and :func:`load_artifact`.

The artifact directory is what every stage after ``specc compile`` works from; it is
self-contained (no re-parsing of the spec) and content-addressed by ``spec_hash``.
It is a sealed unit (:mod:`specc.integrity`): :func:`load_artifact` reads every file
its ``seal.json`` lists once, checks their sha256 (and the signature, when a signing
key is configured), and serves prompts and rules from those verified bytes only.

>>> art = load_artifact("out/minimal")          # doctest: +SKIP
>>> art.response_type("Hard Refuse").features   # doctest: +SKIP
['prop:apology', ..., 'class:ideal', 'class:less_good', 'class:unacceptable']
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from specc.errors import DataError, UsageError, did_you_mean
from specc.files import PathRefused, check_relative
from specc.integrity import SEAL_FILE, Unit, read_unit, signing_key
from specc.jsonl import parse_line

if TYPE_CHECKING:
    from specc.logic.runtime import CompiledRules

FORMAT = "specc.artifact/1"
CONVERSATION_SLOT = "{{conversation}}"
COMPLETION_SLOT = "{{completion}}"
MANIFEST_FILE = "manifest.json"
RULES_FILE = "rules.json"
IR_FILE = "ir.json"
#: The hint of every error about a modified or broken artifact.
RECOMPILE = "the artifact was altered or corrupted; recompile it with `specc compile SPEC -o DIR`"


def _relative(path: str) -> str:
    try:
        return check_relative(path)
    except PathRefused as exc:
        raise ValueError(str(exc)) from None


#: A path inside the artifact: relative, normalised, no ``..``.
RelativePath = Annotated[str, AfterValidator(_relative)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class GraderEntry(_Model):
    yes: tuple[str, ...] = Field(min_length=1)
    no: tuple[str, ...] = Field(min_length=1)
    conversation_slot: NonEmpty = CONVERSATION_SLOT
    completion_slot: NonEmpty = COMPLETION_SLOT


class TierEntry(_Model):
    name: str
    margin: float | None


class PropositionEntry(_Model):
    name: str
    kind: Literal["llm", "rules"]
    description: str | None = None
    prompt: RelativePath | None = None  # path relative to the artifact, for kind == "llm"
    prompt_sha256: Sha256 | None = None
    extractor: dict[str, Any] | None = None  # for kind == "rules"


class DerivedEntry(_Model):
    name: str
    expr: str
    propositions: tuple[str, ...]  # the base propositions it depends on


class RewardEntry(_Model):
    margin: float
    weight_decay: float | None  # None: the fit chooses it by validation
    steps: int
    lr: float
    optimizer: Literal["adamw", "lbfgs"]
    base_reward: bool


class ResponseTypeEntry(_Model):
    name: str
    display: str | None
    tiers: tuple[str, ...]  # best first
    tier_margins: dict[str, float]  # per tier, the margin it must win by
    rules: dict[str, str]  # tier -> expression text (for review)
    propositions: tuple[str, ...]  # base propositions to grade for this type
    features: tuple[str, ...]  # prop:<n> | derived:<n> | class:<tier>
    reward: RewardEntry


class ConstraintEntry(_Model):
    name: str
    description: str | None
    expr: str
    limit: float
    applies_to: tuple[str, ...]  # response type names; all when the spec names none
    propositions: tuple[str, ...]


class Manifest(_Model):
    format: Literal["specc.artifact/1"] = "specc.artifact/1"
    name: str
    version: str
    specc_version: str
    spec_hash: Sha256
    grader: GraderEntry
    tiers: tuple[TierEntry, ...]
    propositions: tuple[PropositionEntry, ...]
    derived: tuple[DerivedEntry, ...]
    response_types: tuple[ResponseTypeEntry, ...]
    constraints: tuple[ConstraintEntry, ...]


class Artifact:
    """A loaded artifact directory. Cheap to construct; rules load on first use.

    ``files`` holds the verified bytes of the artifact's files (relative path ->
    bytes); prompts and rules are read from it, never from the disk again."""

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        files: Mapping[str, bytes] | None = None,
        key: bytes | None = None,
    ):
        self.path = path
        self.manifest = manifest
        self.files: Mapping[str, bytes] = dict(files or {})
        self.key = key
        self._props = {p.name: p for p in manifest.propositions}
        self._types = {rt.name: rt for rt in manifest.response_types}
        self._display = {rt.display: rt for rt in manifest.response_types if rt.display}
        self._prompts: dict[str, str] = {}

    @property
    def spec_hash(self) -> str:
        return self.manifest.spec_hash

    def proposition(self, name: str) -> PropositionEntry:
        return self._props[name]

    def response_type(self, key: str) -> ResponseTypeEntry:
        """Look a response type up by identifier or display name.

        Raises ``KeyError`` whose message suggests the closest name."""
        found = self._types.get(key) or self._display.get(key)
        if found is None:
            names = [*self._types, *self._display]
            hint = did_you_mean(key, names)
            raise KeyError(
                f"unknown response type {key!r}"
                + (f"; {hint}" if hint else f"; known: {', '.join(sorted(self._types))}")
            )
        return found

    def prompt(self, name: str) -> str:
        """The full prompt template of an LLM-graded proposition (slots unfilled)."""
        if name not in self._prompts:
            entry = self._props[name]
            if entry.prompt is None:
                raise KeyError(f"proposition {name!r} is graded by rules, not a prompt")
            self._prompts[name] = self._text(entry.prompt)
        return self._prompts[name]

    def _text(self, rel: str) -> str:
        data = self.files.get(rel)
        if data is None:
            raise DataError(f"not in {SEAL_FILE}", where=str(self.path / rel), hint=RECOMPILE)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError("not UTF-8 text", where=str(self.path / rel), hint=RECOMPILE) from None

    def unit(self, name: str, *, remedy: str) -> Unit:
        """Read and verify a unit written beside the artifact after compile (``weights``
        by ``specc fit``; later state such as a calibration), bound to this artifact's
        spec hash and checked with the same key (see :func:`specc.integrity.read_unit`)."""
        return read_unit(
            self.path / check_relative(name),
            kind=name,
            spec_hash=self.spec_hash,
            remedy=remedy,
            key=self.key,
        )

    def prompt_prefix(self, name: str) -> str:
        """The static part of a prompt: everything before the first slot."""
        text = self.prompt(name)
        g = self.manifest.grader
        cut = min(
            i for i in (text.find(g.conversation_slot), text.find(g.completion_slot)) if i >= 0
        )
        return text[:cut]

    def render_prompt(self, name: str, conversation: str, completion: str) -> str:
        """Fill the slots verbatim (no template evaluation of user text)."""
        g = self.manifest.grader
        text = self.prompt(name)
        # Split first so that slot markers inside the conversation are never replaced.
        head, sep, tail = text.partition(g.conversation_slot)
        if sep:
            return head + conversation + tail.replace(g.completion_slot, completion)
        return text.replace(g.completion_slot, completion)

    @cached_property
    def rules(self) -> CompiledRules:
        from specc.logic.runtime import CompiledRules

        where = str(self.path / RULES_FILE)
        try:
            return CompiledRules.from_json(_parse_json(self.files.get(RULES_FILE, b""), where))
        except DataError as exc:
            if exc.where is not None:
                raise
            raise DataError(_bare(exc), where=where, hint=RECOMPILE) from None


def _bare(exc: DataError) -> str:
    """A DataError's message without its location and hint."""
    text = str(exc).split("\n  = hint:", 1)[0]
    return text.removeprefix(f"{exc.where}: ") if exc.where else text


def _parse_json(text: bytes | str, where: str) -> Any:
    """A whole JSON document, with the bounds of :mod:`specc.jsonl` (depth, numbers)."""
    try:
        return parse_line(text, "")
    except DataError as exc:
        raise DataError(f"not valid JSON: {_bare(exc)}", where=where, hint=RECOMPILE) from None


def load_artifact(path: str | Path, *, key: bytes | None = None) -> Artifact:
    """Load and verify an artifact directory written by ``specc compile``.

    ``key`` is the signing key (default: the one configured by ``$SPECC_SIGNING_KEY``
    or ``$SPECC_SIGNING_KEY_FILE``, if any). A directory that is no artifact is a
    :class:`UsageError`; a modified, corrupted or unsigned (when a key is configured)
    artifact is a :class:`DataError` naming the file, with a hint to recompile."""
    root = Path(path)
    manifest_path = root / MANIFEST_FILE
    if not root.is_dir() or not (manifest_path.exists() or manifest_path.is_symlink()):
        raise UsageError(
            f"{root}: not a specc artifact (no {MANIFEST_FILE}); "
            "build one with `specc compile SPEC -o DIR`"
        )
    key = signing_key(key)
    unit = read_unit(root, kind="artifact", spec_hash=None, remedy=RECOMPILE, key=key)
    files = unit.files
    for rel in (MANIFEST_FILE, RULES_FILE, IR_FILE):
        if rel not in files:
            raise DataError(f"not listed in {SEAL_FILE}", where=str(root / rel), hint=RECOMPILE)
    try:
        manifest = Manifest.model_validate(_parse_json(files[MANIFEST_FILE], str(manifest_path)))
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise DataError(
            f"invalid manifest ({exc.error_count()} problems; first at {at}: {first['msg']})",
            where=str(manifest_path),
            hint=RECOMPILE,
        ) from None
    if manifest.spec_hash != unit.seal.spec_hash:
        raise DataError(
            f"spec_hash {manifest.spec_hash[:8]} differs from {SEAL_FILE}'s "
            f"{unit.seal.spec_hash[:8]}",
            where=str(manifest_path),
            hint=RECOMPILE,
        )
    slots = (manifest.grader.conversation_slot, manifest.grader.completion_slot)
    for entry in manifest.propositions:
        if entry.kind != "llm":
            continue
        where = str(root / (entry.prompt or f"prompts/{entry.name}.txt"))
        data = files.get(entry.prompt) if entry.prompt else None
        if data is None or entry.prompt_sha256 is None:
            raise DataError(
                f"proposition {entry.name!r} has no prompt listed in {SEAL_FILE}",
                where=where,
                hint=RECOMPILE,
            )
        if hashlib.sha256(data).hexdigest() != entry.prompt_sha256:
            raise DataError(
                f"differs from the prompt_sha256 of proposition {entry.name!r} in {MANIFEST_FILE}",
                where=where,
                hint=RECOMPILE,
            )
        if not all(slot.encode() in data for slot in slots):
            raise DataError(
                f"prompt of {entry.name!r} lacks the slots {' and '.join(slots)}",
                where=where,
                hint=RECOMPILE,
            )
    artifact = Artifact(root, manifest, files, key)
    _check_rules(artifact)
    return artifact


def _check_rules(artifact: Artifact) -> None:
    """Parse ``rules.json`` now (it is small) and check that it and the manifest agree
    on every name a later stage looks up, so that an inconsistent artifact (one forged
    with a rewritten seal included) fails the load with exit 1, not a later stage."""
    rules = artifact.rules
    m = artifact.manifest
    props = {p.name for p in m.propositions}
    derived = {d.name: d for d in m.derived}
    types = {rt.name for rt in m.response_types}

    def bad(file: str, message: str) -> DataError:
        return DataError(message, where=str(artifact.path / file), hint=RECOMPILE)

    def subset(names: Sequence[str], pool: Sequence[str] | set[str], message: str) -> None:
        unknown = sorted(set(names) - set(pool))
        if unknown:
            raise bad(MANIFEST_FILE, f"{message} {unknown[0]!r}")

    def needs(root: str, have: Sequence[str], owner: str) -> None:
        if root not in rules.roots:
            raise bad(RULES_FILE, f"no compiled rule for {root!r}")
        subset(rules.support(root), have, f"{owner} does not list proposition")

    if len(props) != len(m.propositions) or len(types) != len(m.response_types):
        raise bad(MANIFEST_FILE, "a proposition or response type is listed twice")
    for d in m.derived:
        needs(f"derived:{d.name}", d.propositions, f"derived {d.name!r}")
    for c in m.constraints:
        needs(f"cost:{c.name}", c.propositions, f"constraint {c.name!r}")
        subset(c.applies_to, types, f"constraint {c.name!r} applies to unknown response type")
    for rt in m.response_types:
        found = rules.tiers(rt.name) if rt.name in rules.response_types else None
        if found != rt.tiers or set(rt.tier_margins) != set(rt.tiers):
            raise bad(
                RULES_FILE,
                f"response type {rt.name!r} has tiers {list(found or ())} here, "
                f"{list(rt.tiers)} in {MANIFEST_FILE}",
            )
        for tier in rt.tiers:
            needs(f"tier:{rt.name}:{tier}", rt.propositions, f"response type {rt.name!r}")
        subset(rt.propositions, props, f"response type {rt.name!r} grades unknown proposition")
        for feature in rt.features:
            kind, _, name = feature.partition(":")
            ok = (
                (kind == "prop" and name in rt.propositions)
                or (kind == "class" and name in rt.tiers)
                or (
                    kind == "derived"
                    and name in derived
                    and set(derived[name].propositions) <= set(rt.propositions)
                )
            )
            if not ok:
                raise bad(
                    MANIFEST_FILE,
                    f"feature {feature!r} of response type {rt.name!r} cannot be computed",
                )
