"""Safe RLHF's Lagrange multipliers for cost constraints (numpy only).

A constraint asks that the expected cost of the policy's completions stay at or below
a ``limit``. :class:`LagrangeController` keeps one multiplier λ for it, updated as in
Safe RLHF's PPO-Lagrangian (Dai et al. 2023, ``safe_rlhf/algorithms/ppo_lag``):

* the parameter is ``log λ`` (initialised to ``log lambda_init``), so λ stays > 0;
* the last ``window`` per-completion costs are kept (Safe RLHF: 128 episode costs);
* each :meth:`~LagrangeController.update` is one SGD step with learning rate ``lr`` on
  the loss ``-(mean(window) - limit) * exp(log λ)``, that is
  ``log λ += lr * (mean(window) - limit) * λ``: λ grows while the constraint is
  violated and shrinks once it is slack;
* ``lambda_max`` clamps ``log λ`` to ``log lambda_max`` after each step;
* the first ``delay`` updates only fill the window (Safe RLHF's update delay);
* rewards (or advantages) are combined as ``(r - λ c) / (1 + λ)``.

Several constraints combine in :class:`LagrangeSet`, one controller each:
``(r - Σ λᵢ cᵢ) / (1 + Σ λᵢ)``.

>>> ctl = LagrangeController(0.1, lambda_init=1.0, lr=0.5)
>>> round(ctl.update([0.0, 1.0]), 4)      # mean cost 0.5 > 0.1: λ grows
1.2214
>>> ctl.shape([1.0, 1.0], [0.0, 1.0]).round(4)
array([ 0.4502, -0.0997])
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from specc.errors import DataError, UsageError

__all__ = ["LagrangeController", "LagrangeSet"]

FloatArray = npt.NDArray[np.float64]

#: ``log λ`` never exceeds this (λ ≈ 1.1e13). Past it the shaped reward is ``-c`` to
#: double precision anyway; the cap only keeps ``exp`` from overflowing to inf/nan.
MAX_LOG_LAMBDA = 30.0

_STATE_FORMAT = "specc.lagrange/1"
#: The largest file of saved multipliers read back (``specc serve``'s
#: ``--lambda-state``, the TRL reward's checkpoint file): a few floats per constraint
#: and its window of costs.
MAX_STATE_BYTES = 16 * 1024 * 1024


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UsageError(f"{name} must be a number, not {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise UsageError(f"{name} must be finite, not {out}")
    return out


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def _vector(name: str, values: Any, where: str) -> FloatArray:
    """A 1-D float64 array of finite values (a scalar is one value)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be numbers, not {type(values).__name__}", where) from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one value per completion, got shape {arr.shape}", where)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{name}[{i}] is {arr[i]}; every value must be finite",
            where,
            "drop completions that could not be graded before the update",
        )
    return arr


