"""weights.safetensors + weights.json: round trip and refusing foreign weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from specc.artifact import (
    Artifact,
    GraderEntry,
    Manifest,
    ResponseTypeEntry,
    RewardEntry,
    TierEntry,
)
from specc.errors import DataError
from specc.integrity import seal_bytes
from specc.weights import (
    TypeWeights,
    Weights,
    load_weights,
    load_weights_for,
    save_weights,
    weights_from_results,
)

HASH = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4
FEATURES = ("prop:apology", "prop:judgmental", "class:ideal", "class:unacceptable")


def weights(spec_hash: str = HASH) -> Weights:
    return Weights(
        spec_hash,
        {
            "Hard Refuse": TypeWeights(
                "Hard Refuse",
                FEATURES,
                np.array([0.5, -1.25, 2.0, -3.0]),
                base_reward=True,
                settings={"optimizer": "lbfgs"},
                metrics={"valid": {"pair_accuracy": 0.9}},
            ),
            "Comply": TypeWeights("Comply", FEATURES[:2], np.array([1e-300, np.pi])),
        },
        "0.1.0",
    )


def artifact(path: Path, spec_hash: str = HASH, features: tuple[str, ...] = FEATURES) -> Artifact:
    reward = RewardEntry(
        margin=1.0, weight_decay=0.0, steps=10, lr=0.01, optimizer="adamw", base_reward=False
    )

    def rt(name: str, feats: tuple[str, ...]) -> ResponseTypeEntry:
        return ResponseTypeEntry(
            name=name,
            display=None,
            tiers=("ideal", "unacceptable"),
            tier_margins={"ideal": 1.0, "unacceptable": 1.0},
            rules={},
            propositions=(),
            features=feats,
            reward=reward,
        )

    manifest = Manifest(
        name="t",
        version="1",
        specc_version="0.1.0",
        spec_hash=spec_hash,
        grader=GraderEntry(yes=("yes",), no=("no",)),
        tiers=(TierEntry(name="ideal", margin=None), TierEntry(name="unacceptable", margin=None)),
        propositions=(),
        derived=(),
        constraints=(),
        response_types=(rt("Hard Refuse", features), rt("Comply", FEATURES[:2])),
    )
    return Artifact(path, manifest)


def test_round_trip_is_exact(tmp_path: Path) -> None:
    tensors, meta = save_weights(tmp_path, weights())
    assert tensors.name == "weights.safetensors" and meta.name == "weights.json"
    assert tensors.parent.name == "weights"
    raw = tensors.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])  # a safetensors header, no pickle
    assert header["__metadata__"]["spec_hash"] == HASH
    assert header["Hard Refuse"]["dtype"] == "F64"
    loaded = load_weights(tmp_path, spec_hash=HASH)
    original = weights()
    assert loaded.spec_hash == HASH and list(loaded.response_types) == ["Hard Refuse", "Comply"]
    for name, tw in original.response_types.items():
        got = loaded.get(name)
        assert got.weights.tobytes() == tw.weights.tobytes()
        assert got.feature_names == tw.feature_names
        assert (got.base_reward, got.settings, got.metrics) == (
            tw.base_reward,
            tw.settings,
            tw.metrics,
        )
    meta_json = json.loads(meta.read_text())
    assert meta_json["response_types"]["Comply"]["features"] == list(FEATURES[:2])
    assert load_weights_for(artifact(tmp_path)).get("Comply").weights[1] == np.pi


def test_spec_hash_mismatch(tmp_path: Path) -> None:
    save_weights(tmp_path, weights(OTHER))
    message = (
        "weights were fitted for spec fedcba98, this artifact is 01234567; refit with `specc fit`"
    )
    with pytest.raises(DataError) as err:
        load_weights(tmp_path, spec_hash=HASH)
    assert str(err.value) == message
    with pytest.raises(DataError, match="fitted for spec fedcba98"):
        load_weights_for(artifact(tmp_path))


def test_feature_mismatch(tmp_path: Path) -> None:
    save_weights(tmp_path, weights())
    swapped = (FEATURES[1], FEATURES[0], *FEATURES[2:])
    with pytest.raises(
        DataError,
        match=r"feature 0 is 'prop:apology' in the weights but "
        r"'prop:judgmental' in the artifact; refit",
    ):
        load_weights_for(artifact(tmp_path, features=swapped))
    with pytest.raises(DataError, match="4 features, the artifact has 3"):
        load_weights_for(artifact(tmp_path, features=FEATURES[:3]))
    with pytest.raises(DataError, match="which this artifact does not have"):
        load_weights(tmp_path, features={"Comply": FEATURES[:2]})


def _reseal(root: Path) -> None:
    """Rewrite the weights unit's seal over its files as they are (a forger's move)."""
    unit = root / "weights"
    files = {p.name: p.read_bytes() for p in unit.iterdir() if p.name != "seal.json"}
    (unit / "seal.json").write_bytes(seal_bytes(files, kind="weights", spec_hash=HASH))


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no fitted weights") as err:
        load_weights(tmp_path)
    assert err.value.hint == "fit them with `specc fit`"
    tensors, meta = save_weights(tmp_path, weights())
    assert tensors.parent == meta.parent == tmp_path / "weights"
    good = tensors.read_bytes()
    tensors.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{not!")
    with pytest.raises(DataError, match="modified after it was written") as err:
        load_weights(tmp_path)
    assert err.value.where == str(tensors) and "refit" in str(err.value)
    _reseal(tmp_path)
    with pytest.raises(DataError, match="unreadable safetensors header"):
        load_weights(tmp_path)
    tensors.write_bytes(good[:-8])  # a truncated tensor
    _reseal(tmp_path)
    with pytest.raises(DataError, match="unreadable"):
        load_weights(tmp_path)
    tensors.unlink()
    with pytest.raises(DataError, match="missing"):
        load_weights(tmp_path)
    tensors.write_bytes(good)
    meta.write_text("{}")
    _reseal(tmp_path)
    with pytest.raises(DataError, match="not a specc weights file"):
        load_weights(tmp_path)


def test_weights_of_the_old_layout_say_refit(tmp_path: Path) -> None:
    (tmp_path / "weights.json").write_text("{}")
    with pytest.raises(DataError, match="layout of an older specc") as err:
        load_weights(tmp_path)
    assert err.value.hint == "refit with `specc fit`"


def test_unknown_type_and_bad_shapes(tmp_path: Path) -> None:
    w = weights()
    with pytest.raises(DataError, match="no fitted weights for response type 'Comply!'") as err:
        w.get("Comply!")
    assert err.value.hint == "did you mean 'Comply'?"
    bad = Weights(HASH, {"X": TypeWeights("X", ("prop:a",), np.array([1.0, 2.0]))})
    with pytest.raises(DataError, match="2 weights for 1 feature names"):
        save_weights(tmp_path, bad)


def test_weights_from_fit_results(tmp_path: Path) -> None:
    from specc.fit import FitSettings, fit_response_type

    rng = np.random.default_rng(0)
    rank = rng.integers(0, 2, 40)
    x = 1 / (1 + np.exp(-np.stack([rank + rng.normal(size=40), rng.normal(size=40)], 1)))
    result = fit_response_type(
        x,
        np.repeat(np.arange(10), 4),
        rank,
        tier_names=["ideal", "unacceptable"],
        feature_names=list(FEATURES[:2]),
        settings=FitSettings(steps=10),
        response_type="Comply",
        seed=9,
    )
    w = weights_from_results(HASH, [result])
    save_weights(tmp_path, w)
    loaded = load_weights(tmp_path).get("Comply")
    assert loaded.weights.tobytes() == result.weights.tobytes()
    assert loaded.settings["seed"] == 9 and loaded.settings["steps"] == 10
    assert loaded.metrics["train"]["pairs"] == result.train.n_pairs
