"""How well a reward orders completions: pair metrics, per-tier distributions and
sign checks, all on plain numpy arrays.

>>> import numpy as np
>>> m = pair_metrics(np.array([2.0, 1.5, 0.0]), np.array([0, 1, 2]),
...                  np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([1.0, 1.0, 1.0]))
>>> m.pair_accuracy, m.beyond_margin, m.error_rate
(1.0, 0.6666666666666666, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Polarity = Literal["good", "bad"]

QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


def _num(value: float) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class PairMetrics:
    """Metrics over a set of ordered pairs ``(a better than b)``.

    * ``pair_accuracy``: share with ``R(a) > R(b)``;
    * ``beyond_margin``: share with ``R(a) - R(b) >= m_a`` (zero hinge loss);
    * ``hinge_loss``: mean ``relu(m_a + R(b) - R(a))``;
    * ``error_rate`` (the RBR paper's, its Figure 4b): among the ``ideal_pairs`` pairs
      whose better completion is of the best tier, the share where the other one
      scores at least as high; NaN when there are none.
    * ``ideal_pairs_by_tier[t]`` / ``errors_by_tier[t]``: the same split by the other
      completion's tier ``t`` (entry 0, the best tier itself, is always 0).
    """

    n_pairs: int
    pair_accuracy: float
    beyond_margin: float
    hinge_loss: float
    ideal_pairs: int
    error_rate: float
    ideal_pairs_by_tier: tuple[int, ...] = ()
    errors_by_tier: tuple[int, ...] = ()

    def error_rate_by_tier(self) -> tuple[float, ...]:
        """``errors_by_tier / ideal_pairs_by_tier``, NaN where there are no pairs."""
        return tuple(
            e / n if n else float("nan")
            for e, n in zip(self.errors_by_tier, self.ideal_pairs_by_tier, strict=True)
        )

    def to_json(self, tier_names: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-ready; with ``tier_names``, the per-tier error rates by name too."""
        out: dict[str, Any] = {
            "pairs": self.n_pairs,
            "pair_accuracy": _num(self.pair_accuracy),
            "beyond_margin": _num(self.beyond_margin),
            "hinge_loss": _num(self.hinge_loss),
            "ideal_pairs": self.ideal_pairs,
            "error_rate": _num(self.error_rate),
        }
        if tier_names is not None and self.ideal_pairs_by_tier:
            rates = self.error_rate_by_tier()
            out["error_rate_by_tier"] = {
                tier: {
                    "ideal_pairs": self.ideal_pairs_by_tier[t],
                    "errors": self.errors_by_tier[t],
                    "error_rate": _num(rates[t]),
                }
                for t, tier in enumerate(tier_names)
                if t > 0 and t < len(self.ideal_pairs_by_tier)
            }
        return out


#: Pairs scored together (bounds the temporaries at scale).
CHUNK_PAIRS = 1 << 20


def pair_metrics(
    rewards: FloatArray,
    tier_rank: npt.NDArray[np.integer[Any]],
    better: npt.NDArray[np.integer[Any]],
    worse: npt.NDArray[np.integer[Any]],
    tier_margins: FloatArray,
) -> PairMetrics:
    """:class:`PairMetrics` of ``rewards`` over the pairs ``(better[k], worse[k])``;
    ``tier_margins[t]`` is the margin tier ``t`` must win by. Works through the pairs
    in chunks; the loss is summed in float64."""
    n = int(better.shape[0])
    n_tiers = int(tier_margins.shape[0])
    if n == 0:
        nan = float("nan")
        zeros = (0,) * n_tiers
        return PairMetrics(0, nan, nan, nan, 0, nan, zeros, zeros)
    wins = beyond = 0
    loss = 0.0
    ideal_by_tier = np.zeros(n_tiers, dtype=np.int64)
    errors_by_tier = np.zeros(n_tiers, dtype=np.int64)
    for p0 in range(0, n, CHUNK_PAIRS):
        b, w = better[p0 : p0 + CHUNK_PAIRS], worse[p0 : p0 + CHUNK_PAIRS]
        better_rank = tier_rank[b]
        gap = rewards[b] - rewards[w]
        margin = tier_margins[better_rank]
        ideal = better_rank == 0
        wins += int(np.count_nonzero(gap > 0))
        beyond += int(np.count_nonzero(gap >= margin))
        other = tier_rank[w[ideal]]
        ideal_by_tier += np.bincount(other, minlength=n_tiers)[:n_tiers]
        errors_by_tier += np.bincount(other[gap[ideal] <= 0], minlength=n_tiers)[:n_tiers]
        loss += float(np.maximum(margin - gap, 0.0).sum())
    n_ideal, errors = int(ideal_by_tier.sum()), int(errors_by_tier.sum())
    return PairMetrics(
        n_pairs=n,
        pair_accuracy=wins / n,
        beyond_margin=beyond / n,
        hinge_loss=loss / n,
        ideal_pairs=n_ideal,
        error_rate=errors / n_ideal if n_ideal else float("nan"),
        ideal_pairs_by_tier=tuple(int(v) for v in ideal_by_tier),
        errors_by_tier=tuple(int(v) for v in errors_by_tier),
    )


def centre_on_ideal(rewards: FloatArray, group: npt.ArrayLike, tier_rank: IntArray) -> FloatArray:
    """Each reward minus the mean reward of its prompt's ideal (rank 0) completions;
    NaN for prompts without an ideal completion (as in the RBR paper's Figure 4a).

    >>> centre_on_ideal(np.array([3.0, 1.0, 5.0]), np.array([0, 0, 1]), np.array([0, 1, 1]))
    array([ 0., -2., nan])
    """
    _, codes = np.unique(np.asarray(group), return_inverse=True)
    codes = codes.reshape(-1)
    return centre_on_ideal_codes(
        rewards, codes, int(codes.max()) + 1 if codes.shape[0] else 0, tier_rank
    )


def centre_on_ideal_codes(
    rewards: FloatArray, codes: IntArray, n_groups: int, tier_rank: IntArray
) -> FloatArray:
    """:func:`centre_on_ideal` for dense prompt codes ``0..n_groups-1`` (no sort)."""
    ideal = tier_rank == 0
    total = np.bincount(codes, weights=np.where(ideal, rewards, 0.0), minlength=n_groups)
    count = np.bincount(codes, weights=ideal.astype(np.float64), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    mean[count == 0] = np.nan
    out: FloatArray = rewards - mean[codes]
    return out


@dataclass(frozen=True)
class TierStats:
    """Distribution of one tier's values (NaNs left out)."""

    tier: str
    count: int
    mean: float
    std: float
    min: float
    max: float
    quantiles: tuple[float, ...]  # at QUANTILES

    def to_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "count": self.count,
            "mean": _num(self.mean),
            "std": _num(self.std),
            "min": _num(self.min),
            "max": _num(self.max),
            "quantiles": {
                f"p{round(q * 100)}": _num(v)
                for q, v in zip(QUANTILES, self.quantiles, strict=True)
            },
        }


def tier_stats(
    values: FloatArray, tier_rank: IntArray, tier_names: Sequence[str]
) -> tuple[TierStats, ...]:
    """Per tier: count, mean, std, min, max and quantiles of the finite ``values``."""
    out = []
    finite = np.isfinite(values)
    for rank, tier in enumerate(tier_names):
        v = values[(tier_rank == rank) & finite]
        if v.shape[0] == 0:
            nan = float("nan")
            out.append(TierStats(tier, 0, nan, nan, nan, nan, (nan,) * len(QUANTILES)))
            continue
        qs = np.quantile(v, QUANTILES)
        out.append(
            TierStats(
                tier,
                int(v.shape[0]),
                float(v.mean()),
                float(v.std()),
                float(v.min()),
                float(v.max()),
                tuple(float(q) for q in qs),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class SignWarning:
    """A weight whose sign contradicts what the spec says the feature means."""

    feature: str
    weight: float
    expected: Polarity

    @property
    def message(self) -> str:
        if self.expected == "good":
            return (
                f"{self.feature}: weight {self.weight:+.4g} is negative, but the proposition "
                "marks better tiers; check its question, its grader or the rules"
            )
        return (
            f"{self.feature}: weight {self.weight:+.4g} is positive, but the proposition "
            "marks worse tiers; check its question, its grader or the rules"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "weight": self.weight,
            "expected": self.expected,
            "message": self.message,
        }


def sign_warnings(
    weights: FloatArray,
    feature_names: Sequence[str],
    polarity: Mapping[str, Polarity | None],
    tolerance: float = 1e-6,
) -> tuple[SignWarning, ...]:
    """Warn where a weight's sign contradicts ``polarity``.

    ``polarity`` maps a feature name (``prop:apology``, or just ``apology``) to
    ``"good"`` (pushes towards better tiers: the weight should not be negative),
    ``"bad"`` (towards worse tiers: should not be positive) or None (no opinion).
    Weights within ``tolerance`` of zero never warn.

    >>> [w.feature for w in sign_warnings(np.array([-0.5, 0.5]), ["prop:a", "prop:b"],
    ...                                   {"a": "good", "prop:b": "good"})]
    ['prop:a']
    """
    out = []
    for name, weight in zip(feature_names, weights.tolist(), strict=True):
        expected = expected_polarity(polarity, name)
        if expected == "good" and weight < -tolerance:
            out.append(SignWarning(name, float(weight), "good"))
        elif expected == "bad" and weight > tolerance:
            out.append(SignWarning(name, float(weight), "bad"))
    return tuple(out)


def expected_polarity(polarity: Mapping[str, Polarity | None], name: str) -> Polarity | None:
    """The polarity of feature ``name`` (``prop:apology``), looked up by its full or
    its bare name (``apology``)."""
    expected = polarity.get(name)
    if expected is None and ":" in name:
        expected = polarity.get(name.split(":", 1)[1])
    return expected
