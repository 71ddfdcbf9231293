"""One rank of a data-parallel run for the TRL adapter test (spawned by
``torch.multiprocessing``, so it lives outside the test module)."""

from __future__ import annotations

import json
from pathlib import Path

#: What each rank's completions are: the ranks see different costs.
RANK_TEXTS = [
    ["answer 12", "ok fine", "7 7 7"],
    ["ok", "fine thanks", "a b", "no 3"],
]


def rank_main(rank: int, world: int, init_file: str, artifact: str, out: str) -> None:
    import torch.distributed as dist
    from transformers import TrainerState

    from specc.integrations.trl import rbr_reward

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        rbr = rbr_reward(artifact, grader="rules")
        rbr._train_begin(out, 0)  # what rbr.callback does at on_train_begin / on_step_begin
        rbr._step_begin()
        texts = RANK_TEXTS[rank]
        rewards = rbr(
            prompts=["p"] * len(texts),
            completions=texts,
            response_type=["terse"] * len(texts),
            trainer_state=TrainerState(),
        )
        assert rbr.lagrange is not None
        result = {"lams": rbr.lagrange.lams, "rewards": rewards}
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()
