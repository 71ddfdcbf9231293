"""specc.integrity: sealed units, their verification and optional HMAC signing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specc.errors import DataError, UsageError
from specc.integrity import (
    KEY_ENV,
    KEY_FILE_ENV,
    read_unit,
    seal_bytes,
    signing_key,
    write_unit,
)

HASH = "ab" * 32
KEY = b"k" * 32
FILES = {"calibration.json": b'{"t": 1.5}\n', "tables/a.bin": b"\x00\x01\x02"}


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)


def _read(path: Path, key: bytes | None = None, spec_hash: str | None = HASH) -> dict[str, bytes]:
    unit = read_unit(path, kind="calibration", spec_hash=spec_hash, remedy="recalibrate", key=key)
    return dict(unit.files)


def test_round_trip_and_deterministic_seal(tmp_path: Path) -> None:
    write_unit(tmp_path / "cal", FILES, kind="calibration", spec_hash=HASH)
    assert _read(tmp_path / "cal") == FILES
    seal = json.loads((tmp_path / "cal" / "seal.json").read_text())
    assert seal["kind"] == "calibration" and seal["signature"] is None
    assert sorted(seal["files"]) == sorted(FILES)
    again = seal_bytes(FILES, kind="calibration", spec_hash=HASH)
    assert (tmp_path / "cal" / "seal.json").read_bytes() == again


def test_wrong_kind_spec_or_missing_seal(tmp_path: Path) -> None:
    write_unit(tmp_path / "w", FILES, kind="weights", spec_hash=HASH)
    with pytest.raises(DataError, match="seals a 'weights' unit, not 'calibration'"):
        _read(tmp_path / "w")
    write_unit(tmp_path / "cal", FILES, kind="calibration", spec_hash=HASH)
    with pytest.raises(DataError, match="belongs to spec abababab, this artifact is cdcdcdcd"):
        _read(tmp_path / "cal", spec_hash="cd" * 32)
    (tmp_path / "cal" / "seal.json").unlink()
    with pytest.raises(DataError, match="missing") as err:
        _read(tmp_path / "cal")
    assert err.value.where == str(tmp_path / "cal" / "seal.json")
    assert err.value.hint == "recalibrate"


@pytest.mark.parametrize(
    "seal",
    [
        b"",
        b"{",
        b"[" * 100 + b"]" * 100,
        b'{"format": "specc.seal/1"}',
        b'{"format": "specc.seal/1", "kind": "calibration", "spec_hash": "x", '
        b'"files": {"../../etc/passwd": "' + b"0" * 64 + b'"}}',
        b'{"format": "specc.seal/1", "kind": "calibration", "spec_hash": "x", '
        b'"files": {"a": "not a digest"}}',
        b'{"format": "specc.seal/1", "kind": "calibration", "spec_hash": "x", '
        b'"files": {}, "signature": {"alg": "none"}}',
    ],
    ids=["empty", "truncated", "deep", "no-kind", "escape", "digest", "alg-none"],
)
def test_a_bad_seal_is_a_data_error_naming_it(tmp_path: Path, seal: bytes) -> None:
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "seal.json").write_bytes(seal)
    with pytest.raises(DataError, match="not a valid seal") as err:
        _read(tmp_path / "cal", spec_hash=None)
    assert err.value.where == str(tmp_path / "cal" / "seal.json")


def test_signed_units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unit = tmp_path / "cal"
    write_unit(unit, FILES, kind="calibration", spec_hash=HASH, key=KEY)
    assert _read(unit, key=KEY) == FILES
    assert _read(unit) == FILES  # without a key: the digests are still checked
    with pytest.raises(DataError, match=r"signed with key .* but the configured key is"):
        _read(unit, key=b"another key of 32 bytes........")
    # A forger who rewrites a file and the seal without the key:
    (unit / "calibration.json").write_bytes(b'{"t": 99}\n')
    forged = {**FILES, "calibration.json": b'{"t": 99}\n'}
    (unit / "seal.json").write_bytes(seal_bytes(forged, kind="calibration", spec_hash=HASH))
    assert _read(unit)["calibration.json"] == b'{"t": 99}\n'  # hashes alone cannot tell
    with pytest.raises(DataError, match="not signed, but a signing key is configured"):
        _read(unit, key=KEY)
    # ... or who keeps the key id but cannot compute the MAC:
    real = json.loads(seal_bytes(FILES, kind="calibration", spec_hash=HASH, key=KEY))
    fake = json.loads(seal_bytes(forged, kind="calibration", spec_hash=HASH))
    fake["signature"] = real["signature"]
    (unit / "seal.json").write_text(json.dumps(fake))
    with pytest.raises(DataError, match="signature does not match"):
        _read(unit, key=KEY)
    # The key from the environment, as text or as a file.
    monkeypatch.setenv(KEY_ENV, KEY.decode() + "\n")
    assert signing_key() == KEY
    with pytest.raises(DataError, match="signature does not match"):
        _read(unit)


def test_key_configuration_mistakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "key").write_bytes(KEY + b"\n")
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "key"))
    assert signing_key() == KEY
    monkeypatch.setenv(KEY_ENV, "x" * 32)
    with pytest.raises(UsageError, match="not both"):
        signing_key()
    monkeypatch.delenv(KEY_ENV)
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="cannot read the signing key"):
        signing_key()
    monkeypatch.setenv(KEY_FILE_ENV, "/dev/zero")
    with pytest.raises(UsageError, match="regular file"):
        signing_key()
    monkeypatch.delenv(KEY_FILE_ENV)
    with pytest.raises(UsageError, match="at least 16"):
        signing_key(b"short")
    # A key of random bytes in the variable (not UTF-8: Python sees surrogates) is
    # those bytes, as in a key file; it used to end in exit 70 (UnicodeEncodeError).
    monkeypatch.setenv(KEY_ENV, os.fsdecode(b"\xff\xfe" * 16))
    assert signing_key() == b"\xff\xfe" * 16


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(sorted(FILES)),
    position=st.integers(min_value=0, max_value=2),
    flip=st.integers(min_value=1, max_value=255),
)
def test_any_changed_byte_is_detected_and_named(
    tmp_path: Path, name: str, position: int, flip: int
) -> None:
    unit = tmp_path / "cal"
    write_unit(unit, FILES, kind="calibration", spec_hash=HASH)
    data = bytearray(FILES[name])
    data[position] ^= flip
    (unit / name).write_bytes(bytes(data))
    with pytest.raises(DataError, match="modified after it was written") as err:
        _read(unit)
    assert err.value.where == str(unit / name) and err.value.hint == "recalibrate"
