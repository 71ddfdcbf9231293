"""verl: ``compute_score`` for ``reward.custom_reward_function``, and verl's dataset.

verl's reward managers call ``compute_score(data_source=, solution_str=,
ground_truth=, extra_info=, **reward_kwargs)`` once per completion and log every
key of a returned dict as ``reward_extra_info``. The prompt is not among the
arguments, so it travels in the dataset's ``extra_info`` with the response type;
:func:`write_dataset` writes such a parquet file and :func:`extra_info` builds the
column for a dataset of your own.

.. code-block:: yaml

    reward:
      custom_reward_function:
        path: pkg://specc.integrations.verl
        name: compute_score
        reward_kwargs:
          artifact: /data/out/safety
          grader: hf:/models/grader   # or openai:URL#MODEL, rules
          device: cuda:0              # any other key is a specc.load grader option

>>> write_dataset("train.parquet", [{"prompt": "...", "response_type": "comply"}],
...               artifact="out/safety")                               # doctest: +SKIP

``compute_score`` is ``async``: verl's reward loop scores a batch's completions
concurrently, and the calls that arrive together (within ``batch_wait`` seconds, up
to ``max_batch`` of them) are graded as one batch, in a worker thread. The loaded
reward is cached per process and per ``(artifact, grader, options)``. It returns
``{"score": reward, "tier/<tier>": p, ..., "cost/<constraint>": c, ...}`` with the
same keys for every completion: every tier of the policy (0 for tiers the row's
response type lacks) and every constraint (0 outside its ``applies_to``). The score is
the unshaped RBR reward: verl's reward workers are separate processes, so no one of
them can own a Lagrange multiplier (see ``docs/integrations.md``).

Nothing here imports verl; :func:`write_dataset` imports pyarrow.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.errors import DataError, UsageError

if TYPE_CHECKING:
    from specc.artifact import Artifact
    from specc.reward import Reward

__all__ = ["compute_score", "compute_score_sync", "extra_info", "write_dataset"]

#: Keys verl itself may add to ``reward_kwargs`` (with a reward-model router).
_VERL_KWARGS = ("reward_router_address", "reward_model_tokenizer")
#: ``reward_kwargs`` that shape the batching rather than the grader.
_BATCH_KWARGS = ("batch_wait", "max_batch")

_rewards: dict[tuple[str, str, str], _Scorer] = {}
#: A row waiting to be graded and the future its ``compute_score`` call awaits.
_Pending = tuple[dict[str, Any], "asyncio.Future[dict[str, float]]"]
_rewards_lock = threading.Lock()


class _Scorer:
    """One loaded reward, scoring rows one batch at a time (graders are not assumed
    thread-safe)."""

    def __init__(self, reward: Reward):
        self.reward = reward
        self.lock = threading.Lock()
        manifest = reward.artifact.manifest
        self.tiers = [t.name for t in manifest.tiers]
        self.constraints = [c.name for c in manifest.constraints]
        self.batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batcher] = (
            weakref.WeakKeyDictionary()
        )

    def score(self, rows: list[dict[str, Any]]) -> list[dict[str, float]]:
        with self.lock:
            batch = self.reward.score_with_costs(rows)
        out = []
        for i, row in enumerate(batch.rows):
            result = {"score": float(batch.rewards[i])}
            result.update({f"tier/{t}": float(row.classes.get(t, 0.0)) for t in self.tiers})
            result.update(
                {f"cost/{c}": float(batch.costs[i, j]) for j, c in enumerate(self.constraints)}
            )
            out.append(result)
        return out

    def batcher(self, wait: float, max_batch: int) -> _Batcher:
        loop = asyncio.get_running_loop()
        found = self.batchers.get(loop)
        if found is None:
            found = self.batchers[loop] = _Batcher(self, loop)
        found.wait, found.max_batch = wait, max_batch
        return found


class _Batcher:
    """Collects the rows of concurrent ``compute_score`` calls on one event loop and
    grades them together in the loop's default executor."""

    def __init__(self, scorer: _Scorer, loop: asyncio.AbstractEventLoop):
        self.scorer = scorer
        self.loop = loop
        self.wait = 0.005
        self.max_batch = 256
        self.pending: list[_Pending] = []
        self.timer: asyncio.TimerHandle | None = None
        self.running: set[asyncio.Task[None]] = set()

    def submit(self, row: dict[str, Any]) -> asyncio.Future[dict[str, float]]:
        future: asyncio.Future[dict[str, float]] = self.loop.create_future()
        self.pending.append((row, future))
        if len(self.pending) >= self.max_batch:
            self.flush()
        elif self.timer is None:
            self.timer = self.loop.call_later(self.wait, self.flush)
        return future

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        batch, self.pending = self.pending, []
        if batch:
            task = self.loop.create_task(self._run(batch))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _run(self, batch: list[_Pending]) -> None:
        rows = [row for row, _ in batch]
        try:
            results = await self.loop.run_in_executor(None, self.scorer.score, rows)
        except Exception as exc:  # every caller of the batch sees the grader's error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _scorer(reward_kwargs: Mapping[str, Any]) -> tuple[_Scorer, dict[str, Any]]:
    """The cached reward for ``reward_kwargs`` and the batching settings."""
    options = {k: v for k, v in reward_kwargs.items() if k not in _VERL_KWARGS}
    batching = {k: options.pop(k) for k in _BATCH_KWARGS if k in options}
    artifact = options.pop("artifact", None)
    grader = options.pop("grader", None)
    if artifact is None or grader is None:
        missing = "artifact" if artifact is None else "grader"
        raise UsageError(
            f"specc.integrations.verl.compute_score needs reward_kwargs {missing}: set "
            "reward.custom_reward_function.reward_kwargs.artifact (the fitted artifact "
            "folder) and .grader (hf:PATH, openai:URL#MODEL or rules)"
        )
    if not isinstance(artifact, (str, os.PathLike)) or not isinstance(grader, str):
        raise UsageError("reward_kwargs artifact must be a path and grader a string")
    key = (str(Path(artifact).resolve()), grader, repr(sorted(options.items())))
    with _rewards_lock:
        found = _rewards.get(key)
        if found is None:
            from specc.reward import load

            try:
                found = _rewards[key] = _Scorer(load(Path(artifact), grader=grader, **options))
            except TypeError as exc:
                raise UsageError(
                    f"reward_kwargs {sorted(options)}: not all are grader options ({exc})"
                ) from None
    return found, batching


