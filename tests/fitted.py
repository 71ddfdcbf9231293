"""Fitted artifacts for tests: compile a policy, grade rows with their labels, fit.

Nothing is faked: the rows go through ``extract_features`` (extractors for rules
propositions, the rows' labels for the others) and the real hinge-loss fit, and the
weights are saved next to the artifact, as ``specc build`` does (without its report).

>>> art = build_fitted(tmp_path, SPEC, rows)        # doctest: +SKIP
>>> specc.load(art, grader="labels")                # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from specc.artifact import load_artifact
from specc.compiler import compile_spec
from specc.grade import extract_features
from specc.grade.base import LabelsGrader
from specc.grade.data import parse_row
from specc.pipeline import fit_artifact
from specc.weights import save_weights, weights_from_results


def build_fitted(folder: Path, spec_text: str, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``spec_text`` to ``folder/policy.rbr``, compile it to ``folder/artifact``,
    fit it on ``rows`` (each with a ``completion_label``) and return the artifact."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "policy.rbr"
    spec.write_text(spec_text, encoding="utf-8")
    out = folder / "artifact"
    compile_spec(spec, out)
    art = load_artifact(out)
    parsed = [parse_row(dict(r), f"row {i + 1}", i + 1) for i, r in enumerate(rows)]
    feats = extract_features(art, parsed, LabelsGrader())
    results, _ = fit_artifact(art, feats)
    save_weights(out, weights_from_results(art.spec_hash, results))
    return out