class LagrangeController:
    """The Lagrange multiplier of one cost constraint, Safe RLHF's PPO-Lagrangian update.

    ``limit`` is the constraint's threshold on the mean cost; ``lambda_init`` (> 0),
    ``lr`` (> 0), ``window`` (costs kept, >= 1), ``lambda_max`` (> 0, or None for no
    clamp) and ``delay`` (updates that only fill the window) as in the module docstring.

    >>> ctl = LagrangeController(0.02, lr=0.05)
    >>> lam = ctl.update(batch_costs)                        # doctest: +SKIP
    >>> shaped = ctl.shape(batch_rewards, batch_costs)       # doctest: +SKIP
    """

    def __init__(
        self,
        limit: float,
        *,
        lambda_init: float = 1.0,
        lr: float = 0.1,
        window: int = 128,
        lambda_max: float | None = None,
        delay: int = 0,
    ):
        self._limit = _finite("limit", limit)
        lambda_init = _finite("lambda_init", lambda_init)
        if lambda_init <= 0:
            raise UsageError(
                f"lambda_init must be > 0 (λ = exp(log λ)), not {lambda_init}",
            )
        self.lr = _finite("lr", lr)
        if self.lr <= 0:
            raise UsageError(f"lr must be > 0, not {self.lr}")
        self.window = _count("window", window, 1)
        self.delay = _count("delay", delay, 0)
        self.lambda_max: float | None = None
        if lambda_max is not None:
            self.lambda_max = _finite("lambda_max", lambda_max)
            if self.lambda_max <= 0:
                raise UsageError(f"lambda_max must be > 0 or None, not {self.lambda_max}")
            if lambda_init > self.lambda_max:
                raise UsageError(
                    f"lambda_init ({lambda_init}) is above lambda_max ({self.lambda_max})"
                )
        self.lambda_init = lambda_init
        self._log_lambda = min(math.log(lambda_init), MAX_LOG_LAMBDA)
        self._costs: deque[float] = deque(maxlen=self.window)
        self._updates = 0

    # ------------------------------------------------------------------ state

    @property
    def limit(self) -> float:
        """The threshold on the mean cost; it may be changed during a run."""
        return self._limit

    @limit.setter
    def limit(self, value: float) -> None:
        self._limit = _finite("limit", value)

    @property
    def lam(self) -> float:
        """The current multiplier λ."""
        return math.exp(self._log_lambda)

    @property
    def log_lambda(self) -> float:
        return self._log_lambda

    @property
    def updates(self) -> int:
        """How many :meth:`update` calls with costs there have been."""
        return self._updates

    @property
    def mean_cost(self) -> float | None:
        """The mean of the window of costs, None while it is empty."""
        return float(np.mean(self._costs)) if self._costs else None

    def __repr__(self) -> str:
        return (
            f"LagrangeController(limit={self.limit}, lam={self.lam:.6g}, "
            f"mean_cost={self.mean_cost}, updates={self._updates})"
        )

    # ------------------------------------------------------------------ updates

    def observe(self, costs: Iterable[float] | FloatArray | float) -> None:
        """Append per-completion costs to the window without a step (for example,
        completions of a second batch in the same training step)."""
        self._costs.extend(_vector("costs", costs, "LagrangeController.observe").tolist())

    def update(self, costs: Iterable[float] | FloatArray | float) -> float:
        """Append a batch of per-completion costs, take one step once past the delay,
        return λ. An empty batch changes nothing."""
        batch = _vector("costs", costs, "LagrangeController.update")
        if batch.size == 0:
            return self.lam
        self._costs.extend(batch.tolist())
        self._updates += 1
        if self._updates > self.delay:
            gap = float(np.mean(self._costs)) - self.limit
            # d/d(log λ) of -(gap * exp(log λ)) is -gap * λ; SGD subtracts lr times it.
            self._log_lambda = self._clamped(self._log_lambda + self.lr * gap * self.lam)
        return self.lam

    def _clamped(self, log_lambda: float) -> float:
        """``log_lambda`` capped at ``log lambda_max`` and :data:`MAX_LOG_LAMBDA`."""
        ceiling = MAX_LOG_LAMBDA
        if self.lambda_max is not None:
            ceiling = min(ceiling, math.log(self.lambda_max))
        return min(log_lambda, ceiling)

    def shape(self, rewards: Any, costs: Any) -> FloatArray:
        """``(r - λ c) / (1 + λ)`` per completion (rewards or advantages alike)."""
        r = _vector("rewards", rewards, "LagrangeController.shape")
        c = _vector("costs", costs, "LagrangeController.shape")
        if r.shape != c.shape:
            raise DataError(
                f"{r.size} rewards but {c.size} costs; give one cost per reward",
                "LagrangeController.shape",
            )
        lam = self.lam
        return np.asarray((r - lam * c) / (1.0 + lam), dtype=np.float64)

    # ------------------------------------------------------------------ (de)serialisation

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: JSON-ready (plain floats, ints and lists)."""
        return {
            "format": _STATE_FORMAT,
            "limit": self.limit,
            "log_lambda": self._log_lambda,
            "costs": list(self._costs),
            "updates": self._updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output. The settings (lr, window, delay, ...) are
        this controller's own; a saved window longer than ``window`` keeps its newest
        costs. A state for another limit is refused."""
        where = "LagrangeController.load_state_dict"
        if not isinstance(state, Mapping) or state.get("format") != _STATE_FORMAT:
            found = state.get("format") if isinstance(state, Mapping) else type(state).__name__
            raise DataError(f"not a Lagrange state (format {found!r}, expected {_STATE_FORMAT!r})")
        try:
            limit = _finite("limit", state["limit"])
            log_lambda = _finite("log_lambda", state["log_lambda"])
            updates = _count("updates", state["updates"], 0)
        except KeyError as exc:
            raise DataError(f"Lagrange state without {exc}", where) from None
        except UsageError as exc:
            raise DataError(f"malformed Lagrange state: {exc}", where) from None
        costs = _vector("costs", state.get("costs", []), where)
        if limit != self.limit:
            raise DataError(
                f"the state is for limit {limit}, this controller's limit is {self.limit}",
                where,
                "resume with the same policy, or start the multiplier afresh",
            )
        self._log_lambda = self._clamped(log_lambda)
        self._costs = deque(costs.tolist(), maxlen=self.window)
        self._updates = updates


