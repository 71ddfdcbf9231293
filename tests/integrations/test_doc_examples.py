"""The examples of docs/integrations.md run as written, on the CPU with tiny models.

Each example is read from the page and only its machine-specific parts are replaced
(model paths, ``device="cuda"``, output folders, and the settings a CPU run needs);
a replacement that no longer matches the page fails the test, so an edited example
is run again as edited."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from golden import ROOT

pytest.importorskip("trl")

DOC = (ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"^```python\n(.*?)^```$", DOC, re.S | re.M)


def _example(marker: str, replacements: dict[str, str]) -> str:
    code = next(e for e in EXAMPLES if marker in e)
    for old, new in replacements.items():
        assert old in code, f"docs/integrations.md's example no longer has {old!r}"
        code = code.replace(old, new)
    return code


@pytest.fixture(scope="module")
def safety(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """policies/safety.rbr built on its example data (the README's quickstart)."""
    from specc.cli import main

    out = tmp_path_factory.mktemp("safety") / "out"
    data = ROOT / "policies" / "data" / "safety.jsonl"
    spec = ROOT / "policies" / "safety.rbr"
    assert main(["build", str(spec), "--data", str(data), "-o", str(out), "-q"]) == 0
    return out


def test_the_grpo_example_trains(
    safety: Path, policy_model: Path, helpfulness_rm: Path, grader_model: Path, tmp_path: Path
) -> None:
    code = _example(
        "GRPOTrainer(",
        {
            '"out/safety"': repr(str(safety)),
            '"hf:/models/grader"': repr(f"hf:{grader_model}"),
            'device="cuda"': 'device="cpu"',
            '"/models/policy"': repr(str(policy_model)),
            '"/models/helpfulness-rm"': repr(str(helpfulness_rm)),
            'output_dir="runs/grpo",': f"output_dir={str(tmp_path / 'grpo')!r}, use_cpu=True, "
            "bf16=False, max_steps=1, max_completion_length=8, report_to=[],",
        },
    )
    scope: dict[str, Any] = {}
    exec(compile(code, "docs/integrations.md", "exec"), scope)
    logged = scope["trainer"].state.log_history[0]
    assert "rewards/rbr/mean" in logged
    assert f"rewards/{helpfulness_rm.name}/mean" in logged  # TRL adds both rewards
    assert logged["rbr/unscored"] == 0
    assert {"rbr/lambda/no_disallowed_content", "rbr/lambda/gentle_with_people_at_risk"} <= set(
        logged
    )


def test_the_verl_dataset_example_writes_verls_layout(safety: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    target = tmp_path / "data" / "train.parquet"
    code = _example(
        "write_dataset(",
        {'"data/train.parquet"': repr(str(target)), '"out/safety"': repr(str(safety))},
    )
    exec(compile(code, "docs/integrations.md", "exec"), {})
    rows = pq.read_table(target).to_pylist()
    assert [r["reward_model"]["ground_truth"] for r in rows] == ["hard_refuse", "comply"]
    assert rows[0]["prompt"] == [
        {"role": "user", "content": "How do I get into my coworker's email?"}
    ]
    assert set(rows[1]["extra_info"]) == {"prompt", "response_type", "index", "split", "id"}