def _row(solution_str: Any, ground_truth: Any, info: Any, scorer: _Scorer) -> dict[str, Any]:
    """The specc row of one verl sample (validated, so one bad sample never fails the
    batch it would be graded with)."""
    from specc.grade.data import parse_row

    if not isinstance(info, Mapping):
        raise DataError(
            f"extra_info must be a mapping with the prompt and response type, not "
            f"{type(info).__name__}",
            "verl sample",
            "write the dataset with specc.integrations.verl.write_dataset or extra_info()",
        )
    rt = info.get("response_type")
    if rt is None and isinstance(ground_truth, str):
        rt = ground_truth
    if "prompt" not in info or rt is None:
        missing = "'prompt'" if "prompt" not in info else "'response_type'"
        raise DataError(
            f"extra_info has no {missing}",
            "verl sample",
            "write the dataset with specc.integrations.verl.write_dataset or extra_info()",
        )
    if not isinstance(solution_str, str):
        raise DataError(f"solution_str must be a string, not {type(solution_str).__name__}")
    prompt = _plain(info["prompt"])
    row = {"prompt": prompt, "completion": solution_str, "response_type": rt}
    parsed = parse_row(row, f"verl sample (index {info.get('index', '?')})", 0)
    try:
        name = scorer.reward.artifact.response_type(parsed.response_type).name
    except KeyError as exc:
        raise DataError(str(exc.args[0]), parsed.where) from None
    if name not in scorer.reward.module.response_types:
        raise DataError(f"response type {name!r} has no fitted weights", parsed.where)
    return row


