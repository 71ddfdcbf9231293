"""specc.integrations.trl: the reward function alone, then inside real TRL trainers."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import specc
from specc.errors import DataError, UsageError
from specc.integrations.trl import STATE_FILE, AsyncRBRReward, RBRReward, rbr_reward
from specc.safe import LagrangeController, LagrangeSet

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

CONVERSATION = [{"role": "user", "content": "How do I bake bread?"}]
TEXTS = ["Sorry, I can't.", "Mix flour and water", "answer 12 now", "no"]
TYPES = ["Refuse", "comply", "Terse", "terse"]


def _rows(prompts: list[Any], completions: list[Any], types: list[str]) -> list[dict[str, Any]]:
    return [
        {"prompt": p, "completion": c, "response_type": t}
        for p, c, t in zip(prompts, completions, types, strict=True)
    ]


@pytest.fixture(scope="module")
def hf_grader(grader_model: Path) -> str:
    return f"hf:{grader_model}"


# --------------------------------------------------------------------------- the function


def test_a_plain_callable_with_a_readable_name(artifact: Path, hf_grader: str) -> None:
    from torch import nn
    from trl.trainer.utils import get_callable_name, is_async_callable

    rbr = rbr_reward(artifact, grader=hf_grader, device="cpu")
    assert isinstance(rbr, RBRReward) and not isinstance(rbr, nn.Module)
    assert get_callable_name(rbr) == "rbr" and not is_async_callable(rbr)
    assert rbr.lagrange is not None and rbr.lagrange.names == ("no_digits", "no_blunt_refusals")


def test_plain_and_conversational_rows_score_as_specc_load(artifact: Path, hf_grader: str) -> None:
    rbr = rbr_reward(artifact, grader=hf_grader, constraints=False, device="cpu")
    expected = specc.load(artifact, grader=hf_grader, device="cpu")(
        _rows(["How do I bake bread?"] * 4, TEXTS, TYPES)
    )
    plain = rbr(prompts=["How do I bake bread?"] * 4, completions=TEXTS, response_type=TYPES)
    chat = rbr(
        prompts=[CONVERSATION] * 4,
        completions=[[{"role": "assistant", "content": t}] for t in TEXTS],
        response_type=TYPES,
    )
    assert plain == pytest.approx(expected.tolist(), abs=1e-12)
    assert chat == pytest.approx(plain, abs=1e-12)


def test_unknown_or_missing_response_types_get_none(
    artifact: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rbr = rbr_reward(artifact, grader="rules", constraints=False)
    out = rbr(
        prompts=["p"] * 4,
        completions=["ok", "ok", "ok", "ok"],
        response_type=["Terse", "mystery", None, "terse"],
    )
    assert out[1] is None and out[2] is None
    expected = float(specc.load(artifact, grader="rules")(_rows(["p"], ["ok"], ["terse"]))[0])
    assert out[0] == out[3] == pytest.approx(expected)
    assert "unknown response type 'mystery'" in caplog.text
    metrics: dict[str, float] = {}
    rbr(
        prompts=["p"], completions=["ok"], response_type=["mystery"], log_metric=metrics.__setitem__
    )
    assert metrics == {"rbr/unscored": 1.0}


def test_bad_batches_are_clear_errors(artifact: Path) -> None:
    rbr = rbr_reward(artifact, grader="rules")
    with pytest.raises(UsageError, match=r"no column 'response_type'.*columns: label"):
        rbr(prompts=["p"], completions=["c"], label=["x"])
    with pytest.raises(DataError, match="response type names, not int"):
        rbr(prompts=["p"], completions=["c"], response_type=[3])
    with pytest.raises(DataError, match="1 prompts but 2 completions"):
        rbr(prompts=["p"], completions=["c", "d"], response_type=["terse"])
    with pytest.raises(UsageError, match="response_type_column"):
        rbr_reward(artifact, grader="rules", response_type_column="")
    with pytest.raises(UsageError, match=r"True, False or a specc\.safe\.LagrangeSet"):
        rbr_reward(artifact, grader="rules", constraints="yes")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="controllers for no_digits; the policy's"):
        rbr_reward(artifact, grader="rules", constraints=LagrangeSet.for_limits({"no_digits": 0.1}))


def test_shaping_outside_a_trainer_uses_lambda_without_moving_it(artifact: Path) -> None:
    lagrange = LagrangeSet(
        {
            "no_blunt_refusals": LagrangeController(0.05, lambda_init=0.5),
            "no_digits": LagrangeController(0.1, lambda_init=2.0),
        }
    )
    rbr = rbr_reward(artifact, grader="rules", constraints=lagrange)
    assert rbr.lagrange is not None and rbr.lagrange.names == ("no_digits", "no_blunt_refusals")
    texts = ["answer 12 now", "ok fine", "a b c d e f g 7"]
    batch = specc.load(artifact, grader="rules").score_with_costs(
        _rows(["p"] * 3, texts, ["terse"] * 3)
    )
    out = rbr(prompts=["p"] * 3, completions=texts, response_type=["terse"] * 3)
    expected = (batch.rewards - batch.costs @ np.array([2.0, 0.5])) / (1 + 2.5)
    assert out == pytest.approx(expected.tolist(), abs=1e-12)
    assert rbr.lagrange.lams == {"no_digits": 2.0, "no_blunt_refusals": 0.5}


def test_inside_a_trainer_the_callback_is_required(artifact: Path) -> None:
    from transformers import TrainerState

    rbr = rbr_reward(artifact, grader="rules")
    with pytest.raises(UsageError, match=r"callbacks=\[rbr.callback\]"):
        rbr(prompts=["p"], completions=["c"], response_type=["terse"], trainer_state=TrainerState())
    off = rbr_reward(artifact, grader="rules", constraints=False)
    assert off(
        prompts=["p"], completions=["c"], response_type=["terse"], trainer_state=TrainerState()
    )


def test_state_files_round_trip_and_bad_ones_are_refused(artifact: Path, tmp_path: Path) -> None:
    rbr = rbr_reward(artifact, grader="rules")
    assert rbr.lagrange is not None
    rbr.lagrange.update(np.array([[1.0, 0.0]]), np.array([[True, False]]))
    rbr.save_state(tmp_path / "s.json")
    again = rbr_reward(artifact, grader="rules")
    again.load_state(tmp_path / "s.json")
    assert again.lagrange is not None and again.lagrange.lams == rbr.lagrange.lams
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(DataError, match=r"bad\.json: cannot read the Lagrange state"):
        again.load_state(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"x": 1}))
    with pytest.raises(DataError, match="not a Lagrange state file"):
        again.load_state(tmp_path / "other.json")


# --------------------------------------------------------------------------- an async grader


@pytest.fixture(scope="module")
def grade_server(grader_model: Path) -> Iterator[Any]:
    from specc.grade.hf import HFGrader
    from specc.grade.server import GradeServer, ModelService

    hf = HFGrader.from_pretrained(str(grader_model), device="cpu", dtype="float32")
    service = ModelService(hf.model, hf.tokenizer, "tiny", max_logprobs=len(hf.tokenizer))
    server = GradeServer(service, "127.0.0.1", 0)
    server.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_remote_grader_makes_an_async_reward(
    artifact: Path, grade_server: Any, hf_grader: str
) -> None:
    from trl.trainer.utils import is_async_callable

    rbr = rbr_reward(
        artifact, grader=f"openai:{grade_server.url}#tiny", constraints=False, top_logprobs=400
    )
    assert isinstance(rbr, AsyncRBRReward) and is_async_callable(rbr)
    out = asyncio.run(rbr(prompts=[CONVERSATION] * 4, completions=TEXTS, response_type=TYPES))
    local = specc.load(artifact, grader=hf_grader, device="cpu")(
        _rows([CONVERSATION] * 4, TEXTS, TYPES)
    )
    assert out == pytest.approx(local.tolist(), abs=1e-5)


# --------------------------------------------------------------------------- real trainers


class _Recorder:
    """Per training step, what TRL itself recorded: the prompts, the completions and
    each reward function's column of ``rewards_per_func`` (``trainer._logs``)."""

    def __init__(self) -> None:
        self.trainer: Any = None
        self.steps: list[dict[str, Any]] = []

    def callback(self) -> Any:
        from transformers import TrainerCallback

        recorder = self

        class Record(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                logs = recorder.trainer._logs
                recorder.steps.append(
                    {
                        "prompts": list(logs["prompt"]),
                        "completions": list(logs["completion"]),
                        "rewards": {k: list(v) for k, v in logs["rewards"].items()},
                    }
                )

        return Record()


#: The response type column of the training data: two rows get no reward.
DATA_TYPES = ["Refuse", "comply", "Terse", "mystery", "terse", "Comply", None, "refuse"]


def _dataset(conversational: bool) -> Any:
    rows = []
    for i, t in enumerate(DATA_TYPES):
        text = f"request {i}: how do I bake bread?"
        prompt: Any = [{"role": "user", "content": text}] if conversational else text
        rows.append({"prompt": prompt, "response_type": t})
    return datasets.Dataset.from_list(rows)


def _config(cls: type, out: Path, **overrides: Any) -> Any:
    settings: dict[str, Any] = {
        "output_dir": str(out),
        "use_cpu": True,
        "bf16": False,
        "max_steps": 2,
        "per_device_train_batch_size": 8,
        "num_generations": 2,
        "max_completion_length": 8,
        "logging_steps": 1,
        "report_to": [],
        "save_strategy": "no",
        "beta": 0.1,
        "seed": 0,
        "learning_rate": 1e-3,
    }
    settings.update(overrides)
    return cls(**settings)


def _type_of(prompt: Any) -> str | None:
    text = prompt[0]["content"] if isinstance(prompt, list) else prompt
    return DATA_TYPES[int(text.split()[1].rstrip(":"))]


def _check_steps(
    recorder: _Recorder,
    log_history: list[dict[str, Any]],
    artifact: Path,
    grader: str,
    *,
    lr: float = 0.1,
    **grader_options: Any,
) -> None:
    """The rewards TRL received equal specc.load's, shaped with the λ TRL logged, and
    that λ is one Safe RLHF step per training step from specc.load's costs."""
    reference = specc.load(artifact, grader=grader, **grader_options)
    names = [c.name for c in reference.constraints]
    limits = np.array([c.limit for c in reference.constraints])
    log_lambda = np.zeros(len(names))
    windows: list[list[float]] = [[] for _ in names]
    logs = [h for h in log_history if "rbr/unscored" in h]
    assert len(recorder.steps) == len(logs) == 2
    for step, logged in zip(recorder.steps, logs, strict=True):
        got = np.array(step["rewards"]["rbr"], dtype=np.float64)
        types = [_type_of(p) for p in step["prompts"]]
        known = [i for i, t in enumerate(types) if t not in (None, "mystery")]
        assert np.isnan(np.delete(got, known)).all()
        assert len(known) > 0
        batch = reference.score_with_costs(
            _rows(
                [step["prompts"][i] for i in known],
                [step["completions"][i] for i in known],
                [str(types[i]) for i in known],
            )
        )
        for j in range(len(names)):
            covered = batch.costs[batch.applies[:, j], j]
            if covered.size:
                windows[j].extend(covered.tolist())
                gap = np.mean(windows[j]) - limits[j]
                log_lambda[j] += lr * gap * math.exp(log_lambda[j])
        lams = np.exp(log_lambda)
        for j, name in enumerate(names):
            assert logged[f"rbr/lambda/{name}"] == pytest.approx(lams[j], rel=1e-6)
        shaped = (batch.rewards - batch.costs @ lams) / (1 + lams.sum())
        assert got[known] == pytest.approx(shaped, abs=1e-5)
        assert logged["rbr/reward"] == pytest.approx(batch.rewards.mean(), abs=1e-5)
        assert logged["rbr/unscored"] == pytest.approx(1 - len(known) / len(types), abs=1e-6)
        assert logged["rewards/rbr/mean"] == pytest.approx(shaped.mean(), abs=1e-5)


def test_grpo_with_a_helpfulness_rm_plus_rbr(
    artifact: Path, policy_model: Path, helpfulness_rm: Path, hf_grader: str, tmp_path: Path
) -> None:
    """The RBR paper's combination: TRL sums a helpfulness RM and the (shaped) RBR.
    Evaluation after each step scores completions too, but never moves λ."""
    rbr = rbr_reward(artifact, grader=hf_grader, device="cpu")
    recorder = _Recorder()
    trainer = trl.GRPOTrainer(
        model=str(policy_model),
        reward_funcs=[str(helpfulness_rm), rbr],
        args=_config(
            trl.GRPOConfig,
            tmp_path / "grpo",
            eval_strategy="steps",
            eval_steps=1,
            per_device_eval_batch_size=8,
        ),
        train_dataset=_dataset(conversational=True),
        eval_dataset=_dataset(conversational=True),
        callbacks=[rbr.callback, recorder.callback()],
    )
    recorder.trainer = trainer
    trainer.train()
    history = trainer.state.log_history
    assert sum("eval_rbr/unscored" in h for h in history) == 2  # evaluation did score
    _check_steps(recorder, history, artifact, hf_grader, device="cpu")
    rm_name = helpfulness_rm.name
    train_logs = [h for h in history if "rbr/unscored" in h]
    for step, logged in zip(recorder.steps, train_logs, strict=True):
        rm = np.array(step["rewards"][rm_name])
        rb = np.nan_to_num(np.array(step["rewards"]["rbr"]))
        assert np.isfinite(rm).all()
        assert logged["reward"] == pytest.approx((rm + rb).mean(), abs=1e-5)
    assert isinstance(step["completions"][0], list)  # conversational completions


def test_rloo_with_an_async_remote_grader_and_resume(
    artifact: Path, policy_model: Path, grade_server: Any, tmp_path: Path
) -> None:
    grader = f"openai:{grade_server.url}#tiny"
    rbr = rbr_reward(artifact, grader=grader, top_logprobs=400)
    assert isinstance(rbr, AsyncRBRReward)
    recorder = _Recorder()
    out = tmp_path / "rloo"
    trainer = trl.RLOOTrainer(
        model=str(policy_model),
        reward_funcs=rbr,
        args=_config(trl.RLOOConfig, out, save_strategy="steps", save_steps=2),
        train_dataset=_dataset(conversational=False),
        callbacks=[rbr.callback, recorder.callback()],
    )
    recorder.trainer = trainer
    trainer.train()
    _check_steps(recorder, trainer.state.log_history, artifact, grader, top_logprobs=400)
    assert isinstance(recorder.steps[0]["completions"][0], str)  # plain text

    # Resume from checkpoint-2: the multipliers continue where they were.
    saved = json.loads((out / "checkpoint-2" / STATE_FILE.format(name="rbr")).read_text())
    assert rbr.lagrange is not None and saved["lagrange"] == rbr.lagrange.state_dict()
    resumed = rbr_reward(artifact, grader=grader, top_logprobs=400)
    trainer = trl.RLOOTrainer(
        model=str(policy_model),
        reward_funcs=resumed,
        args=_config(trl.RLOOConfig, out, max_steps=3),
        train_dataset=_dataset(conversational=False),
        callbacks=[resumed.callback],
    )
    trainer.train(resume_from_checkpoint=True)
    assert resumed.lagrange is not None
    for name, ctl in resumed.lagrange.controllers.items():
        before = rbr.lagrange.controllers[name]
        assert ctl.updates in (before.updates, before.updates + 1)
        assert ctl.updates >= 1
    assert sum(c.updates for c in resumed.lagrange.controllers.values()) > sum(
        c.updates for c in rbr.lagrange.controllers.values()
    )


def test_importing_the_adapters_loads_no_trainer_library() -> None:
    import subprocess
    import sys

    from golden import ROOT

    probe = (
        "import specc.integrations.trl, specc.integrations.verl, sys\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout.split()
    assert not set(out) & {"trl", "verl", "transformers", "torch", "ray"}


def test_data_parallel_ranks_share_one_lambda(artifact: Path, tmp_path: Path) -> None:
    """Under torch.distributed every rank steps λ on all ranks' costs, so λ agrees."""
    import torch.multiprocessing as mp

    from .distributed import RANK_TEXTS, rank_main

    mp.spawn(
        rank_main,
        args=(2, str(tmp_path / "init"), str(artifact), str(tmp_path)),
        nprocs=2,
        join=True,
    )
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert results[0]["lams"] == results[1]["lams"]
    reference = specc.load(artifact, grader="rules")
    batches = [
        reference.score_with_costs(_rows(["p"] * len(t), t, ["terse"] * len(t))) for t in RANK_TEXTS
    ]
    lagrange = LagrangeSet.for_limits({c.name: c.limit for c in reference.constraints})
    lagrange.update(
        np.concatenate([b.costs for b in batches]), np.concatenate([b.applies for b in batches])
    )
    assert results[0]["lams"] == pytest.approx(lagrange.lams, rel=1e-12)
    assert lagrange.lams["no_digits"] > 1.0  # the digits pushed it up
    for result, batch in zip(results, batches, strict=True):
        assert result["rewards"] == pytest.approx(
            lagrange.shape(batch.rewards, batch.costs).tolist(), abs=1e-12
        )
