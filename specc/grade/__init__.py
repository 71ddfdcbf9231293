"""Grading: data rows, backends (hf, openai, rules, labels), the cache, features.

>>> from specc.grade import read_rows, make_grader, extract_features   # doctest: +SKIP
>>> rows = read_rows("d.jsonl")                                       # doctest: +SKIP
>>> feats = extract_features(artifact, rows, make_grader("labels"))   # doctest: +SKIP

Nothing here imports torch or transformers until an hf grader is built.
"""

from __future__ import annotations

from specc.grade.base import Answers, AnyGrader, Grader, LabelsGrader, RulesGrader
from specc.grade.cache import GradeCache, cache_key, default_cache_path
from specc.grade.command import run_grade
from specc.grade.data import Row, read_rows
from specc.grade.features import (
    FeatureRow,
    GradeStats,
    PropositionGrader,
    check_rows,
    extract_features,
    read_features,
    write_features,
)
from specc.grade.graders import make_grader

__all__ = [
    "Answers",
    "AnyGrader",
    "FeatureRow",
    "GradeCache",
    "GradeStats",
    "Grader",
    "LabelsGrader",
    "PropositionGrader",
    "Row",
    "RulesGrader",
    "cache_key",
    "check_rows",
    "default_cache_path",
    "extract_features",
    "make_grader",
    "read_features",
    "read_rows",
    "run_grade",
    "write_features",
]
