"""Calibration: temperature fitting, the held-out split, the verified file, and grading
that applies it (raw values stay in the grade cache)."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from golden import FIXTURES
from tiny_models import build_tiny_model, one_torch_thread  # noqa: F401 (autouse)

from specc.artifact import load_artifact
from specc.calibrate import (
    CALIBRATED,
    T_MAX,
    T_MIN,
    Calibration,
    PropositionFit,
    calibration_path,
    fit_calibration,
    fit_temperature,
    identity_digest,
    load_calibration,
    save_calibration,
    scale,
)
from specc.cli import main
from specc.compiler import compile_spec
from specc.errors import DataError, UsageError
from specc.evaluate import EvalOptions, run_eval
from specc.grade.data import read_rows
from specc.grade.features import extract_features, read_features
from specc.grade.graders import make_grader

POLICY = FIXTURES / "import" / "support.rbr"


# --------------------------------------------------------------------------- the math


def test_scale() -> None:
    assert scale(0.9, 2.0) == pytest.approx(0.75)  # logit 9 -> 3
    assert scale(0.2, 1.0) == pytest.approx(0.2)
    assert scale(0.9, 0.5) == pytest.approx(81 / 82)  # logit 9 -> 81
    assert scale(1.0, 1.0) == pytest.approx(1 - 1e-7)  # kept off 0 and 1
    assert scale(0.0, 100.0) > 0.4  # a large temperature flattens toward 1/2


def _overconfident(n: int, sharpen: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn with probability q, reported as sigmoid(sharpen * logit(q))."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.05, 0.95, n)
    y = (rng.uniform(size=n) < q).astype(np.float64)
    p = 1 / (1 + np.exp(-sharpen * np.log(q / (1 - q))))
    return p, y


def test_fit_temperature_recovers_the_sharpening() -> None:
    p, y = _overconfident(20_000, 3.0, seed=0)
    assert fit_temperature(p, y) == pytest.approx(3.0, rel=0.1)
    p, y = _overconfident(20_000, 0.5, seed=1)  # underconfident
    assert fit_temperature(p, y) == pytest.approx(0.5, rel=0.1)


def test_fit_temperature_bounds() -> None:
    assert fit_temperature([0.9, 0.8, 0.1], [1, 1, 0]) == T_MIN  # separable: sharpen fully
    assert fit_temperature([0.9, 0.8, 0.1], [0, 0, 1]) == T_MAX  # backwards: flatten


def _samples(n: int, names: list[str], seed: int) -> dict[str, list[tuple[str, float, float]]]:
    out = {}
    for k, name in enumerate(names):
        p, y = _overconfident(n, 3.0, seed + k)
        out[name] = [(f"r{i}", float(p[i]), float(y[i])) for i in range(n)]
    return out


def test_a_temperature_that_hurts_the_held_out_rows_is_not_kept() -> None:
    """Held out: a share of the sorted distinct ids, drawn with the seed. Labels that
    follow P(yes) on the fitting rows and oppose it on the held-out ones make a
    sharpening temperature that the held-out Brier score rejects."""
    ids = [f"r{i:03d}" for i in range(100)]
    order = np.random.default_rng(0).permutation(len(ids))
    held = {ids[i] for i in order[:30]}
    p = np.linspace(0.3, 0.7, 100)
    rows = [(i, float(q), float((q > 0.5) != (i in held))) for i, q in zip(ids, p, strict=True)]
    cal = fit_calibration({"flip": rows}, spec_hash="h", grader_source="g", grader_identity=None)
    assert cal.fits == {}
    assert cal.skipped["flip"].startswith("T = 0.01 would make the held-out Brier score worse (")
    honest = [(i, q, float(q > 0.5)) for i, q, _ in rows]
    cal = fit_calibration({"ok": honest}, spec_hash="h", grader_source="g", grader_identity=None)
    assert cal.fits["ok"].temperature == T_MIN and cal.fits["ok"].n_holdout == 30


def test_fit_calibration_holds_out_the_same_rows_and_improves_ece() -> None:
    samples = _samples(2000, ["a", "b"], seed=3)
    samples["few"] = samples["a"][:12]  # 12 rows: about 8 to fit, fewer than 10
    samples["same"] = [(i, p, 0.0) for i, p, _ in samples["a"]]
    cal = fit_calibration(samples, spec_hash="h", grader_source="hf:g", grader_identity=None)
    assert set(cal.fits) == {"a", "b"}
    assert cal.skipped["few"].endswith(" fitting rows (10 needed)")
    assert cal.skipped["same"] == "every fitting row is labelled no"
    for fit in cal.fits.values():
        assert (fit.n_fit, fit.n_holdout) == (1400, 600)  # 30% of 2000 ids
        assert 2.4 < fit.temperature < 3.6  # about 3
        assert fit.ece_after is not None and fit.ece_before is not None
        assert fit.ece_after < fit.ece_before / 2
        assert fit.brier_after is not None and fit.brier_before is not None
        assert fit.brier_after < fit.brier_before
    again = fit_calibration(samples, spec_hash="h", grader_source="hf:g", grader_identity=None)
    assert again.fits == cal.fits  # seeded: the same split, the same fit
    other = fit_calibration(
        samples, spec_hash="h", grader_source="hf:g", grader_identity=None, seed=1
    )
    assert other.fits["a"].temperature != cal.fits["a"].temperature


# --------------------------------------------------------------------------- the file


@pytest.fixture()
def artifact(tmp_path: Path) -> Any:
    compile_spec(POLICY, tmp_path / "art")
    return load_artifact(tmp_path / "art")


def _calibration(spec_hash: str) -> Calibration:
    fit = PropositionFit(2.0, 28, 12, 0.2, 0.1, 0.3, 0.25)
    return Calibration(spec_hash, "hf:g", identity_digest("id"), 0.3, 0, {"rude": fit}, {})


def test_file_round_trip_and_refusals(artifact: Any) -> None:
    from specc.integrity import write_unit

    assert load_calibration(artifact) is None
    cal = _calibration(artifact.spec_hash)
    path = save_calibration(artifact, cal, replace=False)
    assert path == calibration_path(artifact.path) == artifact.path / "calibration"
    assert sorted(p.name for p in path.iterdir()) == ["calibration.json", "seal.json"]
    assert load_calibration(artifact) == cal
    with pytest.raises(UsageError, match="calibrated already"):
        save_calibration(artifact, cal, replace=False)

    data = json.loads((path / "calibration.json").read_text(encoding="utf-8"))
    data["propositions"]["rude"]["temperature"] = 0.5  # an edit the seal does not cover
    (path / "calibration.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match="modified after it was written") as info:
        load_calibration(artifact)
    assert "recalibrate" in (info.value.hint or "")

    def unit(spec_hash: str, content: bytes) -> None:
        files = {"calibration.json": content}
        write_unit(path, files, kind="calibration", spec_hash=spec_hash)

    other = json.dumps(_calibration("0" * 64).to_json()).encode()
    unit("0" * 64, other)  # a whole calibration unit of another spec
    with pytest.raises(DataError, match="belongs to spec 00000000"):
        load_calibration(artifact)
    unit(artifact.spec_hash, other)  # sealed for this spec, but says another inside
    with pytest.raises(DataError, match="fitted for another spec"):
        load_calibration(artifact)
    unit(artifact.spec_hash, b"{not json")
    with pytest.raises(DataError, match="invalid JSON"):
        load_calibration(artifact)
    bad = _calibration(artifact.spec_hash).to_json()
    bad["propositions"]["rude"]["temperature"] = 1e6
    unit(artifact.spec_hash, json.dumps(bad).encode())
    with pytest.raises(DataError, match="outside"):
        load_calibration(artifact)


def test_recompiling_keeps_the_calibration_of_the_same_spec(tmp_path: Path) -> None:
    spec = tmp_path / "p.rbr"
    spec.write_text(POLICY.read_text(encoding="utf-8"), encoding="utf-8")
    compile_spec(spec, tmp_path / "art")
    artifact = load_artifact(tmp_path / "art")
    save_calibration(artifact, _calibration(artifact.spec_hash), replace=False)
    compile_spec(spec, tmp_path / "art")
    assert load_calibration(load_artifact(tmp_path / "art")) == _calibration(artifact.spec_hash)
    spec.write_text(spec.read_text(encoding="utf-8").replace("at least in part", "fully"))
    compile_spec(spec, tmp_path / "art")  # a changed spec: the calibration no longer fits
    with pytest.raises(DataError, match="belongs to spec"):
        load_calibration(load_artifact(tmp_path / "art"))


def test_applies_only_to_its_grader() -> None:
    cal = _calibration("h")
    assert cal.applies_to("hf:whatever", "id")
    assert not cal.applies_to("hf:g", "another id")
    by_name = Calibration("h", "hf:g", None, 0.3, 0, {}, {})
    assert by_name.applies_to("hf:g", "any id") and not by_name.applies_to("hf:h", None)
    assert cal.apply("rude", 0.9) == pytest.approx(0.75)
    assert cal.apply("answers", 0.9) == 0.9  # no fit: unchanged


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    return (
        build_tiny_model(root / "gpt2", arch="gpt2"),
        build_tiny_model(root / "other", arch="gpt2", seed=1),
    )


_USERS = ["Where is my invoice?", "Delete my friend's account.", "How much is premium?"]
_REPLIES = [
    "It is under Billing.",
    "I can't do that for another person.",
    "Premium is 9 euros a month.",
    "Read the page, it's obvious.",
    "Thanks for your message!",
]


def _gold(path: Path, n: int = 40) -> Path:
    rng = random.Random(0)
    rows = []
    for i in range(n):
        decline = i % 2 == 0
        labels = {"rude": rng.random() < 0.4, "mentions_price": rng.random() < 0.3}
        labels["declines" if decline else "answers"] = rng.random() < 0.5
        rows.append(
            {
                "id": f"g{i}",
                "response_type": "Must Decline" if decline else "Answer",
                "prompt": [{"role": "user", "content": rng.choice(_USERS) + f" ({i})"}],
                "completion": rng.choice(_REPLIES) + f" [{i}]",
                "propositions": labels,
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _cache_rows(path: Path) -> list[tuple[str, float]]:
    with sqlite3.connect(path) as db:
        return sorted(db.execute("SELECT key, p FROM grades"))


def test_calibrate_then_grade_applies_it(
    models: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, other = models
    art_dir = tmp_path / "art"
    compile_spec(POLICY, art_dir)
    gold = _gold(tmp_path / "gold.jsonl")
    cache = tmp_path / "cache.sqlite"
    common = [str(art_dir), str(gold), "--grader", f"hf:{model}", "--cache", str(cache), "-q"]
    assert main(["eval", *common, "--calibrate", "--json", "--no-few-shot"]) == 0
    out = json.loads(capsys.readouterr().out)
    cal = out["calibration"]
    assert cal["method"] == "temperature" and cal["grader"]["source"] == "hf:gpt2"
    assert set(cal["propositions"]) | set(cal["skipped"]) == {
        "declines",
        "rude",
        "answers",
        "mentions_price",
    }
    assert cal["propositions"], "at least one proposition is calibrated"
    for fit in cal["propositions"].values():
        assert fit["n_fit"] + fit["n_holdout"] >= 10 and fit["n_holdout"] > 0
        assert fit["ece_before"] is not None and fit["ece_after"] is not None
    artifact = load_artifact(art_dir)
    calibration = load_calibration(artifact)
    assert calibration is not None and calibration.to_json() == cal
    raw_cache = _cache_rows(cache)

    # `specc grade` now reports calibrated values; the cache keeps the raw ones
    feats_path = tmp_path / "features.jsonl"
    grade = ["grade", str(art_dir), str(gold), "--grader", f"hf:{model}", "--cache", str(cache)]
    assert main([*grade, "-o", str(feats_path), "-q"]) == 0
    rows = read_rows(gold)
    raw = extract_features(artifact, rows, make_grader(f"hf:{model}"), cache=None, calibrate=False)
    graded = read_features(feats_path)
    calibrated = 0
    for r, g in zip(raw, graded, strict=True):
        for name, p in r.propositions.items():
            if name in calibration.fits:
                assert g.propositions[name] == pytest.approx(calibration.apply(name, p))
                assert g.sources[name] == "hf:gpt2" + CALIBRATED
                calibrated += 1
            else:
                assert g.propositions[name] == p and g.sources[name] == "hf:gpt2"
    assert calibrated > 0
    assert _cache_rows(cache) == raw_cache  # nothing new, nothing rewritten

    # another model is not this calibration's grader: its values stay raw
    other_feats = extract_features(artifact, rows, make_grader(f"hf:{other}"))
    assert all(CALIBRATED not in s for f in other_feats for s in f.sources.values())

    # calibrated predictions cannot be calibrated again
    with pytest.raises(DataError, match="calibrated when they were graded"):
        run_eval(
            art_dir,
            gold,
            predictions=feats_path,
            options=EvalOptions(calibrate=True, force=True),
        )


def test_recalibrating_needs_no_regrading(
    models: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from specc.grade import hf

    model, _ = models
    art_dir = tmp_path / "art"
    compile_spec(POLICY, art_dir)
    gold = _gold(tmp_path / "gold.jsonl")
    options = EvalOptions(progress=False, cache_path=tmp_path / "c.sqlite", calibrate=True)
    first = run_eval(art_dir, gold, grader_spec=f"hf:{model}", options=options)
    with pytest.raises(UsageError, match="calibrated already; pass --force"):
        run_eval(art_dir, gold, grader_spec=f"hf:{model}", options=options)

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded: something was regraded")

    monkeypatch.setattr(hf.HFGrader, "from_pretrained", no_model)
    again = EvalOptions(
        progress=False, cache_path=tmp_path / "c.sqlite", calibrate=True, force=True, seed=1
    )
    second = run_eval(art_dir, gold, grader_spec=f"hf:{model}", options=again)
    assert first.calibration is not None and second.calibration is not None
    assert second.calibration.seed == 1
    assert load_calibration(load_artifact(art_dir)) == second.calibration
    # the first run reported raw values; the second, graded with the first calibration
    # in place, reports calibrated ones: the same decisions, other probabilities
    assert first.calibration.fits
    for name in first.calibration.fits:
        before, after = first.propositions[name], second.propositions[name]
        assert after.accuracy == before.accuracy
        assert after.brier != before.brier


def test_calibrate_needs_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    compile_spec(POLICY, tmp_path / "art")
    gold = FIXTURES / "eval" / "support_gold.jsonl"
    args = ["eval", str(tmp_path / "art"), str(gold), "--grader", "labels", "--calibrate"]
    assert main([*args, "--limit", "7"]) == 2
    assert "--calibrate needs a model's P(yes)" in capsys.readouterr().err
    assert not calibration_path(tmp_path / "art").exists()
    with pytest.raises(SystemExit) as info:  # refused by the option's type, before any work
        main([*args, "--holdout", "1.5"])
    assert info.value.code == 2
    assert "--holdout: must be a fraction between 0 and 1" in capsys.readouterr().err


def test_calibrate_from_a_grade_output(models: tuple[Path, Path], tmp_path: Path) -> None:
    """--predictions: the grader is known by name only, and grading applies it by name."""
    model, _ = models
    art_dir = tmp_path / "art"
    compile_spec(POLICY, art_dir)
    gold = _gold(tmp_path / "gold.jsonl")
    feats = tmp_path / "features.jsonl"
    grade = ["grade", str(art_dir), str(gold), "--grader", f"hf:{model}", "-o", str(feats), "-q"]
    assert main(grade) == 0
    report = run_eval(art_dir, gold, predictions=feats, options=EvalOptions(calibrate=True))
    cal = report.calibration
    assert cal is not None and cal.fits
    assert (cal.grader_source, cal.grader_identity) == ("hf:gpt2", None)
    rows = read_rows(gold)
    graded = extract_features(load_artifact(art_dir), rows, make_grader(f"hf:{model}"))
    name = next(iter(cal.fits))
    assert all(f.sources[name] == "hf:gpt2" + CALIBRATED for f in graded if name in f.sources)
