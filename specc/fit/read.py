"""Reading a features file (``specc grade``'s output) straight into fit arrays.

Streaming: each line goes through :mod:`specc.jsonl`'s bounded reader (a length cap,
strict UTF-8, bounded nesting and numbers, lines split on ``\\n`` only, so an id
holding U+2028 is one row) and only the fields a fit needs are kept: the response
type, prompt id, tier label, feature vector and base reward. Feature vectors are
converted to float32 every :data:`CHUNK_ROWS` rows, after their values are checked in
float64 (a 1e308 is caught before float32 would turn it into infinity). So memory
is the float32 matrix plus one chunk of Python lists, never a list of row objects.
JSON decoding is the floor of the cost (measured: the bounded decoder is about 1.3x
``json.loads`` without bounds); a vectorised parse of the text would have to
re-implement JSON's grammar for untrusted input.

Every problem is a :class:`~specc.errors.DataError` naming ``file:line``.

>>> table = read_feature_table("features.jsonl", load_artifact("out/a"))  # doctest: +SKIP
>>> rows = table.types["hard_refuse"]; rows.features.shape                # doctest: +SKIP
(5000, 20)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from specc.audit import EPS, is_certain
from specc.errors import DataError, did_you_mean
from specc.fit.data import check_base_reward, check_values
from specc.jsonl import iter_jsonl

if TYPE_CHECKING:
    from specc.artifact import Artifact, ResponseTypeEntry
    from specc.grade.features import FeatureRow

#: Rows converted to float32 together.
CHUNK_ROWS = 1 << 16

__all__ = [
    "AuditRow",
    "AuditRows",
    "FeatureTable",
    "TypeRows",
    "read_feature_table",
    "table_from_rows",
]


@dataclass(frozen=True)
class TypeRows:
    """The rows of one response type, in file order, as arrays."""

    response_type: str
    features: npt.NDArray[np.float32]  # (n, d)
    prompt_ids: npt.NDArray[np.str_]  # (n,)
    tier_rank: npt.NDArray[np.int64]  # (n,) 0 = best
    base_reward: npt.NDArray[np.float64] | None  # (n,) when the type fits with it
    lines: npt.NDArray[np.int64]  # (n,) 1-based line numbers
    source: str

    @property
    def n_rows(self) -> int:
        return int(self.lines.shape[0])

    def locate(self, i: int) -> str:
        """``file:line`` of row ``i``."""
        return f"{self.source}:{int(self.lines[i])}"


@dataclass(frozen=True)
class AuditRow:
    """What the label audit (:func:`specc.audit.audit_labels`) reads of a feature row:
    its propositions stand in as ``{}`` when all are 0/1 (else one value of 0.5) and
    its classes as the one certain tier, if any."""

    id: str
    response_type: str
    completion_label: str | None
    propositions: Mapping[str, float]
    classes: Mapping[str, float]


_UNCERTAIN: Mapping[str, float] = {"": 0.5}
_NONE: Mapping[str, float] = {}


class AuditRows(Sequence[AuditRow]):
    """The rows of a features file, in file order, as the label audit sees them (a
    few fields a row, not the parsed rows)."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, str, str | None, bool, str | None]] = []

    def add(self, obj: dict[str, Any]) -> None:
        label = obj.get("completion_label")
        props = obj.get("propositions")
        # is_certain, inlined: a call per value would slow every row of the read
        certain = isinstance(props, dict) and all(
            isinstance(p, (int, float)) and (p <= EPS or p >= 1.0 - EPS) for p in props.values()
        )
        classes = obj.get("classes")
        implied = None
        if certain and isinstance(classes, dict):
            implied = next(
                (
                    str(t)
                    for t, p in classes.items()
                    if isinstance(p, (int, float)) and p >= 1.0 - EPS
                ),
                None,
            )
        self._rows.append(
            (
                str(obj.get("id", "")),
                str(obj.get("response_type", "")),
                label if isinstance(label, str) else None,
                certain,
                implied,
            )
        )

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int) -> AuditRow:  # type: ignore[override]
        ident, rt, label, certain, implied = self._rows[i]
        return AuditRow(
            ident,
            rt,
            label,
            _NONE if certain else _UNCERTAIN,
            {implied: 1.0} if implied is not None else _NONE,
        )


