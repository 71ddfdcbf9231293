"""A small compiled artifact and features files for the fit's end-to-end tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from specc.compiler import compile_spec

TIERS = ("ideal", "less_good", "unacceptable")
FEATURES = ("prop:a", "prop:b", "prop:c", "class:ideal", "class:less_good", "class:unacceptable")

SPEC = """\
policy "fit-test" version "2.1.0"

proposition a { match regex "\\\\ba\\\\b" }
proposition b { match regex "\\\\bb\\\\b" }
proposition c { match regex "\\\\bc\\\\b" }

response_type refuse "Refuse" {
  ideal when a and not b
  less_good when not a and not b
  unacceptable otherwise
  reward { base_reward = true extra = [c] }
}
"""


def make_artifact(root: Path) -> Path:
    """Compile the test policy (3 propositions, 3 tiers, base reward) into root/art."""
    spec = root / "fit-test.rbr"
    spec.write_text(SPEC, encoding="utf-8")
    compile_spec(spec, root / "art")
    return root / "art"


def feature_rows(n_prompts: int = 40, per: int = 6, seed: int = 0) -> list[dict[str, Any]]:
    """Feature rows whose probabilities follow their tiers, with a N(0, 1) base reward."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_prompts):
        for c in range(per):
            tier = int(rng.integers(0, 3))
            a = rng.uniform(0.6, 1.0) if tier == 0 else rng.uniform(0.0, 0.4)
            b = rng.uniform(0.6, 1.0) if tier == 2 else rng.uniform(0.0, 0.4)
            classes = np.full(3, 0.1)
            classes[tier] = 0.8
            values = [a, b, rng.uniform(), *classes.tolist()]
            rows.append(
                {
                    "id": f"row-{p}-{c}",
                    "prompt_id": f"prompt-{p}",
                    "response_type": "refuse",
                    "completion_label": TIERS[tier],
                    "base_reward": float(rng.normal()),
                    "propositions": {"a": a, "b": b, "c": values[2]},
                    "derived": {},
                    "classes": dict(zip(TIERS, classes.tolist(), strict=True)),
                    "features": [round(float(v), 6) for v in values],
                    "sources": {"a": "rules", "b": "rules", "c": "rules"},
                    "costs": {},
                }
            )
    return rows


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def run_specc(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m specc ARGS`` in a fresh interpreter (no PATH needed)."""
    return subprocess.run(
        [sys.executable, "-m", "specc", *args], capture_output=True, text=True, check=False
    )
