"""Seals: the file list that makes an artifact, and each unit written into it later,
tamper-evident.

A *unit* is a directory specc writes in one go: the compiled artifact itself
(``kind="artifact"``), ``weights/`` written by ``specc fit``, and any later state (a
calibration, say). Its ``seal.json`` records the unit's kind, the spec hash it belongs
to and the sha256 of every file in it; when a signing key is configured it also holds
an HMAC-SHA256 over all of that. :func:`read_unit` is how every loader reads a unit: it
reads each listed file once (a regular file inside the unit, no symbolic link, under
a size cap), checks its digest and the signature, and returns the verified bytes, so
nothing read later can differ from what was checked.

What the seal proves depends on the key (docs/security.md, "Artifacts and weights"):
without one, it detects corruption and edits made without rewriting ``seal.json``;
with one, only a holder of the key can make a unit that loads.

>>> write_unit(art.path / "calibration", {"calibration.json": data},     # doctest: +SKIP
...            kind="calibration", spec_hash=art.spec_hash)
>>> unit = read_unit(art.path / "calibration", kind="calibration",       # doctest: +SKIP
...                  spec_hash=art.spec_hash, remedy="recalibrate")
>>> unit.files["calibration.json"]                                        # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specc.errors import DataError, UsageError
from specc.files import PathRefused, Staging, check_relative, read_inside, read_regular
from specc.jsonl import parse_line

__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_UNIT_BYTES",
    "SEAL_FILE",
    "Seal",
    "Unit",
    "read_unit",
    "seal_bytes",
    "signing_key",
    "write_unit",
]

SEAL_FILE = "seal.json"
FORMAT = "specc.seal/1"
#: The largest file read from an artifact or a unit.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: The most bytes and files one unit may hold.
MAX_UNIT_BYTES = 256 * 1024 * 1024
MAX_FILES = 10_000
#: The signing key itself (text), or a file that holds it.
KEY_ENV = "SPECC_SIGNING_KEY"
KEY_FILE_ENV = "SPECC_SIGNING_KEY_FILE"
MIN_KEY_BYTES = 16
_MAX_KEY_FILE = 4096
_HEX64 = re.compile(r"[0-9a-f]{64}")


def signing_key(key: bytes | None = None) -> bytes | None:
    """``key`` if given, else the key configured in the environment (``$SPECC_SIGNING_KEY``
    or the file named by ``$SPECC_SIGNING_KEY_FILE``), else None."""
    if key is None:
        text = os.environ.get(KEY_ENV)
        path = os.environ.get(KEY_FILE_ENV)
        if text and path:
            raise UsageError(f"set either ${KEY_ENV} or ${KEY_FILE_ENV}, not both")
        if text:
            # The variable's bytes: ones that are not UTF-8 arrive as surrogates.
            key = os.fsencode(text.strip())
        elif path:
            try:
                key = read_regular(path, _MAX_KEY_FILE)
            except (OSError, PathRefused) as exc:
                raise UsageError(
                    f"${KEY_FILE_ENV}={path}: cannot read the signing key "
                    f"({getattr(exc, 'strerror', None) or exc}); it must be a regular file "
                    f"of at most {_MAX_KEY_FILE} bytes"
                ) from None
            key = key.strip()
        else:
            return None
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(
            f"the signing key has {len(key)} bytes; use at least {MIN_KEY_BYTES} random "
            "bytes (e.g. `openssl rand -hex 32`)"
        )
    return key


def key_id(key: bytes) -> str:
    """A public name for a key: the first 16 hex digits of its sha256."""
    return hashlib.sha256(b"specc key id\0" + key).hexdigest()[:16]


@dataclass(frozen=True)
class Seal:
    """The content of ``seal.json``: what a unit is and the sha256 of each file."""

    kind: str
    spec_hash: str
    files: Mapping[str, str]
    key_id: str | None = None
    mac: str | None = None

    def payload(self) -> bytes:
        """The canonical bytes the digest and the signature cover."""
        body = {
            "files": dict(sorted(self.files.items())),
            "format": FORMAT,
            "kind": self.kind,
            "spec_hash": self.spec_hash,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @property
    def digest(self) -> str:
        """The unit's identity: the sha256 of :meth:`payload`."""
        return hashlib.sha256(self.payload()).hexdigest()

    def mac_with(self, key: bytes) -> str:
        """The HMAC-SHA256 of :meth:`payload` under ``key`` (hex)."""
        return hmac.new(key, self.payload(), hashlib.sha256).hexdigest()

    def signed(self, key: bytes | None) -> Seal:
        if key is None:
            return Seal(self.kind, self.spec_hash, self.files)
        return Seal(self.kind, self.spec_hash, self.files, key_id(key), self.mac_with(key))

    def to_json(self) -> str:
        signature = None if self.mac is None else {"alg": "hmac-sha256", "key_id": self.key_id}
        data: dict[str, Any] = {
            "files": dict(sorted(self.files.items())),
            "format": FORMAT,
            "kind": self.kind,
            "signature": None if signature is None else {**signature, "mac": self.mac},
            "spec_hash": self.spec_hash,
        }
        return json.dumps(data, sort_keys=True, indent=2) + "\n"


def seal_bytes(
    files: Mapping[str, bytes], *, kind: str, spec_hash: str, key: bytes | None = None
) -> bytes:
    """The ``seal.json`` of a unit holding ``files`` (relative path -> bytes), signed
    with ``key`` (or the configured one)."""
    digests = {check_relative(rel): hashlib.sha256(data).hexdigest() for rel, data in files.items()}
    if SEAL_FILE in digests:
        raise ValueError(f"{SEAL_FILE} cannot be a file of its own unit")
    seal = Seal(kind, spec_hash, digests).signed(signing_key(key))
    return seal.to_json().encode()


