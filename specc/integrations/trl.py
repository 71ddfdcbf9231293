"""TRL: the compiled reward as a reward function for ``GRPOTrainer`` and ``RLOOTrainer``.

TRL calls each reward function as ``f(prompts=, completions=, completion_ids=,
**dataset_columns, trainer_state=, log_extra=, log_metric=)`` and wants one float, or
``None`` (not applicable), per completion. :func:`rbr_reward` grades the completions
with the policy's grader and returns the fitted RBR reward; the response type of each
row comes from a dataset column (``response_type`` by default).

>>> from specc.integrations.trl import rbr_reward
>>> rbr = rbr_reward("out/safety", grader="hf:/models/grader")          # doctest: +SKIP
>>> trainer = GRPOTrainer(model=..., args=GRPOConfig(...), train_dataset=data,
...                       reward_funcs=[helpfulness_rm, rbr],             # the RBR paper
...                       callbacks=[rbr.callback])                       # doctest: +SKIP

With constraints (the policy's ``constraint`` blocks) the reward is Lagrange-shaped,
``(r - Σ λᵢ cᵢ) / (1 + Σ λᵢ)`` (``specc.safe``), and each λᵢ takes one Safe RLHF
step per training step from the costs of that step's completions. ``rbr.callback``
(a ``transformers.TrainerCallback``) tells the reward where training steps begin and
end, so evaluation batches never move λ, and saves λ with each checkpoint; the reward
refuses to run inside a trainer without it. The first batch scored in a training step
updates λ and is shaped with the updated λ (Safe RLHF's order); later batches of the
same step only join the cost window. Under ``torch.distributed`` the ranks exchange
their costs first, so every rank holds the same λ.

Metrics go to TRL's ``log_metric`` each call: ``rbr/reward`` (the mean unshaped
reward), ``rbr/tier/<tier>`` (mean tier probability over the rows that have the tier),
``rbr/cost/<constraint>`` (mean cost over the rows the constraint covers),
``rbr/lambda/<constraint>`` and ``rbr/unscored`` (the share of rows given ``None``).
``rbr`` is the function's ``__name__``; set it to tell two RBR rewards apart.

This module imports neither TRL nor transformers until ``rbr.callback`` is built.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from specc.errors import DataError, UsageError
from specc.files import write_bytes
from specc.jsonl import read_json_file
from specc.safe import MAX_STATE_BYTES, LagrangeSet

if TYPE_CHECKING:
    from specc.artifact import Artifact
    from specc.grade import AnyGrader
    from specc.reward import Reward, ScoredBatch

__all__ = ["AsyncRBRReward", "RBRReward", "rbr_reward"]

logger = logging.getLogger(__name__)

#: The file ``rbr.callback`` writes into each checkpoint folder (``{name}`` is the
#: reward's ``__name__``).
STATE_FILE = "specc-lagrange-{name}.json"

_REMOTE_GRADERS = ("openai",)


def rbr_reward(
    artifact: str | Path | Artifact,
    *,
    grader: str | AnyGrader,
    response_type_column: str = "response_type",
    constraints: bool | LagrangeSet = True,
    **grader_options: Any,
) -> RBRReward | AsyncRBRReward:
    """A TRL reward function for the fitted policy ``artifact``.

    ``grader`` is a ``specc grade`` grader (``hf:PATH``, ``openai:URL#MODEL``,
    ``rules``) or a grader object; ``grader_options`` go to :func:`specc.load`
    (``device``, ``batch_size``, ``cache``, ...). With a remote (``openai``) grader the
    function is ``async``, so TRL grades it concurrently with other async rewards.

    ``constraints``: True shapes the reward with one Lagrange multiplier per
    constraint of the policy (Safe RLHF's defaults: λ₀ = 1, lr 0.1, window 128), a
    :class:`~specc.safe.LagrangeSet` with one controller per constraint sets them
    yourself, False returns the unshaped reward."""
    from specc.reward import load

    if not isinstance(response_type_column, str) or not response_type_column:
        raise UsageError("response_type_column must be a dataset column name")
    reward = load(artifact, grader=grader, **grader_options)
    lagrange = _lagrange_for(reward, constraints)
    remote = getattr(reward.grader, "kind", None) in _REMOTE_GRADERS
    cls = AsyncRBRReward if remote else RBRReward
    return cls(reward, response_type_column=response_type_column, lagrange=lagrange)


def _lagrange_for(reward: Reward, constraints: bool | LagrangeSet) -> LagrangeSet | None:
    if not isinstance(constraints, (bool, LagrangeSet)):
        raise UsageError(
            f"constraints must be True, False or a specc.safe.LagrangeSet, not "
            f"{type(constraints).__name__}"
        )
    limits = {c.name: c.limit for c in reward.constraints}
    if not isinstance(constraints, LagrangeSet):
        return LagrangeSet.for_limits(limits) if constraints and limits else None
    if set(constraints.names) != set(limits):
        raise UsageError(
            f"the LagrangeSet has controllers for {', '.join(constraints.names) or 'nothing'}; "
            f"the policy's constraints are {', '.join(limits) or 'none'} (give one "
            "controller per constraint, named as in the policy)"
        )
    for name, ctl in constraints.controllers.items():
        if ctl.limit != limits[name]:
            logger.warning(
                "constraint %r: the controller's limit %s overrides the policy's %s",
                name,
                ctl.limit,
                limits[name],
            )
    if not limits:
        return None
    # The same controllers, in the policy's order: the order of the cost columns.
    return LagrangeSet({name: constraints.controllers[name] for name in limits})


class _RBRBase:
    """What the sync and async reward functions share (neither is an ``nn.Module``:
    TRL would take one for a sequence classifier)."""

    def __init__(
        self,
        reward: Reward,
        *,
        response_type_column: str = "response_type",
        lagrange: LagrangeSet | None = None,
        name: str = "rbr",
    ):
        self.__name__ = name
        self.reward = reward
        self.response_type_column = response_type_column
        self.lagrange = lagrange
        self._fitted = set(reward.module.response_types)
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._attached = False
        self._in_step = False
        self._stepped = False
        self._calls = 0
        self._callback: Any = None

    def __repr__(self) -> str:
        lag = f", {self.lagrange!r}" if self.lagrange is not None else ""
        return f"<{type(self).__name__} {self.__name__!r} {self.reward.artifact.path}{lag}>"

    # ------------------------------------------------------------------ the trainer's steps

    @property
    def callback(self) -> Any:
        """The ``transformers.TrainerCallback`` to pass in ``callbacks=[...]``."""
        if self._callback is None:
            self._callback = _callback_class()(self)
        return self._callback

    def _train_begin(self, output_dir: str, global_step: int) -> None:
        with self._lock:
            self._attached = True
            self._in_step = self._stepped = False
        if global_step > 0 and self.lagrange is not None:
            path = Path(output_dir) / f"checkpoint-{global_step}" / self.state_file
            if path.is_file():
                self.load_state(path)
                logger.info("%s: resumed the Lagrange multipliers from %s", self.__name__, path)
            else:
                logger.warning(
                    "%s: resuming at step %d without %s: the Lagrange multipliers start again "
                    "from lambda_init",
                    self.__name__,
                    global_step,
                    path,
                )

    def _step_begin(self) -> None:
        with self._lock:
            self._in_step, self._stepped = True, False

    def _step_end(self) -> None:
        with self._lock:
            self._in_step = False

    @property
    def state_file(self) -> str:
        return STATE_FILE.format(name=self.__name__)

    def save_state(self, path: str | Path) -> None:
        """Write the Lagrange multipliers' state as JSON, atomically (the callback does
        this into every checkpoint folder)."""
        if self.lagrange is None:
            return
        with self._lock:
            state = {"reward": self.__name__, "lagrange": self.lagrange.state_dict()}
        write_bytes(path, json.dumps(state).encode("utf-8"))

    def load_state(self, path: str | Path) -> None:
        """Restore what :meth:`save_state` wrote."""
        if self.lagrange is None:
            return
        state = read_json_file(path, "the Lagrange state", MAX_STATE_BYTES)
        if not isinstance(state, dict) or "lagrange" not in state:
            raise DataError("not a Lagrange state file written by specc", str(path))
        with self._lock:
            self.lagrange.load_state_dict(state["lagrange"])

    # ------------------------------------------------------------------ scoring

    def _response_types(self, kwargs: Mapping[str, Any], n: int) -> list[str | None]:
        column = self.response_type_column
        if column not in kwargs:
            known = sorted(
                k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric")
            )
            raise UsageError(
                f"{self.__name__}: the dataset has no column {column!r} with each prompt's "
                f"response type (columns: {', '.join(known) or 'none'}); add one, or pass "
                "response_type_column= to rbr_reward"
            )
        values = list(kwargs[column])
        if len(values) != n:
            raise DataError(f"{len(values)} values in column {column!r} for {n} completions")
        out: list[str | None] = []
        for i, value in enumerate(values):
            if value is None:
                out.append(None)
                continue
            if not isinstance(value, str):
                raise DataError(
                    f"column {column!r} must hold response type names, not "
                    f"{type(value).__name__} ({value!r})",
                    f"batch row {i}",
                )
            try:
                name = self.reward.artifact.response_type(value).name
            except KeyError as exc:
                self._warn_once(value, f"{exc.args[0]}; its completions get no reward (None)")
                out.append(None)
                continue
            if name not in self._fitted:
                self._warn_once(
                    value,
                    f"response type {name!r} has no fitted weights; its completions get no "
                    "reward (None)",
                )
                out.append(None)
                continue
            out.append(name)
        return out

    def _warn_once(self, value: str, message: str) -> None:
        if value not in self._warned:
            self._warned.add(value)
            logger.warning("%s: %s", self.__name__, message)

    def _score(
        self, prompts: Sequence[Any], completions: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> list[float | None]:
        n = len(prompts)
        if len(completions) != n:
            raise DataError(f"{n} prompts but {len(completions)} completions")
        types = self._response_types(kwargs, n)
        keep = [i for i, t in enumerate(types) if t is not None]
        self._calls += 1
        rows = [
            {
                "id": f"{self._calls}-{i}",
                "prompt": prompts[i],
                "completion": completions[i],
                "response_type": types[i],
            }
            for i in keep
        ]
        batch = self.reward.score_with_costs(rows)
        rewards = batch.rewards
        if self.lagrange is not None:
            self._lagrange_step(batch, inside_trainer=kwargs.get("trainer_state") is not None)
            rewards = self.lagrange.shape(batch.rewards, batch.costs)
        out: list[float | None] = [None] * n
        for k, i in enumerate(keep):
            out[i] = float(rewards[k])
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            self._log(log_metric, batch, n)
        log_extra = kwargs.get("log_extra")
        if callable(log_extra):
            tiers: list[str | None] = [None] * n
            for k, i in enumerate(keep):
                classes = batch.rows[k].classes
                tiers[i] = max(classes, key=classes.__getitem__) if classes else None
            log_extra(f"{self.__name__}/tier", tiers)
        return out

    def _lagrange_step(self, batch: ScoredBatch, *, inside_trainer: bool) -> None:
        assert self.lagrange is not None
        with self._lock:
            if inside_trainer and not self._attached:
                raise UsageError(
                    f"{self.__name__}: the policy has constraints, so the reward needs its "
                    f"callback to update the Lagrange multipliers: pass "
                    f"callbacks=[{self.__name__}.callback] to the trainer (or build the "
                    "reward with constraints=False)"
                )
            if not self._in_step:
                return  # evaluation, or a call outside training: shape only
            costs, applies = _all_processes(batch.costs, batch.applies)
            if self._stepped:
                self.lagrange.observe(costs, applies)
            else:
                self.lagrange.update(costs, applies)
                self._stepped = True

    def _log(self, log_metric: Callable[[str, float], Any], batch: ScoredBatch, n: int) -> None:
        name = self.__name__
        log_metric(f"{name}/unscored", (n - len(batch.rows)) / n if n else 0.0)
        if not batch.rows:
            return
        log_metric(f"{name}/reward", float(batch.rewards.mean()))
        tiers: dict[str, list[float]] = {}
        for row in batch.rows:
            for tier, p in row.classes.items():
                tiers.setdefault(tier, []).append(p)
        for tier, ps in tiers.items():
            log_metric(f"{name}/tier/{tier}", math.fsum(ps) / len(ps))
        for j, constraint in enumerate(batch.constraints):
            covered = batch.applies[:, j]
            if covered.any():
                log_metric(f"{name}/cost/{constraint}", float(batch.costs[covered, j].mean()))
        if self.lagrange is not None:
            for constraint, lam in self.lagrange.lams.items():
                log_metric(f"{name}/lambda/{constraint}", lam)


def _all_processes(costs: np.ndarray, applies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every process's costs under ``torch.distributed`` (data-parallel training: each
    rank scores its share, and every rank calls the reward at the same point of a
    step, so the collective is safe); the costs as given in a single process. With
    every rank stepping on the same costs, every rank has the same λ."""
    import torch.distributed as dist  # torch is loaded in any trainer by now

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return costs, applies
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (costs, applies))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class RBRReward(_RBRBase):
    """The synchronous TRL reward function :func:`rbr_reward` returns for local
    graders (``hf``, ``rules``)."""

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        return self._score(prompts, completions, kwargs)


class AsyncRBRReward(_RBRBase):
    """The ``async`` TRL reward function for remote graders: grading runs in a worker
    thread while TRL awaits its other async reward functions."""

    async def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        return await asyncio.to_thread(self._score, prompts, completions, kwargs)


@functools.cache
def _callback_class() -> type:
    from transformers import TrainerCallback

    class LagrangeCallback(TrainerCallback):
        """Tells an RBR reward function where TRL's training steps begin and end, and
        keeps its Lagrange multipliers in checkpoints."""

        def __init__(self, owner: _RBRBase):
            self.owner = owner

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.owner._train_begin(args.output_dir, state.global_step)

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.owner._step_begin()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.owner._step_end()

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if folder.is_dir():
                    self.owner.save_state(folder / self.owner.state_file)

    return LagrangeCallback
