"""The compiled artifact: its manifest schema and :func:`load_artifact`.

The artifact directory is what every stage after ``specc compile`` works from; it is
self-contained (no re-parsing of the spec) and content-addressed by ``spec_hash``.

>>> art = load_artifact("out/minimal")          # doctest: +SKIP
>>> art.response_type("Hard Refuse").features   # doctest: +SKIP
['prop:apology', ..., 'class:ideal', 'class:less_good', 'class:unacceptable']
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from specc.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from specc.logic.runtime import CompiledRules

FORMAT = "specc.artifact/1"
CONVERSATION_SLOT = "{{conversation}}"
COMPLETION_SLOT = "{{completion}}"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class GraderEntry(_Model):
    yes: tuple[str, ...]
    no: tuple[str, ...]
    conversation_slot: str = CONVERSATION_SLOT
    completion_slot: str = COMPLETION_SLOT


class TierEntry(_Model):
    name: str
    margin: float | None


class PropositionEntry(_Model):
    name: str
    kind: Literal["llm", "rules"]
    description: str | None = None
    prompt: str | None = None  # path relative to the artifact, for kind == "llm"
    prompt_sha256: str | None = None
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
    spec_hash: str
    grader: GraderEntry
    tiers: tuple[TierEntry, ...]
    propositions: tuple[PropositionEntry, ...]
    derived: tuple[DerivedEntry, ...]
    response_types: tuple[ResponseTypeEntry, ...]
    constraints: tuple[ConstraintEntry, ...]


class Artifact:
    """A loaded artifact directory. Cheap to construct; rules load on first use."""

    def __init__(self, path: Path, manifest: Manifest):
        self.path = path
        self.manifest = manifest
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
            self._prompts[name] = (self.path / entry.prompt).read_text(encoding="utf-8")
        return self._prompts[name]

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

        data = json.loads((self.path / "rules.json").read_text(encoding="utf-8"))
        return CompiledRules.from_json(data)


def load_artifact(path: str | Path) -> Artifact:
    """Load an artifact directory written by ``specc compile``."""
    root = Path(path)
    manifest_path = root / "manifest.json"
    try:
        raw = manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"{root}: not a specc artifact (no manifest.json); "
            "build one with `specc compile SPEC -o DIR`"
        ) from None
    except OSError as exc:
        raise UsageError(f"{manifest_path}: cannot read: {exc.strerror}") from None
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError as exc:
        raise UsageError(
            f"{manifest_path}: invalid manifest ({exc.error_count()} problems); "
            "recompile the spec with this version of specc"
        ) from None
    return Artifact(root, manifest)