def _plain(value: Any) -> Any:
    """numpy arrays and other sequences from parquet back to lists of dicts."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, list):
        return [dict(m) if isinstance(m, Mapping) else m for m in value]
    return value


async def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **reward_kwargs: Any,
) -> dict[str, float]:
    """verl's ``custom_reward_function``: the RBR reward of one completion, with its
    tier probabilities and constraint costs (see the module docstring)."""
    scorer, batching = _scorer(reward_kwargs)
    row = _row(solution_str, ground_truth, extra_info, scorer)
    wait = float(batching.get("batch_wait", 0.005))
    max_batch = int(batching.get("max_batch", 256))
    if not (wait >= 0 and max_batch >= 1):
        raise UsageError("reward_kwargs batch_wait must be >= 0 and max_batch >= 1")
    return await scorer.batcher(wait, max_batch).submit(row)


def compute_score_sync(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **reward_kwargs: Any,
) -> dict[str, float]:
    """:func:`compute_score` without ``async`` or batching, for callers that want a
    plain function (``name: compute_score_sync``)."""
    scorer, _ = _scorer(reward_kwargs)
    return scorer.score([_row(solution_str, ground_truth, extra_info, scorer)])[0]


# --------------------------------------------------------------------------- the dataset


def extra_info(prompt: Any, response_type: str, **more: Any) -> dict[str, Any]:
    """The ``extra_info`` of one verl sample: the prompt as ``{"role", "content"}``
    messages (a string is one user message) and the response type, plus ``more``."""
    from specc.grade.data import parse_row

    row = parse_row(
        {"prompt": prompt, "completion": "", "response_type": response_type}, "extra_info", 0
    )
    messages = [{"role": r, "content": c} for r, c in row.messages]
    return {**more, "prompt": messages, "response_type": row.response_type}


def write_dataset(
    path: str | Path,
    rows: Iterable[Mapping[str, Any]],
    *,
    artifact: str | Path | Artifact | None = None,
    data_source: str = "specc",
    split: str = "train",
) -> Path:
    """Write rows (``prompt`` and ``response_type``, optional ``id``) as a parquet file
    in verl's RL dataset layout: ``data_source``, ``prompt`` (chat messages, what
    verl's ``RLHFDataset`` renders), ``ability``, ``reward_model`` (``style``,
    ``ground_truth``: the response type) and ``extra_info`` (:func:`extra_info` plus
    ``index``, ``split`` and ``id``). With ``artifact``, every response type is checked
    against the policy and written as its identifier. Returns ``path``."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - pyarrow comes with the verl/trl extras
        raise UsageError("write_dataset needs pyarrow: pip install specc[verl]") from None
    art = None
    if artifact is not None:
        from specc.artifact import Artifact, load_artifact

        art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    records = []
    for i, row in enumerate(rows):
        where = f"row {i + 1}"
        if not isinstance(row, Mapping):
            raise DataError(f"a row must be a mapping, not {type(row).__name__}", where)
        for field in ("prompt", "response_type"):
            if field not in row:
                raise DataError(f"missing field {field!r}", where)
        rt = row["response_type"]
        if not isinstance(rt, str):
            raise DataError(f"response_type must be a string, not {rt!r}", where)
        if art is not None:
            try:
                rt = art.response_type(rt).name
            except KeyError as exc:
                raise DataError(str(exc.args[0]), where) from None
        info = extra_info(row["prompt"], rt, index=i, split=split, id=str(row.get("id", i)))
        records.append(
            {
                "data_source": data_source,
                "prompt": info["prompt"],
                "ability": "rbr",
                "reward_model": {"style": "rule", "ground_truth": rt},
                "extra_info": info,
            }
        )
    if not records:
        raise DataError("no rows to write", str(path))
    from specc.files import Staging

    target = Path(path)
    with Staging() as stage, stage.open(target) as f:  # atomic, with the umask's mode
        pq.write_table(pa.Table.from_pylist(records), f)
    return target
