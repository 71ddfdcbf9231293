"""Agreement of P(yes) with 0/1 gold labels: accuracy, precision, recall, F1, Brier, ECE.

A prediction is "yes" when P(yes) >= 0.5. The expected calibration error uses
:data:`BINS` equal-width bins of P(yes): bin ``b`` holds the predictions with
``floor(BINS * p) == b`` (``p = 1`` in the last bin), and

    ECE = sum over non-empty bins of n_b / N * |mean p in b - mean y in b|

>>> import numpy as np
>>> m = binary_metrics(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 0, 0]))
>>> m.accuracy, m.precision, m.recall
(0.75, 0.5, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]

__all__ = ["BINS", "Bin", "BinaryMetrics", "binary_metrics", "ece", "reliability"]

#: Equal-width bins of P(yes) for the ECE and the reliability diagram.
BINS = 10
#: Predicted "yes" at or above this P(yes).
THRESHOLD = 0.5


@dataclass(frozen=True)
class Bin:
    """One bin of the reliability diagram: ``lo <= p < hi``."""

    lo: float
    hi: float
    n: int
    mean_p: float
    mean_y: float


@dataclass(frozen=True)
class BinaryMetrics:
    """The figures of one proposition (or of all pairs pooled). ``precision`` is None
    when nothing was predicted yes, ``recall`` when no gold label is yes, and ``f1``
    when either is None."""

    n: int
    accuracy: float
    precision: float | None
    recall: float | None
    f1: float | None
    brier: float
    ece: float
    positives: int  # gold labels that are yes
    predicted_positives: int  # predictions at or above the threshold

    def to_json(self) -> dict[str, Any]:
        """The seven figures ``specc eval --json`` prints for a proposition."""
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "brier": self.brier,
            "ece": self.ece,
        }


def _bin_index(p: FloatArray, bins: int) -> npt.NDArray[np.int64]:
    import numpy as np

    return np.minimum(np.floor(p * bins), bins - 1).astype(np.int64)


def reliability(p: FloatArray, y: FloatArray, bins: int = BINS) -> list[Bin]:
    """The non-empty bins of P(yes), lowest first."""

    index = _bin_index(p, bins)
    out = []
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        if n:
            out.append(
                Bin(b / bins, (b + 1) / bins, n, float(p[mask].mean()), float(y[mask].mean()))
            )
    return out


def ece(p: FloatArray, y: FloatArray, bins: int = BINS) -> float:
    """Expected calibration error (see the module docstring); 0.0 for no pairs."""
    total = len(p)
    if total == 0:
        return 0.0
    return float(sum(b.n / total * abs(b.mean_p - b.mean_y) for b in reliability(p, y, bins)))


def binary_metrics(p: FloatArray, y: FloatArray, bins: int = BINS) -> BinaryMetrics:
    """Every figure for predictions ``p`` (P(yes) in [0, 1]) against labels ``y`` (0/1).

    Raises ValueError for no pairs or arrays of different lengths."""
    import numpy as np

    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if p.shape != y.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(f"need two equal, non-empty vectors, not {p.shape} and {y.shape}")
    yes = p >= THRESHOLD
    gold = y == 1.0
    tp = int((yes & gold).sum())
    predicted = int(yes.sum())
    positives = int(gold.sum())
    precision = tp / predicted if predicted else None
    recall = tp / positives if positives else None
    f1: float | None = None
    if precision is not None and recall is not None:
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return BinaryMetrics(
        n=len(p),
        accuracy=float((yes == gold).mean()),
        precision=precision,
        recall=recall,
        f1=f1,
        brier=float(((p - y) ** 2).mean()),
        ece=ece(p, y, bins),
        positives=positives,
        predicted_positives=predicted,
    )
