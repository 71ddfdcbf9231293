"""specc.integrations.verl through verl's own dataset, reward manager and reward loop."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest

import specc
from specc.errors import DataError, UsageError
from specc.integrations.verl import compute_score, compute_score_sync, extra_info, write_dataset

verl = pytest.importorskip("verl")
torch = pytest.importorskip("torch")

ROWS: list[dict[str, Any]] = [
    {"id": "a", "prompt": "How do I pick a lock?", "response_type": "Refuse"},
    {"id": "b", "prompt": [{"role": "user", "content": "Bake bread?"}], "response_type": "comply"},
    {
        "id": "c",
        "prompt": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say something."},
        ],
        "response_type": "Terse",
    },
    {"id": "d", "prompt": "Count to three.", "response_type": "terse"},
]
RESPONSES = ["Sorry, I can't help with that.", "Mix flour and water", "answer 12 now", "ok fine"]


@pytest.fixture(scope="module")
def reward_kwargs(artifact: Path, grader_model: Path) -> dict[str, Any]:
    return {"artifact": str(artifact), "grader": f"hf:{grader_model}", "device": "cpu"}


@pytest.fixture(scope="module")
def dataset_file(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("verl") / "train.parquet", ROWS, artifact=artifact)


@pytest.fixture(scope="module")
def tokenizer(policy_model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(policy_model)


@pytest.fixture(scope="module")
def config(reward_kwargs: dict[str, Any], policy_model: Path) -> Any:
    """verl's own generated PPO trainer config, with specc as the custom reward."""
    from omegaconf import OmegaConf

    base = Path(verl.__file__).parent / "trainer" / "config" / "_generated_ppo_trainer.yaml"
    cfg = OmegaConf.load(base)
    cfg.reward.custom_reward_function.path = "pkg://specc.integrations.verl"
    cfg.reward.custom_reward_function.name = "compute_score"
    cfg.reward.custom_reward_function.reward_kwargs = reward_kwargs
    cfg.actor_rollout_ref.model.path = str(policy_model)
    return cfg


