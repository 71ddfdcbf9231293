"""Settings of one reward fit: what the spec's ``reward`` block says, plus the split.

>>> FitSettings().optimizer, FitSettings().weight_decay   # None: chosen by validation
('lbfgs', None)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from specc.errors import UsageError

if TYPE_CHECKING:
    from specc.artifact import RewardEntry

Optimizer = Literal["adamw", "lbfgs"]
Precision = Literal["float32", "float64"]

#: The weight decays an L-BFGS fit without one chooses from, largest first.
WEIGHT_DECAY_GRID: tuple[float, ...] = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
#: L-BFGS without a weight decay, when too few prompts give pairs to choose one.
FALLBACK_WEIGHT_DECAY = 1e-3
#: AdamW without a weight decay (decoupled, as torch's default for AdamW).
ADAMW_WEIGHT_DECAY = 0.01
#: The fewest training prompts with pairs a weight-decay selection needs.
SELECT_MIN_PROMPTS = 10


@dataclass(frozen=True)
class FitSettings:
    """How to fit one response type's linear reward.

    * ``optimizer``: ``"lbfgs"`` (strong-Wolfe line search, at most ``steps``
      iterations, stops early when the objective stops moving; ``lr`` is not used;
      ``weight_decay`` is the L2 term ``weight_decay / 2 * |w|^2``) or ``"adamw"`` (full
      batch, ``steps`` steps at learning rate ``lr``, decoupled ``weight_decay``).
    * ``weight_decay``: ``None`` (the default) lets L-BFGS choose it: a path over
      :data:`WEIGHT_DECAY_GRID` is fitted on part of the training prompts and scored by
      pair accuracy on the others (``select_fraction`` of them, from at most about
      ``select_max_rows`` rows), and the best is refitted on all training prompts
      (see docs/fitting.md). AdamW uses :data:`ADAMW_WEIGHT_DECAY` then.
    * ``margin``: the margin of a tier that declares none.
    * ``base_reward``: add each row's base reward-model score with coefficient 1.
    * ``valid_fraction``: share of prompts (not pairs) held out for validation.
    * ``tolerance``: L-BFGS stops when the objective or the step changes by less.
    * ``precision``: the dtype of the features while optimising. float32 halves the
      memory and keeps fits accurate (tested against float64); float64 is for
      bit-level comparisons with a float64 reference.
    """

    optimizer: Optimizer = "lbfgs"
    lr: float = 1e-2
    steps: int = 1000
    weight_decay: float | None = None
    margin: float = 1.0
    base_reward: bool = False
    valid_fraction: float = 0.1
    lbfgs_history: int = 20
    tolerance: float = 1e-9
    precision: Precision = "float32"
    select_fraction: float = 0.2
    select_max_rows: int = 200_000

    def __post_init__(self) -> None:
        problems = []
        if self.optimizer not in ("adamw", "lbfgs"):
            problems.append(f"optimizer must be 'adamw' or 'lbfgs', not {self.optimizer!r}")
        if not self.lr > 0:
            problems.append(f"lr must be positive, not {self.lr}")
        if self.steps < 1:
            problems.append(f"steps must be at least 1, not {self.steps}")
        if self.weight_decay is not None and not 0 <= self.weight_decay < 1e6:
            problems.append(f"weight_decay must be in [0, 1e6), not {self.weight_decay}")
        if not self.margin >= 0:
            problems.append(f"margin cannot be negative, not {self.margin}")
        if not 0 <= self.valid_fraction < 1:
            problems.append(f"valid_fraction must be in [0, 1), not {self.valid_fraction}")
        if self.lbfgs_history < 1:
            problems.append(f"lbfgs_history must be at least 1, not {self.lbfgs_history}")
        if not self.tolerance >= 0:
            problems.append(f"tolerance cannot be negative, not {self.tolerance}")
        if self.precision not in ("float32", "float64"):
            problems.append(f"precision must be 'float32' or 'float64', not {self.precision!r}")
        if not 0 < self.select_fraction < 1:
            problems.append(f"select_fraction must be in (0, 1), not {self.select_fraction}")
        if self.select_max_rows < 2:
            problems.append(f"select_max_rows must be at least 2, not {self.select_max_rows}")
        if problems:
            raise UsageError("invalid fit settings: " + "; ".join(problems))

    @classmethod
    def from_reward(cls, entry: RewardEntry, **overrides: Any) -> FitSettings:
        """Settings from an artifact's resolved ``reward`` entry, ``overrides`` on top
        (e.g. ``valid_fraction`` from the command line)."""
        data: dict[str, Any] = {
            "optimizer": entry.optimizer,
            "lr": entry.lr,
            "steps": entry.steps,
            "weight_decay": entry.weight_decay,
            "margin": entry.margin,
            "base_reward": entry.base_reward,
        }
        data.update(overrides)
        return cls(**data)

    @property
    def selects_weight_decay(self) -> bool:
        """Whether the fit chooses the weight decay by validation."""
        return self.weight_decay is None and self.optimizer == "lbfgs"

    def fixed_weight_decay(self) -> float:
        """The weight decay when none is chosen by validation."""
        if self.weight_decay is not None:
            return self.weight_decay
        return ADAMW_WEIGHT_DECAY if self.optimizer == "adamw" else FALLBACK_WEIGHT_DECAY

    def replace(self, **changes: Any) -> FitSettings:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
