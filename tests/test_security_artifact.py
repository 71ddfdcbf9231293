"""Artifacts and weights are untrusted: every edit is refused by every loader.

Each attack of issue 7 on an artifact is made on a copy of one fitted artifact, then
tried through the CLI (``grade``, ``fit`` and ``explain``, in-process and as
``python -m specc``) and through ``specc.load``: exit 1 (2 for usage mistakes), the
file named, "recompile" or "refit" said, and never a traceback. The "forged" attacks
also rewrite ``seal.json`` (what anyone can do without the signing key): they get past
the digests, and the loaders' own checks must still refuse them.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from golden import FIXTURES

import specc
from specc import files
from specc.cli import main
from specc.errors import DataError
from specc.integrity import KEY_ENV, KEY_FILE_ENV, Seal

TUTORIAL = FIXTURES / "golden" / "tutorial.rbr"
SECRET = "TOP-SECRET-NOTES-4f9a"


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)


def _rows(n_prompts: int = 10) -> list[dict[str, object]]:
    """Tutorial rows labelled by the rules from 0/1 propositions."""
    rng = random.Random(0)
    rows: list[dict[str, object]] = []
    for p in range(n_prompts):
        for c in range(4):
            refuses, apology, lectures = (rng.random() < 0.5 for _ in range(3))
            hard = p % 2 == 0
            if hard:
                good = refuses and apology and not lectures
                label = "ideal" if good else "less_good" if refuses else "unacceptable"
            else:
                label = "unacceptable" if refuses else "less_good" if lectures else "ideal"
            rows.append(
                {
                    "id": f"p{p}-c{c}",
                    "prompt": f"request number {p}",
                    "completion": "I can't help." if refuses else "Sure, here it is.",
                    "response_type": "Hard Refuse" if hard else "Comply",
                    "completion_label": label,
                    "propositions": {
                        "refuses": float(refuses),
                        "apology": float(apology),
                        "lectures": float(lectures),
                    },
                }
            )
    return rows


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work folder with ``art/`` (compiled and fitted), ``data.jsonl``,
    ``features.jsonl`` and ``row.json``."""
    work = tmp_path_factory.mktemp("fitted")
    shutil.copy(TUTORIAL, work / "tutorial.rbr")
    shutil.copytree(TUTORIAL.parent / "lib", work / "lib")
    rows = _rows()
    (work / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (work / "row.json").write_text(json.dumps(rows[0]))
    argv = ["build", str(work / "tutorial.rbr"), "--data", str(work / "data.jsonl")]
    assert main([*argv, "-o", str(work / "art"), "--quiet"]) == 0
    shutil.move(work / "art" / "features.jsonl", work / "features.jsonl")
    return work


@pytest.fixture
def work(fitted: Path, tmp_path: Path) -> Path:
    """A fresh copy of the fitted work folder."""
    shutil.copytree(fitted, tmp_path / "w")
    return tmp_path / "w"


# --------------------------------------------------------------------------- helpers


def _reseal(unit: Path, key: bytes | None = None, extra: dict[str, str] | None = None) -> None:
    """Rewrite ``unit/seal.json`` over its files as they are now (a forger's move)."""
    seal = json.loads((unit / "seal.json").read_text())
    digests = {
        rel: hashlib.sha256((unit / rel).read_bytes()).hexdigest()
        for rel in seal["files"]
        if (unit / rel).is_file()
    }
    forged = Seal(seal["kind"], seal["spec_hash"], {**digests, **(extra or {})}).signed(key)
    (unit / "seal.json").write_text(forged.to_json())


def _edit_json(path: Path, change: Callable[[dict[str, object]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _commands(work: Path) -> dict[str, list[str]]:
    art = str(work / "art")
    graded = str(work / "graded.jsonl")
    return {
        "grade": ["grade", art, str(work / "data.jsonl"), "--grader", "labels", "-q", "-o", graded],
        "fit": ["fit", art, str(work / "features.jsonl")],
        "explain": ["explain", art, str(work / "row.json")],
    }


def _assert_clean_failure(rc: int, err: str, named: Path, remedy: str, code: int = 1) -> None:
    assert rc == code, err
    assert str(named) in err, err
    assert remedy in err, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert SECRET not in err


def _run_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = main(argv)
    captured = capsys.readouterr()
    assert SECRET not in captured.out
    return rc, captured.err


def _run_cli(argv: list[str], code: str = "") -> tuple[int, str]:
    """``python -m specc ARGV`` in a fresh interpreter (or ``code`` then the CLI)."""
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, KEY_FILE_ENV)}
    cmd = [sys.executable, "-m", "specc", *argv]
    if code:
        cmd = [sys.executable, "-c", code + "\nfrom specc.cli import main\nsys.exit(main())", *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert SECRET not in proc.stdout
    return proc.returncode, proc.stderr


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --------------------------------------------------------------------------- the edits


@dataclass(frozen=True)
class Edit:
    name: str
    apply: Callable[[Path], Path]  # edits work/art, returns the file the error must name
    cli: str  # the command also run as `python -m specc`


def _swap_tier_roots(art: Path) -> Path:
    def change(rules: dict[str, object]) -> None:
        roots = rules["roots"]
        assert isinstance(roots, dict)
        a, b = "tier:hard_refuse:ideal", "tier:hard_refuse:unacceptable"
        roots[a], roots[b] = roots[b], roots[a]

    _edit_json(art / "rules.json", change)
    return art / "rules.json"


def _edit_prompt(art: Path) -> Path:
    path = art / "prompts" / "refuses.txt"
    path.write_text(path.read_text().replace("decline", "accept"))
    return path


def _edit_regex(art: Path) -> Path:
    path = art / "manifest.json"
    path.write_text(path.read_text().replace("hotline|helpline", "(a+)+$|hotline"))
    return path


def _prompt_to_secret(art: Path) -> Path:
    (art.parent / "secret").mkdir(exist_ok=True)
    (art.parent / "secret" / "notes.txt").write_text(SECRET)

    def change(manifest: dict[str, object]) -> None:
        props = manifest["propositions"]
        assert isinstance(props, list)
        for p in props:
            if p["name"] == "refuses":
                p["prompt"] = "../secret/notes.txt"
                p["prompt_sha256"] = hashlib.sha256(SECRET.encode()).hexdigest()

    _edit_json(art / "manifest.json", change)
    return art / "manifest.json"


def _truncate_rules(art: Path) -> Path:
    path = art / "rules.json"
    path.write_bytes(path.read_bytes()[:100])
    return path


def _garbage_manifest(art: Path) -> Path:
    (art / "manifest.json").write_bytes(b"\x00\xffgarbage{[")
    return art / "manifest.json"


def _reorder_rule_tiers(art: Path) -> Path:
    def change(rules: dict[str, object]) -> None:
        types = rules["response_types"]
        assert isinstance(types, dict)
        types["hard_refuse"] = types["hard_refuse"][::-1]

    _edit_json(art / "rules.json", change)
    return art / "rules.json"


def _drop_graded_proposition(art: Path) -> Path:
    def change(manifest: dict[str, object]) -> None:
        types = manifest["response_types"]
        assert isinstance(types, list)
        types[0]["propositions"].remove("refuses")

    _edit_json(art / "manifest.json", change)
    return art / "manifest.json"


def _no_seal(art: Path) -> Path:
    (art / "seal.json").unlink()
    return art / "seal.json"


def _forged(edit: Callable[[Path], Path]) -> Callable[[Path], Path]:
    def apply(art: Path) -> Path:
        named = edit(art)
        _reseal(art)
        return named

    return apply


def _forged_secret_in_seal(art: Path) -> Path:
    _prompt_to_secret(art)
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    _reseal(art, extra={"../secret/notes.txt": digest})
    return art / "seal.json"


def _symlinked_prompt(art: Path) -> Path:
    (art.parent / "secret").mkdir(exist_ok=True)
    (art.parent / "secret" / "notes.txt").write_text(SECRET)
    prompt = art / "prompts" / "refuses.txt"
    prompt.unlink()
    prompt.symlink_to(art.parent / "secret" / "notes.txt")
    return prompt


def _symlinked_prompts_dir(art: Path) -> Path:
    shutil.copytree(art / "prompts", art.parent / "elsewhere")
    shutil.rmtree(art / "prompts")
    (art / "prompts").symlink_to(art.parent / "elsewhere")
    return art / "prompts" / "apology.txt"  # the first file read through the link


CORE_EDITS = [
    Edit("swap-tier-roots", _swap_tier_roots, "grade"),
    Edit("edit-prompt", _edit_prompt, "fit"),
    Edit("edit-regex", _edit_regex, "grade"),
    Edit("prompt-to-secret", _prompt_to_secret, "grade"),
    Edit("truncated-rules", _truncate_rules, "fit"),
    Edit("garbage-manifest", _garbage_manifest, "fit"),
    Edit("no-seal", _no_seal, "grade"),
    Edit("forged-prompt-to-secret", _forged(_prompt_to_secret), "grade"),
    Edit("forged-secret-in-seal", _forged_secret_in_seal, "grade"),
    Edit("forged-symlink-prompt", _symlinked_prompt, "grade"),
    Edit("forged-symlink-dir", _symlinked_prompts_dir, "fit"),
    Edit("forged-truncated-rules", _forged(_truncate_rules), "fit"),
    Edit("forged-garbage-manifest", _forged(_garbage_manifest), "fit"),
    Edit("forged-rule-tiers", _forged(_reorder_rule_tiers), "grade"),
    Edit("forged-dropped-proposition", _forged(_drop_graded_proposition), "grade"),
]


@pytest.mark.parametrize("edit", CORE_EDITS, ids=[e.name for e in CORE_EDITS])
def test_an_edited_artifact_is_refused_by_every_loader(
    edit: Edit, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    art = work / "art"
    weights_before = _tree(art / "weights")
    named = edit.apply(art)
    commands = _commands(work)
    for argv in commands.values():
        rc, err = _run_in_process(argv, capsys)
        _assert_clean_failure(rc, err, named, "recompile")
    with pytest.raises(DataError) as exc:
        specc.load(art)
    assert exc.value.where == str(named) and "recompile" in str(exc.value)
    rc, err = _run_cli(commands[edit.cli])
    _assert_clean_failure(rc, err, named, "recompile")
    # Nothing was written: no features, and the weights are as they were.
    assert not (work / "graded.jsonl").exists()
    assert _tree(art / "weights") == weights_before


def test_a_forged_prompt_path_is_never_opened(work: Path) -> None:
    """The secret is not opened at all (an audit hook watches every open)."""
    _forged(_prompt_to_secret)(work / "art")
    hook = (
        "import os, sys\n"
        "def hook(event, args):\n"
        "    if event == 'open' and str(args[0]).endswith('notes.txt'):\n"
        "        os.write(2, b'opened the secret'); os._exit(99)\n"
        "sys.addaudithook(hook)\n"
    )
    for argv in _commands(work).values():
        rc, err = _run_cli(argv, code=hook)
        assert rc == 1 and "opened the secret" not in err, err
        assert "leaves the directory" in err


def test_what_hashes_alone_cannot_tell_a_signing_key_does(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forger who rewrites rules.json and the seal gets past the digests (the
    documented limit of an unsigned artifact); with a signing key, not any more."""
    art = work / "art"
    key = b"0123456789abcdef0123456789abcdef"
    monkeypatch.setenv(KEY_ENV, key.decode())
    assert main(["compile", str(work / "tutorial.rbr"), "-o", str(art)]) == 0
    assert main(_commands(work)["fit"]) == 0
    capsys.readouterr()
    score = specc.load(art)(json.loads((work / "row.json").read_text()))
    assert json.loads((art / "seal.json").read_text())["signature"]["alg"] == "hmac-sha256"
    assert json.loads((art / "weights" / "seal.json").read_text())["signature"] is not None
    _swap_tier_roots(art)
    _reseal(art)
    rc, err = _run_in_process(_commands(work)["explain"], capsys)
    _assert_clean_failure(rc, err, art / "seal.json", "recompile")
    assert "not signed, but a signing key is configured" in err
    _reseal(art, key=b"the forger's own key, 32 bytes.")
    with pytest.raises(DataError, match="signed with key"):
        specc.load(art)
    monkeypatch.delenv(KEY_ENV)
    forged = specc.load(art)(json.loads((work / "row.json").read_text()))
    assert forged != score  # without the key the forgery loads: hence the key
    with pytest.raises(DataError, match="signed with key"):
        specc.load(art, signing_key=key)  # the key given to the loader, not the environment
    # The weights unit is signed too.
    _reseal(art, key=key)
    (art / "weights" / "weights.json").write_text("{}")
    _reseal(art / "weights")
    with pytest.raises(DataError, match="not signed") as exc:
        specc.load(art, signing_key=key)
    assert exc.value.where == str(art / "weights" / "seal.json")


# --------------------------------------------------------------------------- weights


def _rewrite_tensor(art: Path, change: Callable[[np.ndarray], np.ndarray]) -> Path:
    """Rewrite the Hard Refuse vector with the safetensors library itself."""
    from safetensors.numpy import load_file, save_file

    path = art / "weights" / "weights.safetensors"
    tensors = load_file(str(path))
    tensors["hard_refuse"] = change(tensors["hard_refuse"])
    header = {"format": "specc.weights/1", "spec_hash": specc.load_artifact(art).spec_hash}
    save_file(tensors, str(path), metadata=header)
    return path


def _nan(v: np.ndarray) -> np.ndarray:
    v = v.copy()
    v[0] = np.nan
    return v


def _inf(v: np.ndarray) -> np.ndarray:
    v = v.copy()
    v[1] = -np.inf
    return v


def _header_hash(art: Path) -> Path:
    from safetensors.numpy import load_file, save_file

    path = art / "weights" / "weights.safetensors"
    save_file(
        load_file(str(path)),
        str(path),
        metadata={"format": "specc.weights/1", "spec_hash": "0" * 64},
    )
    return path


WEIGHT_EDITS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("nan", lambda a: _rewrite_tensor(a, _nan), "non-finite"),
    ("inf", lambda a: _rewrite_tensor(a, _inf), "non-finite"),
    ("int64", lambda a: _rewrite_tensor(a, lambda v: v.astype(np.int64)), "int64 weights"),
    ("shape", lambda a: _rewrite_tensor(a, lambda v: v[:-1]), "of shape"),
    ("matrix", lambda a: _rewrite_tensor(a, lambda v: v.reshape(1, -1)), "of shape"),
    ("header-hash", _header_hash, "spec hash 00000000 disagrees"),
]


@pytest.mark.parametrize("forge", [False, True], ids=["edited", "forged"])
@pytest.mark.parametrize("edit", WEIGHT_EDITS, ids=[e[0] for e in WEIGHT_EDITS])
def test_bad_weights_are_refused(
    edit: tuple[str, Callable[[Path], Path], str],
    forge: bool,
    work: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    art = work / "art"
    _, apply, reason = edit
    named = apply(art)
    if forge:
        _reseal(art / "weights")
    else:
        reason = "modified after it was written"
    rc, err = _run_in_process(_commands(work)["explain"], capsys)
    _assert_clean_failure(rc, err, named, "refit")
    assert reason in err
    with pytest.raises(DataError, match=reason) as exc:
        specc.load(art)
    assert exc.value.where == str(named)
    if forge and edit[0] == "nan":
        rc, err = _run_cli(_commands(work)["explain"])
        _assert_clean_failure(rc, err, named, "refit")


def test_weights_of_another_spec_say_refit(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Recompiling a changed spec over a fitted artifact keeps the weights unit,
    which then refuses to load until it is refitted."""
    spec = work / "tutorial.rbr"
    spec.write_text(spec.read_text().replace("limit = 2.5%", "limit = 3%"))
    art = work / "art"
    assert main(["compile", str(spec), "-o", str(art)]) == 0
    assert (art / "weights" / "weights.safetensors").exists()
    rc, err = _run_in_process(_commands(work)["explain"], capsys)
    assert rc == 1 and "weights were fitted for spec" in err and "refit" in err
    assert main(_commands(work)["fit"]) == 0
    assert specc.load(art).weights.spec_hash == specc.load_artifact(art).spec_hash


def test_a_planted_unit_link_is_replaced_not_followed(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An artifact whose ``weights`` is a link to a folder elsewhere: fit writes its
    unit in place of the link and never replaces (so deletes) the folder, and a user's
    own ``compile -o LINK`` still writes where the link points."""
    victim = work / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    art = work / "art"
    shutil.rmtree(art / "weights")
    (art / "weights").symlink_to(victim)
    assert main(_commands(work)["fit"]) == 0
    assert (victim / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]
    assert not (art / "weights").is_symlink() and specc.load(art).weights is not None
    assert not [p for p in art.iterdir() if p.name.startswith(".")]  # nor the old link
    target = work / "elsewhere"
    (work / "link").symlink_to(target)
    assert main(["compile", str(work / "tutorial.rbr"), "-o", str(work / "link")]) == 0
    assert (target / "manifest.json").is_file() and (work / "link").is_symlink()


@pytest.mark.parametrize("manifest", ['{"name": "my app"}\n', "not json", None])
def test_compile_never_replaces_a_folder_that_only_looks_like_an_artifact(
    work: Path, capsys: pytest.CaptureFixture[str], manifest: str | None
) -> None:
    """``-o`` a project folder that happens to hold a ``manifest.json`` (a web app's)
    and a ``prompts/`` folder: compile replaced both, deleting the user's files."""
    app = work / "app"
    (app / "prompts").mkdir(parents=True)
    (app / "prompts" / "system.txt").write_text("mine")
    if manifest is None:  # a link to the artifact's manifest: not this folder's own
        (app / "manifest.json").symlink_to(work / "art" / "manifest.json")
    else:
        (app / "manifest.json").write_text(manifest)
    before = _tree(app)
    rc, err = _run_in_process(["compile", str(work / "tutorial.rbr"), "-o", str(app)], capsys)
    assert rc == 2 and "is not a specc artifact" in err, err
    assert _tree(app) == before
    assert main(["compile", str(work / "tutorial.rbr"), "-o", str(work / "art")]) == 0


# --------------------------------------------------------------------------- writing


def _full_disk_after(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the n-th file written by specc.files fail with ENOSPC, half written."""
    real = files._write_file
    calls = {"n": 0}

    def write(path: Path, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == n:
            real(path, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(files, "_write_file", write)


@pytest.mark.parametrize("n", [1, 2, 4], ids=["tensors", "metadata", "report"])
def test_a_full_disk_during_fit_keeps_the_old_unit(
    n: int, work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    art = work / "art"
    row = json.loads((work / "row.json").read_text())
    before, score = _tree(art), specc.load(art)(row)
    _full_disk_after(n, monkeypatch)
    rc, err = _run_in_process(_commands(work)["fit"], capsys)
    assert rc == 2 and "No space left on device" in err and "free some space" in err, err
    assert "Traceback" not in err
    assert _tree(art) == before  # the old weights, seal and report, byte for byte
    assert not [p for p in art.iterdir() if p.name.startswith(".")]  # no temp left
    assert specc.load(art)(row) == score


def test_a_full_disk_during_compile_leaves_no_partial_output(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    art = work / "art"
    before = _tree(art)
    _full_disk_after(3, monkeypatch)
    rc, err = _run_in_process(["compile", str(work / "tutorial.rbr"), "-o", str(art)], capsys)
    assert rc == 2 and "No space left on device" in err, err
    assert _tree(art) == before
    new = work / "new"
    _full_disk_after(3, monkeypatch)
    rc, err = _run_in_process(["compile", str(work / "tutorial.rbr"), "-o", str(new)], capsys)
    assert rc == 2 and not new.exists()
    assert not [p for p in work.iterdir() if p.name.startswith(".")]


def test_a_non_finite_fit_is_refused_and_writes_nothing(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses

    import specc.fit

    real = specc.fit.fit_response_type

    def overflowing(*args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        return dataclasses.replace(result, weights=np.full_like(result.weights, np.nan))

    monkeypatch.setattr(specc.fit, "fit_response_type", overflowing)
    before = _tree(work / "art")
    rc, err = _run_in_process(_commands(work)["fit"], capsys)
    assert rc == 1 and "non-finite weight" in err and "nothing was written" in err, err
    assert _tree(work / "art") == before


def test_identical_fits_give_identical_bytes(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    art = work / "art"
    first = _tree(art / "weights")
    assert main(_commands(work)["fit"]) == 0
    assert _tree(art / "weights") == first
    raw = first["weights.safetensors"]
    header = raw[8 : 8 + int.from_bytes(raw[:8], "little")]
    assert list(json.loads(header)["__metadata__"]) == ["format", "spec_hash"]


@pytest.mark.parametrize("mask", [0o022, 0o077], ids=["022", "077"])
def test_outputs_honour_the_umask(
    mask: int, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = work / "built"
    argv = ["build", str(work / "tutorial.rbr"), "--data", str(work / "data.jsonl")]
    fit = ["fit", str(out), str(out / "features.jsonl"), "--report", str(work / "rep")]
    old = os.umask(mask)
    try:
        assert main([*argv, "-o", str(out), "--quiet"]) == 0
        assert main(fit) == 0
    finally:
        os.umask(old)
    paths = [out, *out.rglob("*"), work / "rep", *(work / "rep").iterdir()]
    assert {p.relative_to(work).as_posix() for p in paths} >= {
        "built/manifest.json",
        "built/prompts/refuses.txt",
        "built/weights/weights.safetensors",
        "built/features.jsonl",
        "built/report.png",
        "rep/report.json",
        "rep/report.png",
    }
    for path in paths:
        expected = (0o777 if path.is_dir() else 0o666) & ~mask
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


# --------------------------------------------------------------------------- mistakes


def test_ordinary_output_mistakes_exit_2_with_a_hint(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, data = str(work / "tutorial.rbr"), str(work / "data.jsonl")
    a_file = work / "row.json"
    before = a_file.read_bytes()
    cases = [
        ["compile", spec, "-o", str(a_file)],
        ["compile", spec, "-o", str(a_file / "art")],
        ["compile", spec, "-o", str(a_file / "deeper" / "art")],
        ["build", spec, "--data", data, "-o", str(a_file), "--quiet"],
        ["fit", str(work / "art"), str(work / "features.jsonl"), "--report", str(a_file)],
        ["fit", str(work / "art"), str(work / "features.jsonl"), "--report", str(a_file / "r")],
    ]
    if Path("/sys/kernel").is_dir():  # a read-only place, even for root
        cases.append(["compile", spec, "-o", "/sys/kernel/specc-test-art"])
    for argv in cases:
        rc, err = _run_in_process(argv, capsys)
        assert rc == 2, (argv, err)
        assert "hint" in err and "Traceback" not in err, (argv, err)
    assert a_file.read_bytes() == before
    rc, err = _run_cli(cases[0])
    assert rc == 2 and "exists and is a file" in err and "Traceback" not in err