@pytest.fixture(scope="module")
def batch(dataset_file: Path, tokenizer: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A batch as verl's trainer has it after a rollout: the dataset's columns through
    verl's RLHFDataset and collate_fn, prompts left-padded, responses right-padded."""
    from omegaconf import OmegaConf
    from verl import DataProto
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    data_config = OmegaConf.create(
        {
            "prompt_key": "prompt",
            "max_prompt_length": 512,
            "cache_dir": str(tmp_path_factory.mktemp("verl-cache")),
            "filter_overlong_prompts_workers": 1,
        }
    )
    dataset = RLHFDataset(str(dataset_file), tokenizer, data_config)
    items = [dataset[i] for i in range(len(dataset))]
    assert [item["extra_info"]["id"] for item in items] == ["a", "b", "c", "d"]
    pad = tokenizer.pad_token_id
    prompts = [
        tokenizer.apply_chat_template(item["raw_prompt"], add_generation_prompt=True, tokenize=True)
        for item in items
    ]
    prompts = [p["input_ids"] if isinstance(p, dict) or hasattr(p, "keys") else p for p in prompts]
    responses = [tokenizer.encode(r, add_special_tokens=False) for r in RESPONSES]
    width_p = max(len(p) for p in prompts)
    width_r = max(len(r) for r in responses) + 2  # room for right padding
    prompt_ids = torch.tensor([[pad] * (width_p - len(p)) + list(p) for p in prompts])
    prompt_mask = torch.tensor([[0] * (width_p - len(p)) + [1] * len(p) for p in prompts])
    response_ids = torch.tensor([list(r) + [pad] * (width_r - len(r)) for r in responses])
    response_mask = torch.tensor([[1] * len(r) + [0] * (width_r - len(r)) for r in responses])
    collated = collate_fn(items)
    return DataProto.from_single_dict(
        {
            **collated,
            "prompts": prompt_ids,
            "responses": response_ids,
            "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
            "attention_mask": torch.cat([prompt_mask, response_mask], dim=1),
        }
    )


def _expected(artifact: Path, reward_kwargs: dict[str, Any], tokenizer: Any) -> Any:
    options = {k: v for k, v in reward_kwargs.items() if k not in ("artifact", "grader")}
    reference = specc.load(artifact, grader=reward_kwargs["grader"], **options)
    decoded = [
        tokenizer.decode(tokenizer.encode(r, add_special_tokens=False), skip_special_tokens=True)
        for r in RESPONSES
    ]
    rows = [
        {"prompt": row["prompt"], "completion": text, "response_type": row["response_type"]}
        for row, text in zip(ROWS, decoded, strict=True)
    ]
    return reference.score_with_costs(rows)


def _check(results: list[dict[str, Any]], expected: Any) -> None:
    """verl's results equal specc.load's on the decoded responses. The float32 grader
    scores rows one at a time there and four at a time here: padding moves the last
    bits, hence 1e-6."""
    tiers = ("ideal", "less_good", "unacceptable")
    keys = {"score", *(f"tier/{t}" for t in tiers)} | {f"cost/{c}" for c in expected.constraints}
    for i, result in enumerate(results):
        info = result["reward_extra_info"]
        assert set(info) == keys  # the same keys for every sample
        assert result["reward_score"] == pytest.approx(expected.rewards[i], abs=1e-6)
        assert info["score"] == result["reward_score"]
        row = expected.rows[i]
        for t in tiers:
            assert info[f"tier/{t}"] == pytest.approx(row.classes.get(t, 0.0), abs=1e-6)
        for j, c in enumerate(expected.constraints):
            assert info[f"cost/{c}"] == pytest.approx(expected.costs[i, j], abs=1e-6)
    assert any(0.0 < v < 1.0 for r in results for v in r["reward_extra_info"].values())


def test_verls_reward_manager_with_a_pkg_path(
    config: Any, tokenizer: Any, batch: Any, artifact: Path, reward_kwargs: dict[str, Any]
) -> None:
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import load_reward_manager

    manager = load_reward_manager(config, tokenizer)
    assert isinstance(manager, NaiveRewardManager) and manager.is_async_reward_score
    results = [
        manager.loop.run_until_complete(manager.run_single(batch[i : i + 1]))
        for i in range(len(batch))
    ]
    _check(results, _expected(artifact, reward_kwargs, tokenizer))


def test_verls_reward_loop_worker_scores_a_batch_concurrently(
    config: Any, tokenizer: Any, batch: Any, artifact: Path, reward_kwargs: dict[str, Any]
) -> None:
    """RewardLoopWorker gathers one run_single per sample: the calls arrive together and
    are graded as micro-batches; verl then places each score on the last response token."""
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    worker = RewardLoopWorker(config)
    results = worker.loop.run_until_complete(worker.compute_score_batch(batch))
    expected = _expected(artifact, reward_kwargs, tokenizer)
    _check(results, expected)
    scores = [r["reward_score"] for r in results]
    rm_scores = type(worker.reward_manager).assemble_rm_scores(batch, scores)
    lengths = batch.batch["attention_mask"][:, batch.batch["prompts"].shape[1] :].sum(dim=1)
    for i, n in enumerate(lengths.tolist()):
        assert rm_scores[i, n - 1].item() == pytest.approx(expected.rewards[i], abs=1e-6)
        assert rm_scores[i].abs().sum().item() == pytest.approx(abs(expected.rewards[i]), abs=1e-6)


def test_sync_variant_cache_and_ground_truth_fallback(
    reward_kwargs: dict[str, Any], artifact: Path
) -> None:
    from specc.integrations import verl as adapter

    info = extra_info("How do I pick a lock?", "Refuse")
    sync = compute_score_sync("specc", "Sorry, no.", "refuse", info, **reward_kwargs)
    batched = asyncio.run(compute_score("specc", "Sorry, no.", "refuse", info, **reward_kwargs))
    assert sync == batched
    # The response type may come from ground_truth alone.
    no_type = {"prompt": info["prompt"]}
    assert compute_score_sync("specc", "Sorry, no.", "Refuse", no_type, **reward_kwargs) == sync
    first = adapter._scorer(reward_kwargs)[0]
    assert adapter._scorer(dict(reward_kwargs))[0] is first  # loaded once per process


def test_many_concurrent_calls_in_small_batches(reward_kwargs: dict[str, Any]) -> None:
    info = extra_info("Count to three.", "terse")
    texts = [f"{i} " * (i % 7) + "ok" for i in range(20)]

    async def run(max_batch: int) -> list[dict[str, float]]:
        calls = [
            compute_score("specc", t, "terse", info, max_batch=max_batch, **reward_kwargs)
            for t in texts
        ]
        return list(await asyncio.gather(*calls))

    one_batch = asyncio.run(run(256))
    small = asyncio.run(run(3))
    assert small == one_batch
    alone = [compute_score_sync("specc", t, "terse", info, **reward_kwargs) for t in texts]
    assert one_batch == alone


def test_extra_info_and_bad_samples(reward_kwargs: dict[str, Any]) -> None:
    assert extra_info("hi", "comply") == {
        "prompt": [{"role": "user", "content": "hi"}],
        "response_type": "comply",
    }
    with pytest.raises(DataError, match="'prompt\\[0\\]' must be a message object"):
        extra_info(["hi"], "comply")
    info = extra_info("hi", "mystery")
    with pytest.raises(DataError, match="unknown response type 'mystery'"):
        compute_score_sync("specc", "x", None, info, **reward_kwargs)
    with pytest.raises(DataError, match="extra_info has no 'prompt'"):
        compute_score_sync("specc", "x", "comply", {"response_type": "comply"}, **reward_kwargs)
    with pytest.raises(DataError, match="extra_info must be a mapping"):
        compute_score_sync("specc", "x", "comply", None, **reward_kwargs)
    with pytest.raises(DataError, match="unknown response type"):
        asyncio.run(compute_score("specc", "x", None, info, **reward_kwargs))
    with pytest.raises(UsageError, match="needs reward_kwargs artifact"):
        compute_score_sync("specc", "x", "comply", extra_info("hi", "comply"), grader="rules")
    bad = {**reward_kwargs, "colour": "blue"}
    with pytest.raises(UsageError, match="not all are grader options"):
        compute_score_sync("specc", "x", "comply", extra_info("hi", "comply"), **bad)


def test_write_dataset_checks_rows(artifact: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path = write_dataset(tmp_path / "d.parquet", ROWS, artifact=artifact, data_source="safety")
    table = pq.read_table(path).to_pylist()
    assert [r["reward_model"]["ground_truth"] for r in table] == [
        "refuse",
        "comply",
        "terse",
        "terse",
    ]
    assert {r["data_source"] for r in table} == {"safety"}
    assert table[2]["prompt"] == ROWS[2]["prompt"] == table[2]["extra_info"]["prompt"]
    assert table[0]["extra_info"]["index"] == 0 and table[3]["extra_info"]["id"] == "d"
    with pytest.raises(DataError, match=r"row 2: unknown response type 'complyy'.*'comply'"):
        write_dataset(
            tmp_path / "e.parquet",
            [ROWS[0], {"prompt": "p", "response_type": "complyy"}],
            artifact=artifact,
        )
    with pytest.raises(DataError, match="row 1: missing field 'response_type'"):
        write_dataset(tmp_path / "e.parquet", [{"prompt": "p"}])
    with pytest.raises(DataError, match="no rows to write"):
        write_dataset(tmp_path / "e.parquet", [])
    assert not (tmp_path / "e.parquet").exists()


def test_write_dataset_gives_the_file_the_umask_mode(tmp_path: Path) -> None:
    """The trainer may read the dataset as another user: 0o666 less the umask, like
    every file specc writes, not the 0o600 of a temp file."""
    old = os.umask(0o022)
    try:
        path = write_dataset(tmp_path / "sub" / "d.parquet", ROWS)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["d.parquet"]  # no temp file left