@dataclass(frozen=True)
class FeatureTable:
    """A features file read for fitting: the rows of each response type, and what the
    label audit needs of every row (``audit``, in file order)."""

    source: str
    types: dict[str, TypeRows]
    rows: int
    audit: AuditRows = field(default_factory=AuditRows)


@dataclass
class _Builder:
    """Accumulates one response type's rows; converts features chunk by chunk."""

    rt: ResponseTypeEntry
    source: str
    tier_index: dict[str, int]
    blocks: list[npt.NDArray[np.float32]] = field(default_factory=list)
    pending: list[Any] = field(default_factory=list)
    pending_lines: list[int] = field(default_factory=list)
    prompt_ids: list[str] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)
    base: list[float] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def add(self, obj: dict[str, Any], line: int, where: str) -> None:
        rt = self.rt
        prompt_id = obj.get("prompt_id")
        if isinstance(prompt_id, bool) or not isinstance(prompt_id, (str, int)):
            raise DataError(
                "row has no 'prompt_id' (a string)",
                where,
                "feature files are written by `specc grade`; regenerate it",
            )
        values = obj.get("features")
        if not isinstance(values, list) or len(values) != len(rt.features):
            got = len(values) if isinstance(values, list) else type(values).__name__
            raise DataError(
                f"expected {len(rt.features)} features for response type {rt.name!r}, got {got}",
                where,
                "the features were graded with another artifact; regrade with this one",
            )
        if rt.reward.base_reward:
            value = obj.get("base_reward")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DataError(
                    "row has no numeric 'base_reward' but the spec fits with base_reward",
                    where,
                    "add the base reward-model score to every row, or set "
                    "base_reward = false in the spec",
                )
            self.base.append(float(value))
        self.ranks.append(self._rank(obj, where))
        self.prompt_ids.append(str(prompt_id))
        self.pending.append(values)
        self.pending_lines.append(line)
        self.lines.append(line)
        if len(self.pending) >= CHUNK_ROWS:
            self.flush()

    def _rank(self, obj: dict[str, Any], where: str) -> int:
        rt = self.rt
        label = obj.get("completion_label")
        if label is None:
            return self._rank_from_classes(obj.get("classes"), where)
        rank = self.tier_index.get(label) if isinstance(label, str) else None
        if rank is None:
            hint = did_you_mean(str(label), rt.tiers)
            raise DataError(
                f"unknown tier label {label!r} for response type {rt.name!r}; "
                f"its tiers are {', '.join(rt.tiers)}",
                where,
                hint or "label each completion with one of the response type's tiers",
            )
        return rank

    def _rank_from_classes(self, classes: Any, where: str) -> int:
        """Without a label, 0/1 propositions decide the tier through the rules: the
        row's class probabilities must all be 0 or 1."""
        rt = self.rt
        found = [classes.get(t) for t in rt.tiers] if isinstance(classes, dict) else []
        probs = [float(p) for p in found if isinstance(p, (int, float)) and not isinstance(p, bool)]
        if len(probs) == len(rt.tiers):
            certain = [i for i, p in enumerate(probs) if p >= 1.0 - EPS]
            if len(certain) == 1 and all(is_certain(p) for p in probs):
                return certain[0]
        raise DataError(
            "row has no completion_label and its propositions are not all 0/1",
            where,
            f"label each completion with one of {', '.join(rt.tiers)}",
        )

    def flush(self) -> None:
        """Convert the pending feature lists: check in float64, keep float32."""
        if not self.pending:
            return
        lines = self.pending_lines

        def where(i: int) -> str:
            return f"{self.source}:{lines[i]}"

        try:
            block = np.array(self.pending, dtype=np.float64)
        except (TypeError, ValueError):
            bad = next(
                i
                for i, vs in enumerate(self.pending)
                if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs)
            )
            raise DataError(
                "features must be numbers", where(bad), "regrade this row, or drop it"
            ) from None
        if block.ndim != 2:
            raise DataError("features must be numbers", where(0))
        for i, vs in enumerate(self.pending):  # numpy took true/false as 1/0
            # `True in vs` also matches 1 and 0: look closer only then
            if (True in vs or False in vs) and any(isinstance(v, bool) for v in vs):
                raise DataError("features must be numbers, not true/false", where(i))
        check_values(block, self.rt.features, where)
        self.blocks.append(block.astype(np.float32))
        self.pending = []
        self.pending_lines = []

    def build(self) -> TypeRows:
        self.flush()
        d = len(self.rt.features)
        features = (
            np.concatenate(self.blocks) if self.blocks else np.zeros((0, d), dtype=np.float32)
        )
        base = None
        if self.rt.reward.base_reward:
            base = np.asarray(self.base, dtype=np.float64)
            check_base_reward(base, lambda i: f"{self.source}:{self.lines[i]}")
        return TypeRows(
            response_type=self.rt.name,
            features=features,
            prompt_ids=np.asarray(self.prompt_ids, dtype=np.str_),
            tier_rank=np.asarray(self.ranks, dtype=np.int64),
            base_reward=base,
            lines=np.asarray(self.lines, dtype=np.int64),
            source=self.source,
        )