def write_unit(
    target: str | Path,
    files: Mapping[str, bytes],
    *,
    kind: str,
    spec_hash: str,
    key: bytes | None = None,
    stage: Staging | None = None,
    keep: Callable[[str], bool] | None = None,
) -> Path:
    """Write ``files`` and their seal as the directory ``target``, replacing it whole
    (a temp directory renamed into place). With ``stage`` the rename waits for that
    staging's commit, so the unit appears together with the other staged writes.
    Entries of the old ``target`` whose names satisfy ``keep`` are carried over (the
    artifact keeps the units written into it after compile)."""
    seal = seal_bytes(files, kind=kind, spec_hash=spec_hash, key=key)
    own = stage is None
    stage = stage or Staging()
    try:
        temp = stage.directory(target, keep=keep)
        for rel, data in sorted(files.items()):
            stage.write_into(temp, rel, data)
        stage.write_into(temp, SEAL_FILE, seal)
    except BaseException:
        stage.discard()
        raise
    if own:
        stage.commit()
    return Path(target)


@dataclass(frozen=True)
class Unit:
    """A verified unit: its seal and the bytes of every file it lists."""

    path: Path
    seal: Seal
    files: Mapping[str, bytes]


def _bad(where: Path, message: str, remedy: str) -> DataError:
    return DataError(message, where=str(where), hint=remedy)


def _parse_seal(path: Path, raw: bytes, remedy: str) -> Seal:
    def bad(message: str) -> DataError:
        return _bad(path, f"not a valid seal: {message}", remedy)

    try:
        obj = parse_line(raw, "")
    except DataError as exc:
        raise bad(str(exc).split("\n", 1)[0]) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise bad(f"expected format {FORMAT!r}")
    files, kind, spec_hash = obj.get("files"), obj.get("kind"), obj.get("spec_hash")
    if not isinstance(kind, str) or not isinstance(spec_hash, str):
        raise bad("kind and spec_hash must be strings")
    if not isinstance(files, dict) or len(files) > MAX_FILES:
        raise bad(f"files must be an object of at most {MAX_FILES} entries")
    for rel, digest in files.items():
        try:
            check_relative(rel)
        except PathRefused as exc:
            raise bad(f"file {exc}") from None
        if rel == SEAL_FILE or not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise bad(f"file {rel!r} needs a sha256 (64 lowercase hex digits)")
    signature = obj.get("signature")
    if signature is None:
        return Seal(kind, spec_hash, files)
    if (
        not isinstance(signature, dict)
        or signature.get("alg") != "hmac-sha256"
        or not isinstance(signature.get("key_id"), str)
        or not isinstance(signature.get("mac"), str)
    ):
        raise bad("signature must be {alg: hmac-sha256, key_id, mac}")
    return Seal(kind, spec_hash, files, signature["key_id"], signature["mac"])


def _read(root: Path, rel: str, remedy: str, what: str) -> bytes:
    try:
        return read_inside(root, rel, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise _bad(root / rel, f"missing ({what})", remedy) from None
    except PathRefused as exc:
        raise _bad(root / rel, f"refused: {exc}", remedy) from None
    except OSError as exc:
        raise _bad(root / rel, f"cannot read: {exc.strerror or exc}", remedy) from None


def read_unit(
    directory: str | Path,
    *,
    kind: str,
    spec_hash: str | None,
    remedy: str,
    key: bytes | None = None,
) -> Unit:
    """Read and verify the unit in ``directory``.

    Checks, in order: ``seal.json`` is a seal of ``kind`` (and of ``spec_hash`` when
    given); the signature, when a key is configured (an unsigned unit is then refused);
    every listed file is a regular file inside the unit, within the size caps, with the
    recorded sha256. Every failure is a :class:`DataError` naming the file, with
    ``remedy`` (e.g. "recompile with ...") as its hint."""
    root = Path(directory)
    seal_path = root / SEAL_FILE
    seal = _parse_seal(seal_path, _read(root, SEAL_FILE, remedy, "the unit is not sealed"), remedy)
    if seal.kind != kind:
        raise _bad(seal_path, f"seals a {seal.kind!r} unit, not {kind!r}", remedy)
    if spec_hash is not None and seal.spec_hash != spec_hash:
        raise _bad(
            seal_path,
            f"belongs to spec {seal.spec_hash[:8]}, this artifact is {spec_hash[:8]}",
            remedy,
        )
    key = signing_key(key)
    if key is not None:
        configured = key_id(key)
        if seal.mac is None:
            raise _bad(
                seal_path,
                f"not signed, but a signing key is configured (key {configured})",
                f"{remedy}, with the signing key set",
            )
        if seal.key_id != configured:
            raise _bad(
                seal_path,
                f"signed with key {seal.key_id}, but the configured key is {configured}",
                f"{remedy}, with the same signing key",
            )
        if not hmac.compare_digest(seal.mac_with(key), seal.mac):
            raise _bad(seal_path, "signature does not match: the unit was altered", remedy)
    files: dict[str, bytes] = {}
    total = 0
    for rel, digest in sorted(seal.files.items()):
        data = _read(root, rel, remedy, f"listed in {SEAL_FILE}")
        total += len(data)
        if total > MAX_UNIT_BYTES:
            raise _bad(root, f"holds more than {MAX_UNIT_BYTES} bytes", remedy)
        found = hashlib.sha256(data).hexdigest()
        if found != digest:
            raise _bad(
                root / rel,
                f"modified after it was written (sha256 {found[:12]}, "
                f"{SEAL_FILE} records {digest[:12]})",
                remedy,
            )
        files[rel] = data
    return Unit(root, seal, files)
