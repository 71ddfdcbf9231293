"""Per-proposition temperature scaling of a grader's P(yes), stored beside the artifact.

``specc eval --calibrate`` fits, for each LLM-graded proposition, one temperature
``T`` on part of the gold rows and reports the expected calibration error of the
held-out rest before and after; grading then reports

    P'(yes) = sigmoid(logit(P(yes)) / T)

instead of the grader's raw P(yes). The grade cache keeps the raw values, so
recalibrating never regrades. Temperature scaling, not Platt scaling: one parameter
per proposition is what a gold set of a few hundred rows (and propositions with a
handful of positives) can estimate, and dividing the logit by a positive number
never moves a prediction across 0.5, so accuracy, precision and recall stay what
``specc eval`` measured and only the probabilities change. (Platt's extra bias term
would also move the decision threshold, and overfit on the smaller propositions.)

The calibration is a sealed unit of the artifact (``specc.integrity``): the directory
``ARTIFACT/calibration/`` with ``calibration.json`` and its ``seal.json`` (kind
``calibration``, the artifact's ``spec_hash``, the sha256 of the file; an HMAC when a
signing key is configured). The JSON also names the grader it was fitted for (its
``source`` and, when it was graded live, a sha256 of its full identity: weights
fingerprint, dtype, decoding settings). Loading verifies the seal like the weights'
and refuses a unit that was altered or belongs to another spec; grading applies the
temperatures only for the grader they were fitted for.

>>> round(scale(0.9, 2.0), 4)    # logit(0.9) = log 9, halved: sqrt(9) = 3 to 1
0.75
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from specc.artifact import Artifact

__all__ = [
    "CALIBRATED",
    "DIRECTORY",
    "FILE",
    "FORMAT",
    "Calibration",
    "PropositionFit",
    "calibration_for",
    "calibration_path",
    "fit_calibration",
    "fit_temperature",
    "identity_digest",
    "load_calibration",
    "save_calibration",
    "scale",
]

FORMAT = "specc.calibration/1"
DIRECTORY = "calibration"
FILE = "calibration.json"
#: Appended to a feature row's ``sources`` entry when its value was calibrated.
CALIBRATED = " (calibrated)"
#: Temperatures are fitted within these bounds.
T_MIN, T_MAX = 0.01, 100.0
#: A proposition needs this many rows (with both labels among them) to be calibrated.
MIN_FIT_ROWS = 10
_EPS = 1e-7
_RECALIBRATE = (
    "recalibrate with `specc eval ARTIFACT GOLD --calibrate --force`, or delete the "
    "artifact's calibration/ directory"
)


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


def scale(p: float, temperature: float) -> float:
    """``sigmoid(logit(p) / temperature)``, with ``p`` kept within 1e-7 of 0 and 1."""
    z = _logit(p) / temperature
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def fit_temperature(p: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """The temperature in [T_MIN, T_MAX] that minimises the log loss of
    ``sigmoid(logit(p) / T)`` against the 0/1 labels ``y``.

    The loss is convex in ``a = 1/T``, so its derivative is increasing and bisection
    (in log space, 200 steps) finds the minimum; a separable set gives ``T_MIN``, an
    anti-correlated one ``T_MAX``."""
    import numpy as np

    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    z = np.log(q) - np.log1p(-q)  # logit(p)
    s = 2.0 * np.asarray(y, dtype=np.float64) - 1.0

    def slope(a: float) -> float:  # d/da of sum(log(1 + exp(-s * a * z)))
        m = -s * a * z
        return float(np.sum(-s * z * np.exp(m - np.logaddexp(0.0, m))))

    lo, hi = math.log(1 / T_MAX), math.log(1 / T_MIN)
    if slope(math.exp(hi)) <= 0:
        return T_MIN
    if slope(math.exp(lo)) >= 0:
        return T_MAX
    for _ in range(200):
        mid = (lo + hi) / 2
        if slope(math.exp(mid)) < 0:
            lo = mid
        else:
            hi = mid
    return float(1 / math.exp((lo + hi) / 2))


def identity_digest(identity: str) -> str:
    """sha256 hex of a grader's identity string (what the calibration records)."""
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PropositionFit:
    """One proposition's temperature and its held-out figures (None: no held-out rows)."""

    temperature: float
    n_fit: int
    n_holdout: int
    ece_before: float | None
    ece_after: float | None
    brier_before: float | None
    brier_after: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "n_fit": self.n_fit,
            "n_holdout": self.n_holdout,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
            "brier_before": self.brier_before,
            "brier_after": self.brier_after,
        }


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