class _Table:
    """Routes rows to their response type's builder."""

    def __init__(self, artifact: Artifact, source: str):
        self.artifact = artifact
        self.source = source
        self.builders: dict[str, _Builder] = {}
        self.rows = 0
        self.audit = AuditRows()

    def add(self, obj: Any, line: int, where: str) -> None:
        if not isinstance(obj, dict):
            raise DataError("a feature row must be a JSON object", where)
        name = obj.get("response_type")
        builder = self.builders.get(name) if isinstance(name, str) else None
        if builder is None:
            if not isinstance(name, str):
                raise DataError(
                    "row has no 'response_type' (a string)",
                    where,
                    "feature files are written by `specc grade`; regenerate it",
                )
            try:
                rt = self.artifact.response_type(name)
            except KeyError as exc:
                raise DataError(
                    str(exc.args[0]),
                    where,
                    "the features were graded with another spec; regrade them",
                ) from None
            builder = self.builders.get(rt.name)
            if builder is None:
                index = {t: i for i, t in enumerate(rt.tiers)}
                builder = self.builders[rt.name] = _Builder(rt, self.source, index)
            self.builders[name] = builder
        builder.add(obj, line, where)
        self.audit.add(obj)
        self.rows += 1

    def build(self) -> FeatureTable:
        if self.rows == 0:
            raise DataError("no feature rows: the file is empty", self.source)
        unique = {id(b): b for b in self.builders.values()}.values()
        types = {b.rt.name: b.build() for b in unique}
        return FeatureTable(self.source, types, self.rows, self.audit)


def table_from_rows(
    artifact: Artifact, rows: Sequence[FeatureRow], source: str = "features"
) -> FeatureTable:
    """A :class:`FeatureTable` from rows in memory (``specc.grade.FeatureRow``), with
    the same checks; row ``i`` is "line" ``i + 1`` of ``source``."""
    table = _Table(artifact, source)
    for i, row in enumerate(rows, start=1):
        obj = {
            "id": row.id,
            "response_type": row.response_type,
            "prompt_id": row.prompt_id,
            "completion_label": row.completion_label,
            "features": list(row.features),
            "base_reward": row.base_reward,
            "propositions": row.propositions,
            "classes": row.classes,
        }
        table.add(obj, i, f"{source}:{i}")
    return table.build()


def read_feature_table(path: str | Path, artifact: Artifact) -> FeatureTable:
    """Read ``path`` for fitting against ``artifact`` (see the module docstring).

    A row of an unknown response type, with a missing or wrong field, a tier label
    that is not one of its type's tiers, or a value out of bounds
    (:mod:`specc.fit.data`) is a :class:`DataError` at its ``file:line``; an empty
    file is one too."""
    table = _Table(artifact, str(path))
    for line, where, obj in iter_jsonl(path, "features file"):
        table.add(obj, line, where)
    return table.build()
