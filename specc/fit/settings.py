"""Settings of one reward fit: what the spec's ``reward`` block says, plus the split.

>>> FitSettings(optimizer="lbfgs", weight_decay=0.01).steps
1000
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from specc.errors import UsageError

if TYPE_CHECKING:
    from specc.artifact import RewardEntry

Optimizer = Literal["adamw", "lbfgs"]


@dataclass(frozen=True)
class FitSettings:
    """How to fit one response type's linear reward.

    * ``optimizer``: ``"adamw"`` (full batch, ``steps`` steps at learning rate ``lr``,
      decoupled ``weight_decay``) or ``"lbfgs"`` (strong-Wolfe line search, at most
      ``steps`` iterations, stops early when the objective stops moving; ``lr`` is not
      used, the line search picks the step; ``weight_decay`` becomes the L2 term
      ``weight_decay / 2 * |w|^2``, the penalty whose gradient AdamW's decay follows).
    * ``margin``: the margin of a tier that declares none.
    * ``base_reward``: add each row's base reward-model score with coefficient 1.
    * ``valid_fraction``: share of prompts (not pairs) held out for validation.
    * ``tolerance``: L-BFGS stops when the objective or the step changes by less.
    * ``threads``: torch threads while optimising. One by default: the work is
      memory-bound gathers and scatter-adds that a second thread does not speed up
      (measured), and a fixed count makes the weights independent of the machine.
    """

    optimizer: Optimizer = "adamw"
    lr: float = 1e-2
    steps: int = 1000
    weight_decay: float = 0.0
    margin: float = 1.0
    base_reward: bool = False
    valid_fraction: float = 0.1
    lbfgs_history: int = 20
    tolerance: float = 1e-9
    threads: int = 1

    def __post_init__(self) -> None:
        problems = []
        if self.optimizer not in ("adamw", "lbfgs"):
            problems.append(f"optimizer must be 'adamw' or 'lbfgs', not {self.optimizer!r}")
        if not self.lr > 0:
            problems.append(f"lr must be positive, not {self.lr}")
        if self.steps < 1:
            problems.append(f"steps must be at least 1, not {self.steps}")
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay cannot be negative, not {self.weight_decay}")
        if not self.margin >= 0:
            problems.append(f"margin cannot be negative, not {self.margin}")
        if not 0 <= self.valid_fraction < 1:
            problems.append(f"valid_fraction must be in [0, 1), not {self.valid_fraction}")
        if self.lbfgs_history < 1:
            problems.append(f"lbfgs_history must be at least 1, not {self.lbfgs_history}")
        if not self.tolerance >= 0:
            problems.append(f"tolerance cannot be negative, not {self.tolerance}")
        if self.threads < 1:
            problems.append(f"threads must be at least 1, not {self.threads}")
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

    def replace(self, **changes: Any) -> FitSettings:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
