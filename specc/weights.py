"""Fitted reward weights on disk: ``weights.safetensors`` plus ``weights.json``.

The tensors file holds one float64 vector per response type (keyed by its name) and
never pickles anything; the JSON file says what the vectors mean: the ``spec_hash``
they were fitted for, each type's feature names in order, whether the base reward is
added, the settings and a summary of the fit's metrics. Loading checks both against
the artifact, so a reward can never silently use weights of another spec.

>>> w = weights_from_results(art.spec_hash, results)    # doctest: +SKIP
>>> save_weights(art.path, w)                            # doctest: +SKIP
>>> load_weights_for(art).get("Hard Refuse").weights     # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.errors import DataError, did_you_mean

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from specc.artifact import Artifact
    from specc.fit.fitter import FitResult

FORMAT = "specc.weights/1"
TENSORS_FILE = "weights.safetensors"
META_FILE = "weights.json"
REFIT = "refit with `specc fit`"


@dataclass(frozen=True)
class TypeWeights:
    """The fitted reward of one response type: ``R(x) = weights . x (+ base_reward)``."""

    response_type: str
    feature_names: tuple[str, ...]
    weights: npt.NDArray[np.float64]
    base_reward: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        return {
            "features": list(self.feature_names),
            "base_reward": self.base_reward,
            "settings": self.settings,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class Weights:
    """All response types' weights for one spec (``spec_hash``)."""

    spec_hash: str
    response_types: dict[str, TypeWeights]
    specc_version: str = ""

    def get(self, response_type: str) -> TypeWeights:
        found = self.response_types.get(response_type)
        if found is None:
            hint = did_you_mean(response_type, self.response_types)
            raise DataError(
                f"no fitted weights for response type {response_type!r}",
                hint=hint
                or f"fitted types: {', '.join(self.response_types) or 'none'}; "
                f"{REFIT} with rows of this type",
            )
        return found


def weights_from_results(spec_hash: str, results: Sequence[FitResult]) -> Weights:
    """Collect :class:`~specc.fit.FitResult` s into :class:`Weights`."""
    from specc import __version__

    types = {
        r.response_type: TypeWeights(
            response_type=r.response_type,
            feature_names=r.feature_names,
            weights=r.weights,
            base_reward=r.base_reward,
            settings={**r.settings.to_json(), "seed": r.seed},
            metrics=r.summary(),
        )
        for r in results
    }
    return Weights(spec_hash, types, __version__)


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_weights(directory: str | Path, weights: Weights) -> tuple[Path, Path]:
    """Write ``weights.safetensors`` and ``weights.json`` into ``directory`` (usually
    the artifact directory). Returns both paths."""
    import numpy as np
    from safetensors.numpy import save_file

    from specc import __version__

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: np.ascontiguousarray(tw.weights, dtype=np.float64)
        for name, tw in weights.response_types.items()
    }
    for name, tw in weights.response_types.items():
        if tensors[name].shape != (len(tw.feature_names),):
            raise DataError(
                f"response type {name!r}: {tensors[name].shape[0]} weights for "
                f"{len(tw.feature_names)} feature names"
            )
    tensor_path, meta_path = root / TENSORS_FILE, root / META_FILE
    header = {"format": FORMAT, "spec_hash": weights.spec_hash}
    _write_atomic(tensor_path, lambda p: save_file(tensors, str(p), metadata=header))
    meta = {
        "format": FORMAT,
        "spec_hash": weights.spec_hash,
        "specc_version": weights.specc_version or __version__,
        "response_types": {name: tw.meta() for name, tw in weights.response_types.items()},
    }
    text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    _write_atomic(meta_path, lambda p: p.write_text(text, encoding="utf-8"))
    return tensor_path, meta_path


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{path.parent}: no fitted weights ({META_FILE} is missing)",
            hint="fit them with `specc fit`",
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable weights metadata ({exc}); {REFIT}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{path}: not a specc weights file (format {FORMAT}); {REFIT}")
    if not isinstance(meta.get("spec_hash"), str) or not isinstance(
        meta.get("response_types"), dict
    ):
        raise DataError(f"{path}: weights metadata lacks spec_hash or response_types; {REFIT}")
    return meta


def _mismatch(fitted: str, expected: str) -> DataError:
    return DataError(
        f"weights were fitted for spec {fitted[:8]}, this artifact is {expected[:8]}; "
        "refit with `specc fit`"
    )


def load_weights(
    directory: str | Path,
    *,
    spec_hash: str | None = None,
    features: Mapping[str, Sequence[str]] | None = None,
) -> Weights:
    """Read the weights in ``directory``.

    With ``spec_hash``, weights fitted for another spec are a :class:`DataError`; with
    ``features`` (response type -> feature names in order), a type whose fitted
    layout differs is one too. Types of ``features`` without weights are allowed
    (:meth:`Weights.get` raises for them).
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    root = Path(directory)
    meta_path, tensor_path = root / META_FILE, root / TENSORS_FILE
    meta = _read_meta(meta_path)
    fitted_hash: str = meta["spec_hash"]
    if spec_hash is not None and fitted_hash != spec_hash:
        raise _mismatch(fitted_hash, spec_hash)
    try:
        tensors = load_file(str(tensor_path))
    except FileNotFoundError:
        raise DataError(f"{tensor_path}: missing, but {META_FILE} exists; {REFIT}") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{tensor_path}: unreadable ({exc}); {REFIT}") from None
    types: dict[str, TypeWeights] = {}
    for name, entry in meta["response_types"].items():
        if name not in tensors:
            raise DataError(f"{tensor_path}: no weights for response type {name!r}; {REFIT}")
        vector = tensors[name]
        names = tuple(str(f) for f in entry.get("features", ()))
        if vector.ndim != 1 or vector.shape[0] != len(names):
            raise DataError(
                f"{tensor_path}: response type {name!r} has {vector.size} weights for "
                f"{len(names)} features; {REFIT}"
            )
        types[name] = TypeWeights(
            response_type=name,
            feature_names=names,
            weights=vector.astype("float64", copy=False),
            base_reward=bool(entry.get("base_reward", False)),
            settings=dict(entry.get("settings") or {}),
            metrics=dict(entry.get("metrics") or {}),
        )
    weights = Weights(fitted_hash, types, str(meta.get("specc_version", "")))
    if features is not None:
        check_features(weights, features)
    return weights


def check_features(weights: Weights, features: Mapping[str, Sequence[str]]) -> None:
    """Raise a :class:`DataError` if a fitted type's feature names differ from
    ``features`` (or the type is unknown there)."""
    for name, tw in weights.response_types.items():
        expected = features.get(name)
        if expected is None:
            raise DataError(
                f"weights hold response type {name!r}, which this artifact does not have; " + REFIT
            )
        expected = tuple(expected)
        if expected == tw.feature_names:
            continue
        if len(expected) != len(tw.feature_names):
            detail = f"{len(tw.feature_names)} features, the artifact has {len(expected)}"
        else:
            i = next(
                i for i, (a, b) in enumerate(zip(expected, tw.feature_names, strict=True)) if a != b
            )
            detail = (
                f"feature {i} is {tw.feature_names[i]!r} in the weights but {expected[i]!r} "
                "in the artifact"
            )
        raise DataError(
            f"weights of response type {name!r} do not fit this artifact: {detail}; " + REFIT
        )


def load_weights_for(artifact: Artifact) -> Weights:
    """The weights stored in an artifact directory, checked against its spec hash and
    its feature layouts."""
    layouts = {rt.name: rt.features for rt in artifact.manifest.response_types}
    return load_weights(artifact.path, spec_hash=artifact.spec_hash, features=layouts)
