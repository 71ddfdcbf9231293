"""Choosing the weight decay of an L-BFGS fit by validation pair accuracy.

A fit whose spec names no ``weight_decay`` fits a path over
:data:`~specc.fit.settings.WEIGHT_DECAY_GRID`, largest first, each fit warm-started
from the previous one, on part of the training prompts (the ``SELECT_TRAIN`` block of
:class:`~specc.fit.pairs.SplitLayout`) and counts the correctly ordered pairs of the
other part (``SELECT_VALID``). The weight decay with the most correctly ordered pairs
wins; a tie (common when the scored prompts are few and all ordered) goes to the lower
hinge loss on the scored pairs, then to the larger weight decay. The held-out
validation prompts are never looked at, so the reported validation metrics stay
honest.

>>> sel = select_weight_decay(objective, scorer, settings)   # doctest: +SKIP
>>> sel.chosen, [c.pair_accuracy for c in sel.candidates]    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from specc.fit.objective import HingeObjective, matvec
from specc.fit.optimize import run_lbfgs
from specc.fit.settings import WEIGHT_DECAY_GRID, FitSettings

FloatArray = npt.NDArray[np.float64]

#: The path's fits stop when the objective moves less than this: a choice between
#: weight decays a factor of three apart does not need the last digits (the chosen
#: one is refitted at the settings' tolerance).
SELECT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Candidate:
    """One weight decay of the path and how well its fit ordered the scored pairs."""

    weight_decay: float
    correct: int  # scored pairs ordered correctly (strictly)
    pairs: int
    hinge_loss: float  # mean hinge over the scored pairs
    iterations: int
    evaluations: int

    @property
    def pair_accuracy(self) -> float:
        return self.correct / self.pairs if self.pairs else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "weight_decay": self.weight_decay,
            "pair_accuracy": self.pair_accuracy if self.pairs else None,
            "hinge_loss": self.hinge_loss if self.pairs else None,
            "iterations": self.iterations,
            "evaluations": self.evaluations,
        }


@dataclass(frozen=True)
class Selection:
    """The chosen weight decay, every candidate, and the rows the choice used."""

    chosen: float
    candidates: tuple[Candidate, ...]
    fit_rows: int
    score_rows: int
    score_pairs: int
    weights: FloatArray  # the chosen candidate's weights (the final fit starts there)

    def to_json(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "fit_rows": self.fit_rows,
            "score_rows": self.score_rows,
            "score_pairs": self.score_pairs,
            "candidates": [c.to_json() for c in self.candidates],
        }


@dataclass(frozen=True)
class PairScorer:
    """Scores a weight vector on the pairs ``(better[k], worse[k])`` of rows ``x``:
    how many it orders correctly, and its mean hinge loss (``row_margin``: the margin
    of each row's tier)."""

    x: npt.NDArray[np.floating[Any]]
    offset: npt.NDArray[np.floating[Any]] | None
    row_margin: FloatArray
    better: npt.NDArray[np.signedinteger[Any]]
    worse: npt.NDArray[np.signedinteger[Any]]

    def score(self, weights: FloatArray) -> tuple[int, float]:
        rewards = matvec(self.x, weights).astype(np.float64)
        if self.offset is not None:
            rewards += self.offset
        gap = rewards[self.better] - rewards[self.worse]
        hinge = np.maximum(self.row_margin[self.better] - gap, 0.0)
        mean = float(hinge.sum() / gap.shape[0]) if gap.shape[0] else 0.0
        return int(np.count_nonzero(gap > 0)), mean


def select_weight_decay(
    objective: HingeObjective,
    scorer: PairScorer,
    settings: FitSettings,
    grid: Sequence[float] = WEIGHT_DECAY_GRID,
) -> Selection:
    """Fit ``objective`` (the selection's training rows) along ``grid`` and keep the
    weight decay whose weights ``scorer`` finds best (ties: the larger weight decay)."""
    candidates: list[Candidate] = []
    best: tuple[tuple[int, float], Candidate, FloatArray] | None = None
    weights: FloatArray | None = None
    n_pairs = int(scorer.better.shape[0])
    for wd in sorted(grid, reverse=True):
        objective.l2 = wd
        path = settings.replace(
            weight_decay=wd, tolerance=max(settings.tolerance, SELECT_TOLERANCE)
        )
        opt = run_lbfgs(objective, objective.d, path, x0=weights)
        weights = opt.weights
        correct, hinge = scorer.score(weights)
        candidate = Candidate(wd, correct, n_pairs, hinge, opt.iterations, opt.evaluations)
        candidates.append(candidate)
        rank = (correct, -hinge)
        if best is None or rank > best[0]:
            best = (rank, candidate, weights)
    assert best is not None, "the weight-decay grid is empty"
    return Selection(
        chosen=best[1].weight_decay,
        candidates=tuple(candidates),
        fit_rows=objective.n,
        score_rows=int(scorer.x.shape[0]),
        score_pairs=n_pairs,
        weights=best[2],
    )
