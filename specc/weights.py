"""Fitted reward weights on disk: the unit ``weights/`` in the artifact directory.

``weights/weights.safetensors`` holds one float64 vector per response type (keyed by
its name, the spec hash in its header) and never pickles anything;
``weights/weights.json`` says what the vectors mean: the ``spec_hash`` they were
fitted for, each type's feature names in order, whether the base reward is added, the
settings and a summary of the fit's metrics. ``weights/seal.json`` seals both
(:mod:`specc.integrity`), and the three are written as one directory renamed into
place, so a failed or interrupted fit never leaves a mismatched pair. Loading checks
the seal, the spec hashes and the layouts against the artifact, so a reward can never
silently use weights of another spec, or edited ones. Identical fits give identical
bytes.

>>> w = weights_from_results(art.spec_hash, results)    # doctest: +SKIP
>>> save_weights(art.path, w)                            # doctest: +SKIP
>>> load_weights_for(art).get("Hard Refuse").weights     # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.errors import DataError, did_you_mean
from specc.integrity import SEAL_FILE, read_unit, write_unit
from specc.jsonl import parse_line

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from specc.artifact import Artifact
    from specc.files import Staging
    from specc.fit.fitter import FitResult

FORMAT = "specc.weights/1"
#: The unit ``specc fit`` writes into the artifact (a sealed directory).
WEIGHTS_DIR = "weights"
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


def _safetensors_bytes(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """A safetensors file of float64 vectors, the same bytes for the same input.

    The format is an 8-byte little-endian header length, a JSON header and the raw
    data. safetensors' own writer emits ``__metadata__`` from a hash map, in an order
    that varies from run to run; here every key is sorted. (Reading uses the
    safetensors library, which validates what this writes.)"""
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        blob = tensors[name].astype("<f8", copy=False).tobytes()
        header[name] = {
            "dtype": "F64",
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as safetensors does
    return len(text).to_bytes(8, "little") + text + b"".join(blobs)


def _check_finite(name: str, tw: TypeWeights, vector: npt.NDArray[np.float64]) -> None:
    import numpy as np

    bad = np.flatnonzero(~np.isfinite(vector))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"the fit of response type {name!r} gave a non-finite weight "
            f"({vector[i]} for {tw.feature_names[i]!r}); nothing was written",
            hint="look for huge feature values or base rewards in the features file, then refit",
        )


def save_weights(
    directory: str | Path,
    weights: Weights,
    *,
    key: bytes | None = None,
    stage: Staging | None = None,
) -> tuple[Path, Path]:
    """Write the weights unit ``directory/weights/`` (``directory`` is usually the
    artifact): ``weights.safetensors``, ``weights.json`` and their seal, as one
    directory renamed into place, so the old unit stays whole until the new one is
    complete. With ``stage`` the rename waits for its commit. Non-finite weights are
    refused. Returns the paths of both files."""
    import numpy as np

    from specc import __version__

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
        _check_finite(name, tw, tensors[name])
    header = {"format": FORMAT, "spec_hash": weights.spec_hash}
    meta = {
        "format": FORMAT,
        "spec_hash": weights.spec_hash,
        "specc_version": weights.specc_version or __version__,
        "response_types": {name: tw.meta() for name, tw in weights.response_types.items()},
    }
    try:
        meta_text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    except ValueError:
        raise DataError(
            "the fit's settings or metrics hold a non-finite number; nothing was written"
        ) from None
    unit = Path(directory) / WEIGHTS_DIR
    write_unit(
        unit,
        {TENSORS_FILE: _safetensors_bytes(tensors, header), META_FILE: meta_text.encode()},
        kind=WEIGHTS_DIR,
        spec_hash=weights.spec_hash,
        key=key,
        stage=stage,
    )
    return unit / TENSORS_FILE, unit / META_FILE


def _read_meta(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        meta = parse_line(raw, "")
    except DataError as exc:
        raise DataError(
            f"unreadable weights metadata ({str(exc).splitlines()[0]})", str(path), REFIT
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"not a specc weights file (format {FORMAT})", str(path), REFIT)
    if not isinstance(meta.get("spec_hash"), str) or not isinstance(
        meta.get("response_types"), dict
    ):
        raise DataError("weights metadata lacks spec_hash or response_types", str(path), REFIT)
    return meta


def _read_header(path: Path, raw: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (its JSON header, bounded)."""
    size = int.from_bytes(raw[:8], "little") if len(raw) >= 8 else -1
    if not 0 < size <= len(raw) - 8:
        raise DataError("not a safetensors file (bad header length)", str(path), REFIT)
    try:
        header = parse_line(raw[8 : 8 + size], "")
    except DataError as exc:
        raise DataError(
            f"unreadable safetensors header ({str(exc).splitlines()[0]})", str(path), REFIT
        ) from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(
            f"the safetensors header lacks the specc metadata (format {FORMAT})", str(path), REFIT
        )
    return {str(k): str(v) for k, v in meta.items()}


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
    key: bytes | None = None,
) -> Weights:
    """Read and verify the weights unit ``directory/weights/``.

    The unit's seal must hold (see :func:`specc.integrity.read_unit`; ``key`` as
    there); the spec hash of the seal, ``weights.json`` and the safetensors header
    must agree, and with ``spec_hash`` equal it too; every vector must be finite
    float64 of its type's feature count. With ``features`` (response type -> feature
    names in order), a type whose fitted layout differs is refused too. Types of
    ``features`` without weights are allowed (:meth:`Weights.get` raises for them).
    Every failure is a :class:`DataError` naming the file and saying to refit."""
    import numpy as np
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_tensors

    root = Path(directory) / WEIGHTS_DIR
    if not root.exists() and not root.is_symlink():
        if (Path(directory) / META_FILE).exists():
            raise DataError(
                f"weights in the layout of an older specc ({META_FILE} beside the manifest)",
                str(Path(directory)),
                REFIT,
            )
        raise DataError(
            f"{Path(directory)}: no fitted weights ({WEIGHTS_DIR}/ is missing)",
            hint="fit them with `specc fit`",
        )
    unit = read_unit(root, kind=WEIGHTS_DIR, spec_hash=None, remedy=REFIT, key=key)
    meta_path, tensor_path = root / META_FILE, root / TENSORS_FILE
    for rel in (META_FILE, TENSORS_FILE):
        if rel not in unit.files:
            raise DataError(f"not listed in {SEAL_FILE}", str(root / rel), REFIT)
    meta = _read_meta(meta_path, unit.files[META_FILE])
    raw = unit.files[TENSORS_FILE]
    header = _read_header(tensor_path, raw)
    fitted_hash: str = meta["spec_hash"]
    for where, found in (
        (tensor_path, header.get("spec_hash")),
        (root / SEAL_FILE, unit.seal.spec_hash),
    ):
        if found != fitted_hash:
            raise DataError(
                f"spec hash {str(found)[:8]} disagrees with {META_FILE}'s {fitted_hash[:8]}",
                str(where),
                REFIT,
            )
    if spec_hash is not None and fitted_hash != spec_hash:
        raise _mismatch(fitted_hash, spec_hash)
    try:
        tensors = load_tensors(raw)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise DataError(f"unreadable ({exc})", str(tensor_path), REFIT) from None
    extra = sorted(set(tensors) - set(meta["response_types"]))
    if extra:
        raise DataError(
            f"holds weights of unknown response type {extra[0]!r}", str(tensor_path), REFIT
        )
    types: dict[str, TypeWeights] = {}
    for name, entry in meta["response_types"].items():
        if name not in tensors:
            raise DataError(f"no weights for response type {name!r}", str(tensor_path), REFIT)
        if not isinstance(entry, dict) or not isinstance(entry.get("features"), list):
            raise DataError(f"response type {name!r} lacks its features", str(meta_path), REFIT)
        vector = tensors[name]
        names = tuple(str(f) for f in entry["features"])
        if vector.dtype != np.float64:
            raise DataError(
                f"response type {name!r} has {vector.dtype} weights, not float64",
                str(tensor_path),
                REFIT,
            )
        if vector.ndim != 1 or vector.shape[0] != len(names):
            raise DataError(
                f"response type {name!r} has weights of shape {list(vector.shape)} for "
                f"{len(names)} features",
                str(tensor_path),
                REFIT,
            )
        if not np.isfinite(vector).all():
            raise DataError(
                f"response type {name!r} has non-finite weights", str(tensor_path), REFIT
            )
        types[name] = TypeWeights(
            response_type=name,
            feature_names=names,
            weights=vector,
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
    return load_weights(
        artifact.path, spec_hash=artifact.spec_hash, features=layouts, key=artifact.key
    )