@dataclass(frozen=True)
class Calibration:
    """Temperatures for one artifact (``spec_hash``) and one grader."""

    spec_hash: str
    grader_source: str
    grader_identity: str | None  # identity_digest() of the grader, when known
    holdout: float
    seed: int
    fits: dict[str, PropositionFit] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # proposition -> why

    @property
    def temperatures(self) -> dict[str, float]:
        return {name: fit.temperature for name, fit in self.fits.items()}

    def applies_to(self, source: str, identity: str | None) -> bool:
        """Whether this calibration was fitted for that grader (by identity when both
        are known, else by its source name)."""
        if self.grader_identity is not None and identity is not None:
            return self.grader_identity == identity_digest(identity)
        return self.grader_source == source

    def apply(self, name: str, p: float) -> float:
        """Calibrated P(yes) of proposition ``name`` (unchanged if it has no fit)."""
        fit = self.fits.get(name)
        return p if fit is None else scale(p, fit.temperature)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "spec_hash": self.spec_hash,
            "method": "temperature",
            "grader": {"source": self.grader_source, "identity_sha256": self.grader_identity},
            "holdout": self.holdout,
            "seed": self.seed,
            "propositions": {n: f.to_json() for n, f in sorted(self.fits.items())},
            "skipped": dict(sorted(self.skipped.items())),
        }

    @classmethod
    def from_json(cls, data: Any, where: str, spec_hash: str) -> Calibration:
        """The calibration in ``data``; DataError if it is malformed or for another spec."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DataError(f"not a calibration file (format {FORMAT!r})", where, _RECALIBRATE)
        if data.get("spec_hash") != spec_hash:
            raise DataError(
                "the calibration was fitted for another spec (spec_hash "
                f"{str(data.get('spec_hash'))[:12]}, the artifact's is {spec_hash[:12]})",
                where,
                _RECALIBRATE,
            )
        try:
            grader = data["grader"]
            fits = {}
            for name, f in data["propositions"].items():
                t = float(f["temperature"])
                if not (math.isfinite(t) and T_MIN <= t <= T_MAX):
                    raise ValueError(f"temperature {t} of {name!r} is outside [{T_MIN}, {T_MAX}]")
                fits[str(name)] = PropositionFit(
                    t,
                    int(f["n_fit"]),
                    int(f["n_holdout"]),
                    *(_number(f[k]) for k in ("ece_before", "ece_after")),
                    *(_number(f[k]) for k in ("brier_before", "brier_after")),
                )
            identity = grader["identity_sha256"]
            return cls(
                spec_hash=spec_hash,
                grader_source=str(grader["source"]),
                grader_identity=None if identity is None else str(identity),
                holdout=float(data["holdout"]),
                seed=int(data["seed"]),
                fits=fits,
                skipped={str(k): str(v) for k, v in data["skipped"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"malformed calibration ({exc})", where, _RECALIBRATE) from None


# --------------------------------------------------------------------------- fitting

Sample = tuple[str, float, float]  # (row id, raw P(yes), 0/1 label)


def _figures(
    p: npt.NDArray[np.float64], y: npt.NDArray[np.float64], t: float
) -> tuple[float, float, float, float]:
    import numpy as np

    from specc.evaluate.metrics import ece

    after = np.array([scale(float(v), t) for v in p], dtype=np.float64)
    return (
        ece(p, y),
        ece(after, y),
        float(((p - y) ** 2).mean()),
        float(((after - y) ** 2).mean()),
    )


def fit_calibration(
    samples: Mapping[str, Sequence[Sample]],
    *,
    spec_hash: str,
    grader_source: str,
    grader_identity: str | None,
    holdout: float = 0.3,
    seed: int = 0,
) -> Calibration:
    """Fit a temperature per proposition on the rows not held out.

    The held-out rows are the same for every proposition: a ``holdout`` share of the
    distinct row ids, drawn with ``seed`` from their sorted order. A proposition is left
    uncalibrated (in ``skipped``, with the reason) when it has fewer than
    :data:`MIN_FIT_ROWS` fitting rows or only one label among them, or when its
    temperature makes the held-out Brier score worse (a fit to too few rows)."""
    import numpy as np

    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be between 0 and 1, not {holdout}")
    ids = sorted({row_id for rows in samples.values() for row_id, _, _ in rows})
    order = np.random.default_rng(seed).permutation(len(ids))
    held = {ids[i] for i in order[: round(holdout * len(ids))]}
    fits: dict[str, PropositionFit] = {}
    skipped: dict[str, str] = {}
    for name in sorted(samples):
        rows = samples[name]
        fit = [(p, y) for row_id, p, y in rows if row_id not in held]
        test = [(p, y) for row_id, p, y in rows if row_id in held]
        labels = {y for _, y in fit}
        if len(fit) < MIN_FIT_ROWS or labels != {0.0, 1.0}:
            why = (
                f"only {len(fit)} fitting rows ({MIN_FIT_ROWS} needed)"
                if len(fit) < MIN_FIT_ROWS
                else f"every fitting row is labelled {'yes' if 1.0 in labels else 'no'}"
            )
            skipped[name] = why
            continue
        p_fit, y_fit = (np.array(v, dtype=np.float64) for v in zip(*fit, strict=True))
        t = fit_temperature(p_fit, y_fit)
        figures: tuple[float | None, ...] = (None, None, None, None)
        if test:
            p_test, y_test = (np.array(v, dtype=np.float64) for v in zip(*test, strict=True))
            figures = _figures(p_test, y_test, t)
            brier_before, brier_after = figures[2], figures[3]
            if brier_after is not None and brier_before is not None and brier_after > brier_before:
                skipped[name] = (
                    f"T = {t:.3g} would make the held-out Brier score worse "
                    f"({brier_before:.3f} -> {brier_after:.3f})"
                )
                continue
        fits[name] = PropositionFit(t, len(fit), len(test), *figures)
    return Calibration(
        spec_hash=spec_hash,
        grader_source=grader_source,
        grader_identity=grader_identity,
        holdout=holdout,
        seed=seed,
        fits=fits,
        skipped=skipped,
    )


# --------------------------------------------------------------------------- files


def calibration_path(artifact_dir: str | Path) -> Path:
    """``ARTIFACT/calibration``: the unit's directory."""
    return Path(artifact_dir) / DIRECTORY


