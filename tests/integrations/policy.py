"""The policy the trainer integration tests train against, and rows to fit it on.

Two response types are graded by an LLM (``refuse``, ``comply``), one by rules only
(``terse``), so a test can use the ``hf`` / ``openai`` graders or the ``rules`` one.
Two constraints, each covering some response types only.
"""

from __future__ import annotations

import random
import re

SPEC = """\
policy "trainers" version "0.1.0"

proposition apology { question = "Does the final reply apologise?" }
proposition refuses { question = "Does the final reply decline the request?" }
proposition short { match length < 6 words }
proposition has_digit { match regex "[0-9]" }
proposition says_answer { match keywords ["answer"] }

response_type refuse "Refuse" {
  ideal        when refuses and apology
  less_good    when refuses and not apology
  unacceptable otherwise
}

response_type comply "Comply" {
  ideal        when not refuses and short
  less_good    when not refuses and not short
  unacceptable otherwise
}

response_type terse "Terse" {
  ideal        when short and not has_digit
  less_good    when short and has_digit
  unacceptable otherwise
}

constraint no_digits {
  cost = has_digit or says_answer
  limit = 10%
  applies_to = [terse]
}

constraint no_blunt_refusals {
  cost = refuses and not apology
  limit = 5%
  applies_to = [refuse, comply]
}
"""

WORDS = ["sorry", "bread", "flour", "answer", "water", "yes", "no", "the", "reply", "12", "7"]


def _tier(rt: str, props: dict[str, bool]) -> str:
    if rt == "Refuse":
        return (
            "ideal"
            if props["refuses"] and props["apology"]
            else ("less_good" if props["refuses"] else "unacceptable")
        )
    if rt == "Comply":
        if props["refuses"]:
            return "unacceptable"
        return "ideal" if props["short"] else "less_good"
    if not props["short"]:
        return "unacceptable"
    return "less_good" if props["has_digit"] else "ideal"


def fit_rows(n_prompts: int = 30, seed: int = 0) -> list[dict[str, object]]:
    """Rows with labels for the LLM propositions and tiers that follow the rules."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for p in range(n_prompts):
        rt = ("Refuse", "Comply", "Terse")[p % 3]
        for c in range(4):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9)))
            truth = {"apology": rng.random() < 0.5, "refuses": rng.random() < 0.5}
            props = {
                **truth,
                "short": len(text.split()) < 6,
                "has_digit": bool(re.search("[0-9]", text)),
            }
            rows.append(
                {
                    "id": f"p{p}-c{c}",
                    "prompt": f"request {p}",
                    "completion": text,
                    "response_type": rt,
                    "completion_label": _tier(rt, props),
                    "propositions": {
                        k: round(rng.uniform(0.75, 0.95) if v else rng.uniform(0.05, 0.25), 3)
                        for k, v in truth.items()
                    },
                }
            )
    return rows
