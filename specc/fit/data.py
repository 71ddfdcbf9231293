"""Input arrays of a fit: checking them and building them from feature rows.

Every problem with the data is a :class:`~specc.errors.DataError` that names the row
(through ``locate``, e.g. ``features.jsonl:57``) and what to do about it.

Bounds: a feature named ``prop:``, ``derived:`` or ``class:`` is a probability and
must lie in [0, 1] (within :data:`PROBABILITY_SLACK`); a base reward and any other
feature must be finite with magnitude at most :data:`MAX_ABS_VALUE`, so a fit can
never overflow through its data.

>>> import numpy as np
>>> encode_tiers(["ideal", "unacceptable"], ["ideal", "less_good", "unacceptable"])
array([0, 2])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from specc.errors import DataError, did_you_mean

Locate = Callable[[int], str]
FloatArray = npt.NDArray[np.float64]
Floats = npt.NDArray[np.floating[Any]]
IntArray = npt.NDArray[np.int64]

#: Feature kinds whose values are probabilities.
PROBABILITY_KINDS = ("prop", "derived", "class")
#: How far a probability may stray outside [0, 1] (rounding in the rules' arithmetic).
PROBABILITY_SLACK = 1e-6
#: The largest magnitude of a base reward or of a feature that is not a probability.
MAX_ABS_VALUE = 1e6
#: Rows checked together (bounds the temporaries of the checks).
CHECK_CHUNK_ROWS = 1 << 16


def is_probability(feature_name: str) -> bool:
    """Whether a feature (``prop:x``, ``class:ideal``, ...) is a probability."""
    return feature_name.partition(":")[0] in PROBABILITY_KINDS and ":" in feature_name


def row_locator(locate: Locate | None) -> Locate:
    """``locate`` or the default ``row <i>`` (0-based within the arrays given)."""
    return locate if locate is not None else (lambda i: f"row {i}")


def _label(response_type: str) -> str:
    return f"response type {response_type!r}" if response_type else "this response type"


@dataclass(frozen=True)
class FitArrays:
    """Plain arrays for one response type, ready for :func:`specc.fit.fit_response_type`."""

    features: FloatArray  # (n, d)
    group: IntArray  # (n,) prompt codes
    tier_rank: IntArray  # (n,) 0 = best tier
    base_reward: FloatArray | None  # (n,) or None
    prompt_ids: tuple[str, ...]  # prompt id of each group code


def encode_tiers(
    labels: Sequence[str],
    tier_names: Sequence[str],
    *,
    locate: Locate | None = None,
    response_type: str = "",
) -> IntArray:
    """Tier labels to ranks (0 = best); an unknown label is a :class:`DataError`."""
    index = {name: i for i, name in enumerate(tier_names)}
    ranks = np.empty(len(labels), dtype=np.int64)
    where = row_locator(locate)
    for i, label in enumerate(labels):
        rank = index.get(label)
        if rank is None:
            hint = did_you_mean(str(label), tier_names)
            raise DataError(
                f"unknown tier label {label!r} for {_label(response_type)}; "
                f"its tiers are {', '.join(tier_names)}",
                where=where(i),
                hint=hint or "label each completion with one of the response type's tiers",
            )
        ranks[i] = rank
    return ranks


def arrays_from_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    tier_names: Sequence[str],
    feature_names: Sequence[str],
    base_reward: bool = False,
    locate: Locate | None = None,
    response_type: str = "",
) -> FitArrays:
    """Build the arrays from ``features.jsonl`` rows of one response type.

    Each row has ``prompt_id``, ``completion_label`` (a tier name), ``features`` (a
    list in the artifact's layout) and, when ``base_reward`` is set, ``base_reward``.
    """
    where = row_locator(locate)
    if not rows:
        raise DataError(
            f"no completions for {_label(response_type)}",
            hint="grade some conversations of this type with `specc grade` first",
        )
    d = len(feature_names)
    vectors: list[Any] = []
    base = np.empty(len(rows), dtype=np.float64) if base_reward else None
    codes: dict[str, int] = {}
    group = np.empty(len(rows), dtype=np.int64)
    labels: list[str] = []
    for i, row in enumerate(rows):
        for key in ("prompt_id", "completion_label", "features"):
            if key not in row:
                raise DataError(f"row has no {key!r} field", where=where(i))
        values = row["features"]
        if not isinstance(values, (list, tuple)) or len(values) != d:
            got = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
            raise DataError(
                f"expected {d} features for {_label(response_type)}, got {got}",
                where=where(i),
                hint="the features were graded with another artifact; regrade with this one",
            )
        vectors.append(values)
        if base is not None:
            value = row.get("base_reward")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DataError(
                    "row has no numeric 'base_reward' but the spec fits with base_reward",
                    where=where(i),
                    hint="add the base reward-model score to every row, or set "
                    "base_reward = false in the spec",
                )
            base[i] = float(value)
        group[i] = codes.setdefault(str(row["prompt_id"]), len(codes))
        labels.append(str(row["completion_label"]))
    try:  # one conversion for all rows; on failure, find the row to blame
        features = np.asarray(vectors, dtype=np.float64).reshape(len(rows), d)
    except (TypeError, ValueError):
        bad = next(
            (i for i, vs in enumerate(vectors) if not all(isinstance(v, (int, float)) for v in vs)),
            None,
        )
        raise DataError(
            "features must be numbers", where=where(bad) if bad is not None else None
        ) from None
    ranks = encode_tiers(labels, tier_names, locate=where, response_type=response_type)
    return FitArrays(features, group, ranks, base, tuple(codes))


@dataclass(frozen=True)
class CheckedInput:
    features: Floats
    group: IntArray  # dense codes 0..n_groups-1
    tier_rank: IntArray
    base_reward: FloatArray | None
    n_groups: int
    warnings: tuple[str, ...]


def check_values(x: Floats, feature_names: Sequence[str], where: Locate) -> None:
    """Every value finite; probabilities in [0, 1]; other features within
    :data:`MAX_ABS_VALUE`. The first bad value is a :class:`DataError` naming its row
    and feature. Works through the rows in chunks (no full-size temporaries)."""
    prob = np.array([is_probability(name) for name in feature_names], dtype=bool)
    lo = np.where(prob, -PROBABILITY_SLACK, -MAX_ABS_VALUE)
    hi = np.where(prob, 1.0 + PROBABILITY_SLACK, MAX_ABS_VALUE)
    for r0 in range(0, x.shape[0], CHECK_CHUNK_ROWS):
        block = x[r0 : r0 + CHECK_CHUNK_ROWS]
        with np.errstate(invalid="ignore"):
            bad = ~((block >= lo) & (block <= hi))  # NaN fails both
        if not bad.any():
            continue
        row, col = (int(v) for v in np.argwhere(bad)[0])
        value = float(block[row, col])
        name = feature_names[col]
        if not np.isfinite(value):
            message = f"feature {name!r} is {value} (not a finite number)"
        elif prob[col]:
            message = (
                f"feature {name!r} is {value:.6g}, but {name.partition(':')[0]} features "
                "are probabilities in [0, 1]"
            )
        else:
            message = (
                f"feature {name!r} is {value:.6g}, beyond the bound of +-{MAX_ABS_VALUE:g} "
                "on numeric features"
            )
        raise DataError(message, where=where(r0 + row), hint="regrade this row, or drop it")


def check_base_reward(base: Floats, where: Locate) -> None:
    """Every base reward finite and within :data:`MAX_ABS_VALUE`."""
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(base) <= MAX_ABS_VALUE)
    if bad.any():
        row = int(np.argmax(bad))
        value = float(base[row])
        what = (
            "not a finite number"
            if not np.isfinite(value)
            else f"beyond the bound of +-{MAX_ABS_VALUE:g}"
        )
        raise DataError(
            f"base_reward is {value:.6g} ({what})",
            where=where(row),
            hint="fix the base reward-model score of this row, or drop it; rescale "
            "scores that are this large",
        )


def as_features(features: npt.ArrayLike) -> Floats:
    """The features as a float32 or float64 array, without a copy when they are one."""
    x = np.asarray(features)
    if x.dtype == np.float32 or x.dtype == np.float64:
        return x
    if x.dtype == object or not (
        np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.bool_)
    ):
        try:
            return np.asarray(features, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("features must be numbers") from None
    return x.astype(np.float64)


def check_input(
    features: npt.ArrayLike,
    group: npt.ArrayLike,
    tier_rank: npt.ArrayLike,
    base_reward: npt.ArrayLike | None,
    *,
    tier_names: Sequence[str],
    feature_names: Sequence[str],
    locate: Locate | None = None,
    response_type: str = "",
) -> CheckedInput:
    """Validate shapes, values (see the module's bounds) and labels; return the arrays
    (features float32 or float64 as given, never copied then) and warnings."""
    where = row_locator(locate)
    label = _label(response_type)
    x = as_features(features)
    if x.ndim != 2:
        raise DataError(f"features of {label} must be a 2-D array (rows x features)")
    n, d = x.shape
    if n == 0:
        raise DataError(
            f"no completions for {label}",
            hint="grade some conversations of this type with `specc grade` first",
        )
    if d != len(feature_names):
        raise DataError(
            f"{label} has {len(feature_names)} feature names but the arrays have {d} columns"
        )
    if not tier_names:
        raise DataError(f"{label} has no tiers")
    check_values(x, feature_names, where)
    g = np.asarray(group)
    if g.shape != (n,):
        raise DataError(f"{label}: group must have one entry per row ({n}), got {g.shape}")
    r = np.asarray(tier_rank)
    if r.shape != (n,):
        raise DataError(f"{label}: tier_rank must have one entry per row ({n}), got {r.shape}")
    if not np.issubdtype(r.dtype, np.integer):
        raise DataError(f"{label}: tier ranks must be integers, got {r.dtype}")
    r = r.astype(np.int64, copy=False)
    bad = (r < 0) | (r >= len(tier_names))
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"unknown tier rank {int(r[row])} for {label}; ranks go from 0 "
            f"({tier_names[0]}) to {len(tier_names) - 1} ({tier_names[-1]})",
            where=where(row),
        )
    base = None
    if base_reward is not None:
        base = np.asarray(base_reward, dtype=np.float64)
        if base.shape != (n,):
            raise DataError(f"{label}: base_reward must have one entry per row ({n})")
        check_base_reward(base, where)
    if np.issubdtype(g.dtype, np.integer) and n and g.min() >= 0 and g.max() < 2 * n + 1024:
        # Dense-ish integer codes (as the file reader makes): no sort needed.
        present = np.zeros(int(g.max()) + 1, dtype=np.int64)
        present[g] = 1
        remap = np.cumsum(present) - 1
        codes = remap[g]
    else:
        _, codes = np.unique(g, return_inverse=True)
        codes = codes.reshape(n).astype(np.int64, copy=False)
    n_groups = int(codes.max()) + 1
    warnings = []
    counts = np.bincount(r, minlength=len(tier_names))
    for tier, count in zip(tier_names, counts, strict=False):
        if count == 0:
            warnings.append(f"{label}: tier {tier!r} has no completions")
    sizes = np.bincount(codes, minlength=n_groups)
    single = int((sizes == 1).sum())
    if single:
        warnings.append(
            f"{label}: no pairs from {single} prompt{'s' * (single != 1)} with a single completion"
        )
    # Prompts whose completions all share one tier give no pairs either.
    n_tiers = len(tier_names)
    per_tier = np.bincount(codes * n_tiers + r, minlength=n_groups * n_tiers)
    distinct = (per_tier.reshape(n_groups, n_tiers) > 0).sum(axis=1)
    same = int(((distinct == 1) & (sizes > 1)).sum())
    if same:
        warnings.append(
            f"{label}: no pairs from {same} prompt{'s' * (same != 1)} whose completions "
            "are all of one tier"
        )
    return CheckedInput(x, codes, r, base, n_groups, tuple(warnings))


def resolve_margins(
    tier_margins: Sequence[float | None] | npt.ArrayLike | None,
    n_tiers: int,
    default: float,
) -> FloatArray:
    """Per-tier margins; a missing (None/NaN) one falls back to ``default``."""
    if tier_margins is None:
        return np.full(n_tiers, float(default))
    values = [
        default if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
        for v in np.asarray(tier_margins, dtype=object).reshape(-1).tolist()
    ]
    if len(values) != n_tiers:
        raise DataError(f"expected {n_tiers} tier margins, got {len(values)}")
    out = np.asarray(values, dtype=np.float64)
    if not np.isfinite(out).all() or (out < 0).any():
        raise DataError(f"tier margins must be finite and non-negative, got {values}")
    return out
