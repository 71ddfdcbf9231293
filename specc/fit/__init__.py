"""Reward fitting: pairs of completions of the same prompt, a hinge loss, metrics and
the report. Numpy only (no torch); Pillow is imported only to draw the report.

>>> from specc.fit import FitSettings, fit_response_type   # doctest: +SKIP
>>> result = fit_response_type(x, group, rank, tier_names=tiers,
...                            feature_names=names, settings=FitSettings())  # doctest: +SKIP
"""

from specc.fit.data import FitArrays, arrays_from_rows, encode_tiers
from specc.fit.fitter import FitResult, fit_response_type
from specc.fit.metrics import (
    PairMetrics,
    SignWarning,
    TierStats,
    centre_on_ideal,
    pair_metrics,
    sign_warnings,
    tier_stats,
)
from specc.fit.objective import pairwise_hinge_loss
from specc.fit.pairs import Pairs, make_pairs
from specc.fit.report import report_dict, summary_table, write_report
from specc.fit.settings import FitSettings

__all__ = [
    "FitArrays",
    "FitResult",
    "FitSettings",
    "PairMetrics",
    "Pairs",
    "SignWarning",
    "TierStats",
    "arrays_from_rows",
    "centre_on_ideal",
    "encode_tiers",
    "fit_response_type",
    "make_pairs",
    "pair_metrics",
    "pairwise_hinge_loss",
    "report_dict",
    "sign_warnings",
    "summary_table",
    "tier_stats",
    "write_report",
]
