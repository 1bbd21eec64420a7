"""Field encryption and blind indexes.

Personal identifiers (the NIK above all) are never stored in clear. Each is stored twice:

* as an authenticated ciphertext, AES-256-GCM with a random 96-bit nonce, tagged with the id of
  the key that made it so keys can rotate (``kartu keys rotate`` re-encrypts in place), and bound
  to its column through the associated data so a ciphertext cannot be moved to another column;
* as a *blind index*: HMAC-SHA256 of the normalised value under a separate key, truncated to
  128 bits, used for equality lookups. Several index keys may be live at once while a rotation
  re-indexes; lookups then try every live key, and the active one is used for new rows.

Keys come from ``KARTU_FIELD_KEYS`` / ``KARTU_BLIND_INDEX_KEYS`` ("kid:base64,kid:base64", the
first active) or, when those are absent, from ``keys.json`` in the data directory, generated on
first use with a warning. The file is re-read when it changes, so a rotation reaches every running
process within ``RELOAD_SECONDS`` without a restart.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RELOAD_SECONDS = 2.0
_FORMAT = 1  # first byte of every ciphertext


class CryptoError(Exception):
    """A key is missing, malformed, or a ciphertext does not authenticate."""


@dataclass(frozen=True)
class Keyring:
    field_keys: dict[str, bytes]
    active_field: str
    index_keys: dict[str, bytes]
    active_index: str
    source: str  # "env" or the keys file path

    def __post_init__(self) -> None:
        for kid in (*self.field_keys, *self.index_keys):
            if not kid or len(kid.encode()) > 32 or ":" in kid or "," in kid:
                raise CryptoError(f"bad key id {kid!r}")
        for key in (*self.field_keys.values(), *self.index_keys.values()):
            if len(key) != 32:
                raise CryptoError("every key must be 32 bytes (base64 of 32 random bytes)")

    @property
    def index_kids(self) -> list[str]:
        """Live index key ids, active first."""
        return [self.active_index, *(k for k in self.index_keys if k != self.active_index)]


def _parse_env_keys(raw: str, name: str) -> tuple[dict[str, bytes], str]:
    keys: dict[str, bytes] = {}
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        kid, sep, b64 = part.partition(":")
        if not sep:
            raise CryptoError(f"{name}: each entry is kid:base64key")
        try:
            keys[kid] = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        except (binascii.Error, ValueError):
            raise CryptoError(f"{name}: key {kid!r} is not base64") from None
    if not keys:
        raise CryptoError(f"{name} is empty")
    return keys, next(iter(keys))


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _keyring_from_file(path: Path) -> Keyring:
    data = json.loads(path.read_text())
    return Keyring(
        field_keys={k: base64.urlsafe_b64decode(v) for k, v in data["field"]["keys"].items()},
        active_field=data["field"]["active"],
        index_keys={k: base64.urlsafe_b64decode(v) for k, v in data["index"]["keys"].items()},
        active_index=data["index"]["active"],
        source=str(path),
    )


def write_keys_file(path: Path, data: dict[str, dict[str, object]]) -> None:
    """Atomically replace the keys file (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def read_keys_file(path: Path) -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return data


def _create_keys_file(path: Path) -> None:
    write_keys_file(
        path,
        {
            "field": {"active": "f1", "keys": {"f1": new_key()}},
            "index": {"active": "i1", "keys": {"i1": new_key()}},
        },
    )
    sys.stderr.write(
        f"kartu: WARNING generated field-encryption and blind-index keys into {path}. "
        "Back this file up: NIKs encrypted with a lost key cannot be recovered. In production "
        "give KARTU_FIELD_KEYS and KARTU_BLIND_INDEX_KEYS instead.\n"
    )


class _KeyringCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ring: Keyring | None = None
        self._checked = 0.0
        self._mtime = 0.0

    def get(self) -> Keyring:
        now = time.monotonic()
        ring = self._ring
        if ring is not None and (ring.source == "env" or now - self._checked < RELOAD_SECONDS):
            return ring
        with self._lock:
            return self._load(now)

    def reset(self) -> None:
        with self._lock:
            self._ring = None

    def _load(self, now: float) -> Keyring:
        from django.conf import settings

        field_raw = settings.KARTU_FIELD_KEYS
        index_raw = settings.KARTU_BLIND_INDEX_KEYS
        if field_raw or index_raw:
            if not (field_raw and index_raw):
                raise CryptoError(
                    "give both KARTU_FIELD_KEYS and KARTU_BLIND_INDEX_KEYS, or neither"
                )
            fkeys, factive = _parse_env_keys(field_raw, "KARTU_FIELD_KEYS")
            ikeys, iactive = _parse_env_keys(index_raw, "KARTU_BLIND_INDEX_KEYS")
            self._ring = Keyring(fkeys, factive, ikeys, iactive, "env")
            return self._ring
        path = Path(settings.KARTU_KEYS_FILE)
        if not path.exists():
            _create_keys_file(path)
        mtime = path.stat().st_mtime
        if self._ring is None or mtime != self._mtime:
            self._ring = _keyring_from_file(path)
            self._mtime = mtime
        self._checked = now
        return self._ring


_cache = _KeyringCache()
_aead_cache: dict[bytes, AESGCM] = {}


def keyring() -> Keyring:
    return _cache.get()


def reload_keyring() -> Keyring:
    _cache.reset()
    return _cache.get()


def _aead(key: bytes) -> AESGCM:
    aead = _aead_cache.get(key)
    if aead is None:
        aead = _aead_cache[key] = AESGCM(key)
    return aead


def encrypt(plaintext: str, aad: bytes, ring: Keyring | None = None) -> bytes:
    """Encrypt ``plaintext`` for the column named by ``aad`` with the active field key.

    Layout: format byte, key-id length, key id, 12-byte nonce, ciphertext with 16-byte tag.
    """
    ring = ring or keyring()
    kid = ring.active_field.encode()
    nonce = os.urandom(12)
    body = _aead(ring.field_keys[ring.active_field]).encrypt(nonce, plaintext.encode(), aad)
    return bytes((_FORMAT, len(kid))) + kid + nonce + body


def key_id_of(blob: bytes) -> str:
    blob = bytes(blob)
    if len(blob) < 2 or blob[0] != _FORMAT:
        raise CryptoError("not a kartu ciphertext")
    return blob[2 : 2 + blob[1]].decode()


def decrypt(blob: bytes | memoryview, aad: bytes, ring: Keyring | None = None) -> str:
    data = bytes(blob)
    kid = key_id_of(data)
    ring = ring or keyring()
    key = ring.field_keys.get(kid)
    if key is None:
        # Another process may have rotated keys since we last looked.
        ring = reload_keyring()
        key = ring.field_keys.get(kid)
        if key is None:
            raise CryptoError(f"field key {kid!r} is not configured")
    start = 2 + data[1]
    try:
        return _aead(key).decrypt(data[start : start + 12], data[start + 12 :], aad).decode()
    except InvalidTag:
        raise CryptoError("ciphertext does not authenticate (tampered, or wrong column)") from None


def blind_index(value: str, kid: str | None = None, ring: Keyring | None = None) -> str:
    """Blind index of ``value`` under the given (default: active) index key; 32 hex chars."""
    ring = ring or keyring()
    key = ring.index_keys[kid or ring.active_index]
    return hmac.digest(key, value.encode(), "sha256")[:16].hex()


def blind_indexes(value: str, ring: Keyring | None = None) -> list[str]:
    """The value's blind index under every live index key, active first."""
    ring = ring or keyring()
    data = value.encode()
    return [hmac.digest(ring.index_keys[k], data, "sha256")[:16].hex() for k in ring.index_kids]


def pseudonym(value: str, purpose: str) -> str:
    """A stable keyed pseudonym for logs, audit references and rate-limit keys (not reversible).

    Keyed with SECRET_KEY rather than the index key, so it survives blind-index rotation.
    """
    from django.conf import settings

    return hmac.digest(_pseudonym_key(purpose, settings.SECRET_KEY), value.encode(),
                       "sha256")[:12].hex()


@functools.lru_cache(maxsize=64)
def _pseudonym_key(purpose: str, secret: str) -> bytes:
    # Derived once per purpose (and secret): it runs several times per verification.
    return hashlib.sha256(f"kartu-pseudonym:{purpose}:{secret}".encode()).digest()
