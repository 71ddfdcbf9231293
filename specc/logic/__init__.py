"""Tier logic on BDDs: exclusivity/exhaustiveness checks and compiled rules.

``specc.logic.bdd`` and ``specc.logic.checks`` are pure Python (the checker imports
them); ``specc.logic.runtime`` evaluates compiled rules with numpy and is imported
only where probabilities are computed. See docs/semantics.md.
"""

from __future__ import annotations

from specc.logic.bdd import BDD, FALSE, TRUE, BDDTooLarge
from specc.logic.checks import check_response_types, rule_conditions, spec_bdd

__all__ = [
    "BDD",
    "FALSE",
    "TRUE",
    "BDDTooLarge",
    "check_response_types",
    "rule_conditions",
    "spec_bdd",
]