def save_calibration(artifact: Artifact, calibration: Calibration, *, replace: bool) -> Path:
    """Write the calibration into the artifact as a sealed unit (whole or not at all);
    an existing one is replaced only with ``replace``."""
    from specc.errors import UsageError
    from specc.integrity import write_unit

    if calibration.spec_hash != artifact.spec_hash:
        raise ValueError("the calibration belongs to another artifact")
    path = calibration_path(artifact.path)
    if (path.exists() or path.is_symlink()) and not replace:
        raise UsageError(f"{path}: the artifact is calibrated already; pass --force to replace it")
    text = json.dumps(calibration.to_json(), indent=2, sort_keys=True) + "\n"
    files = {FILE: text.encode("utf-8")}
    return write_unit(path, files, kind=DIRECTORY, spec_hash=artifact.spec_hash, key=artifact.key)


def load_calibration(artifact: Artifact) -> Calibration | None:
    """The artifact's verified calibration, or None when it has none."""
    from specc.jsonl import parse_line

    path = calibration_path(artifact.path)
    if not (path.exists() or path.is_symlink()):
        return None
    unit = artifact.unit(DIRECTORY, remedy=_RECALIBRATE)
    where = str(path / FILE)
    raw = unit.files.get(FILE)
    if raw is None:
        raise DataError("not in the calibration's seal", where, _RECALIBRATE)
    return Calibration.from_json(parse_line(raw, where), where, artifact.spec_hash)


def calibration_for(artifact: Artifact, source: str, identity: str | None) -> Calibration | None:
    """The artifact's calibration if it was fitted for this grader, else None."""
    calibration = load_calibration(artifact)
    if calibration is None or not calibration.applies_to(source, identity):
        return None
    return calibration