class LagrangeSet:
    """One :class:`LagrangeController` per constraint, combined into one shaped reward:
    ``(r - Σᵢ λᵢ cᵢ) / (1 + Σᵢ λᵢ)``.

    ``costs`` are ``[n, k]`` arrays whose columns follow :attr:`names`. ``applies``,
    an optional ``[n, k]`` boolean mask, says which completions each constraint covers:
    only those costs enter its window (a constraint's ``applies_to``).

    >>> lag = LagrangeSet.for_limits({"toxic": 0.02, "too_long": 0.1}, lr=0.05)
    >>> lag.update(costs)                  # doctest: +SKIP
    {'toxic': 1.04, 'too_long': 0.97}
    >>> lag.shape(rewards, costs)          # doctest: +SKIP
    """

    def __init__(self, controllers: Mapping[str, LagrangeController]):
        self.controllers = dict(controllers)
        for name, ctl in self.controllers.items():
            if not isinstance(ctl, LagrangeController):
                raise UsageError(f"{name!r} is a {type(ctl).__name__}, not a LagrangeController")

    @classmethod
    def for_limits(cls, limits: Mapping[str, float], **settings: Any) -> LagrangeSet:
        """A controller per ``{name: limit}``, each with the same ``settings``
        (``lambda_init``, ``lr``, ``window``, ``lambda_max``, ``delay``)."""
        return cls({name: LagrangeController(limit, **settings) for name, limit in limits.items()})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.controllers)

    @property
    def lams(self) -> dict[str, float]:
        return {name: ctl.lam for name, ctl in self.controllers.items()}

    def __len__(self) -> int:
        return len(self.controllers)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}: λ={c.lam:.6g}" for n, c in self.controllers.items())
        return f"LagrangeSet({inner})"

    def _matrix(self, name: str, values: Any, where: str, dtype: type = np.float64) -> Any:
        try:
            arr: npt.NDArray[Any] = np.asarray(values, dtype=dtype)
        except (TypeError, ValueError):
            raise DataError(f"{name} must be an [n, {len(self)}] array", where) from None
        if arr.ndim == 1 and len(self) == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[1] != len(self):
            raise DataError(
                f"{name} must be [n, {len(self)}] (columns {', '.join(self.names)}), "
                f"got shape {arr.shape}",
                where,
            )
        if dtype is np.float64 and not np.isfinite(arr).all():
            raise DataError(f"{name} must be finite", where)
        return arr

    def _columns(self, costs: Any, applies: Any, where: str) -> list[FloatArray]:
        c = self._matrix("costs", costs, where)
        mask = (
            np.ones(c.shape, dtype=bool)
            if applies is None
            else self._matrix("applies", applies, where, dtype=bool)
        )
        if mask.shape != c.shape:
            raise DataError(f"applies has shape {mask.shape}, costs {c.shape}", where)
        return [c[mask[:, j], j] for j in range(len(self))]

    def observe(self, costs: Any, applies: Any = None) -> None:
        """:meth:`LagrangeController.observe` for every constraint."""
        cols = self._columns(costs, applies, "LagrangeSet.observe")
        for ctl, col in zip(self.controllers.values(), cols, strict=True):
            ctl.observe(col)

    def update(self, costs: Any, applies: Any = None) -> dict[str, float]:
        """:meth:`LagrangeController.update` for every constraint; returns each λ.
        A constraint that covers none of the batch's completions does not step."""
        cols = self._columns(costs, applies, "LagrangeSet.update")
        for ctl, col in zip(self.controllers.values(), cols, strict=True):
            ctl.update(col)
        return self.lams

    def shape(self, rewards: Any, costs: Any) -> FloatArray:
        """``(r - Σ λᵢ cᵢ) / (1 + Σ λᵢ)`` per completion (rewards or advantages)."""
        where = "LagrangeSet.shape"
        r = _vector("rewards", rewards, where)
        c = self._matrix("costs", costs, where)
        if c.shape[0] != r.size:
            raise DataError(f"{r.size} rewards but {c.shape[0]} rows of costs", where)
        lams = np.array([ctl.lam for ctl in self.controllers.values()], dtype=np.float64)
        return np.asarray((r - c @ lams) / (1.0 + lams.sum()), dtype=np.float64)

    def state_dict(self) -> dict[str, Any]:
        return {name: ctl.state_dict() for name, ctl in self.controllers.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output; every constraint must be in it."""
        if not isinstance(state, Mapping):
            raise DataError(f"a LagrangeSet state is a mapping, not {type(state).__name__}")
        missing = [n for n in self.names if n not in state]
        if missing:
            raise DataError(
                f"the saved state has no multiplier for {', '.join(map(repr, missing))}",
                "LagrangeSet.load_state_dict",
                f"it has {', '.join(map(repr, state)) or 'none'}",
            )
        for name, ctl in self.controllers.items():
            ctl.load_state_dict(state[name])
