"""Card signing keys: creation, rotation, the published JWK set and the revocation list.

Keys are ES256 (ECDSA on P-256). A key's ``kid`` is the first 8 bytes of SHA-256 over its
SubjectPublicKeyInfo DER. Exactly one key is *active* (signs new cards); *retired* keys only
verify, their private half erased, and stay published until every card they signed has expired.
Where the keys are kept, and why, is explained in :mod:`kartu.card.models`.

* No ``KARTU_CARD_SIGNING_KEY[_FILE]``: the first card signed generates a key into the database
  (encrypted with the field key; a warning goes to stderr). ``kartu keys rotate --card`` adds a
  new active key and retires the old one.
* ``KARTU_CARD_SIGNING_KEY`` (PEM) or ``KARTU_CARD_SIGNING_KEY_FILE``: that key signs. Its public
  half is recorded on first use and every other active key is retired; to rotate, put a new key
  there and restart (``kartu keys rotate --card`` refuses, it cannot change the environment).

Every process re-reads the key set within :data:`RELOAD_SECONDS` (a rotation needs no restart);
a kid it has not seen makes it re-read at once.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cwt import COSEKey
from cwt.cose_key_interface import COSEKeyInterface
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from kartu.card import conf
from kartu.card.models import PRIVATE_KEY_AAD, Card, SigningKey
from kartu.core import crypto

RELOAD_SECONDS = 2.0
ALG = "ES256"


class CardKeyError(Exception):
    """The card signing key is missing, malformed, or cannot be changed here."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def kid_of(public_key: ec.EllipticCurvePublicKey) -> bytes:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()[:8]


def _spki(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_curve(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> None:
    if not isinstance(key.curve, ec.SECP256R1):
        raise CardKeyError("card signing keys must be ECDSA P-256 (ES256)")


@dataclass(frozen=True)
class Signer:
    """The active signing key, ready to sign."""

    kid: bytes
    private_key: ec.EllipticCurvePrivateKey
    cose_key: COSEKeyInterface

    def __repr__(self) -> str:
        return f"Signer(kid={self.kid.hex()})"


def _signer(private_key: ec.EllipticCurvePrivateKey) -> Signer:
    _check_curve(private_key)
    kid = kid_of(private_key.public_key())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Signer(kid, private_key, COSEKey.from_pem(pem, alg=ALG, kid=kid))


def public_cose_key(public_der: bytes, kid: bytes) -> COSEKeyInterface:
    public_key = serialization.load_der_public_key(public_der)
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise CardKeyError("not an EC public key")
    _check_curve(public_key)
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return COSEKey.from_pem(pem, alg=ALG, kid=kid)


def _encrypt_private(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return crypto.encrypt(base64.b64encode(der).decode(), PRIVATE_KEY_AAD)


def _decrypt_private(blob: bytes) -> ec.EllipticCurvePrivateKey:
    der = base64.b64decode(crypto.decrypt(blob, PRIVATE_KEY_AAD))
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CardKeyError("stored card signing key is not an EC key")
    return key


# --- the process-wide cache ---------------------------------------------------------------


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.signers: dict[str, Signer] = {}  # kid hex -> decrypted private key
        self.public: dict[bytes, COSEKeyInterface] = {}
        self.public_loaded = 0.0
        self.env_checked: str = ""  # kid hex of the env key already recorded in the database

    def reset(self) -> None:
        with self.lock:
            self.signers.clear()
            self.public = {}
            self.public_loaded = 0.0
            self.env_checked = ""


_cache = _Cache()


def reset_cache() -> None:
    """Forget cached keys (tests; after restoring a database)."""
    _cache.reset()


# --- signing ------------------------------------------------------------------------------


def active_signer() -> Signer:
    """The key that signs new cards, created on first use."""
    pem = conf.signing_key_pem()
    if pem is not None:
        return _env_signer(pem)
    row = SigningKey.objects.filter(status=SigningKey.Status.ACTIVE).first()
    if row is None:
        row = _create_first_key()
    if row.source == SigningKey.Source.ENVIRONMENT or not row.private_cipher:
        raise CardKeyError(
            f"the active card key {row.kid} came from KARTU_CARD_SIGNING_KEY, which is no longer "
            "set: set it again, or run `kartu keys rotate --card` to generate a new key"
        )
    signer = _cache.signers.get(row.kid)
    if signer is None:
        blob = bytes(row.private_cipher)
        signer = _signer(_decrypt_private(blob))
        if crypto.key_id_of(blob) != crypto.keyring().active_field:
            # The field key was rotated: move the private key to the active field key, so that
            # the old one can be dropped.
            SigningKey.objects.filter(pk=row.pk).update(
                private_cipher=_encrypt_private(signer.private_key)
            )
        _cache.signers[row.kid] = signer
    return signer


def _new_row(private_key: ec.EllipticCurvePrivateKey) -> SigningKey:
    public = private_key.public_key()
    return SigningKey.objects.create(
        kid=kid_of(public).hex(), public_der=_spki(public),
        private_cipher=_encrypt_private(private_key), source=SigningKey.Source.DATABASE,
        status=SigningKey.Status.ACTIVE,
    )


def _create_first_key() -> SigningKey:
    try:
        with transaction.atomic():
            existing = SigningKey.objects.filter(status=SigningKey.Status.ACTIVE).first()
            if existing is not None:
                return existing
            row = _new_row(ec.generate_private_key(ec.SECP256R1()))
    except IntegrityError:  # another process created it at the same moment
        return SigningKey.objects.get(status=SigningKey.Status.ACTIVE)
    reset_cache()
    sys.stderr.write(
        f"kartu: WARNING generated card signing key {row.kid} into the database (its private "
        "half encrypted with the field key). Publish /.well-known/kartu/keys.json to verifiers; "
        "in production give KARTU_CARD_SIGNING_KEY, or keep the field keys backed up.\n"
    )
    return row


def _retire(queryset: Any, now: datetime) -> list[str]:
    kids = list(queryset.values_list("kid", flat=True))
    queryset.update(status=SigningKey.Status.RETIRED, retired_at=now, private_cipher=None)
    return kids


def _env_signer(pem: bytes) -> Signer:
    try:
        private_key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CardKeyError(f"KARTU_CARD_SIGNING_KEY is not a PEM private key: {exc}") from None
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise CardKeyError("KARTU_CARD_SIGNING_KEY must be an EC P-256 private key")
    signer = _signer(private_key)
    kid_hex = signer.kid.hex()
    if _cache.env_checked != kid_hex:
        with transaction.atomic():
            row = SigningKey.objects.filter(kid=kid_hex).first()
            if row is not None and row.status == SigningKey.Status.RETIRED:
                raise CardKeyError(f"KARTU_CARD_SIGNING_KEY is the retired key {kid_hex}")
            if row is None:
                _retire(SigningKey.objects.filter(status=SigningKey.Status.ACTIVE), timezone.now())
                SigningKey.objects.create(
                    kid=kid_hex, public_der=_spki(private_key.public_key()),
                    source=SigningKey.Source.ENVIRONMENT, status=SigningKey.Status.ACTIVE,
                )
        _cache.env_checked = kid_hex
    return signer


def rotate(*, now: datetime | None = None) -> tuple[SigningKey, list[str]]:
    """Make a new signing key active and retire the others (their cards stay valid).

    Returns the new key and the kids retired.
    """
    if conf.signing_key_pem() is not None:
        raise CardKeyError(
            "the card signing key comes from KARTU_CARD_SIGNING_KEY[_FILE]: put a new P-256 key "
            "there and restart; the old one is retired on first use"
        )
    now = now or timezone.now()
    with transaction.atomic():
        retired = _retire(SigningKey.objects.filter(status=SigningKey.Status.ACTIVE), now)
        row = _new_row(ec.generate_private_key(ec.SECP256R1()))
    reset_cache()
    return row, retired


# --- verification keys and the JWK set ----------------------------------------------------


def published_keys(now: datetime | None = None) -> list[SigningKey]:
    """Active key first, then retired keys that may still have valid cards."""
    now = now or timezone.now()
    pem = conf.signing_key_pem()
    if pem is not None:
        _env_signer(pem)  # records an operator-given key before it has signed anything
    horizon = now - timedelta(days=conf.valid_days() + 1)
    rows = SigningKey.objects.filter(
        Q(status=SigningKey.Status.ACTIVE) | Q(retired_at__gt=horizon)
    ).order_by("status", "-created_at")  # "active" sorts before "retired"
    return list(rows)


def verification_key(kid: bytes) -> COSEKeyInterface | None:
    """The public key with this kid, if it is published."""
    now = time.monotonic()
    keys = _cache.public
    if now - _cache.public_loaded > RELOAD_SECONDS or kid not in keys:
        if kid not in keys and now - _cache.public_loaded < 0.05:
            return None  # just reloaded: an unknown kid stays unknown (no query per forgery)
        keys = {row.kid_bytes: public_cose_key(bytes(row.public_der), row.kid_bytes)
                for row in published_keys()}
        with _cache.lock:
            _cache.public = keys
            _cache.public_loaded = now
    return keys.get(kid)


def jwk(row: SigningKey) -> dict[str, str]:
    public_key = serialization.load_der_public_key(bytes(row.public_der))
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
        "kid": b64url(row.kid_bytes),
        "alg": ALG,
        "use": "sig",
        "status": row.status,
    }


def jwks(now: datetime | None = None) -> dict[str, list[dict[str, str]]]:
    """The JWK set published at ``/.well-known/kartu/keys.json``."""
    return {"keys": [jwk(row) for row in published_keys(now)]}


# --- revocation ---------------------------------------------------------------------------


def revoked_ctis(now: datetime | None = None) -> list[str]:
    """Revoked cards that have not expired yet (expired cards fail on their own), plus cards
    whose membership no longer exists."""
    now = now or timezone.now()
    rows = Card.objects.filter(
        Q(revoked_at__isnull=False) | Q(membership__isnull=True), expires_at__gt=now
    ).order_by("cti")
    return list(rows.values_list("cti", flat=True))


def revoked_list(now: datetime | None = None) -> dict[str, Any]:
    """``{"updated": NumericDate, "revoked": [cti, …]}`` for ``/.well-known/kartu/revoked.json``."""
    now = now or timezone.now()
    return {"updated": int(now.timestamp()), "revoked": revoked_ctis(now)}


def is_revoked(cti: str) -> bool:
    return Card.objects.filter(
        Q(revoked_at__isnull=False) | Q(membership__isnull=True), cti=cti
    ).exists()


def keyset_from_jwks(doc: object) -> dict[bytes, COSEKeyInterface]:
    """Verification keys from a JWK set shaped like ours (for verifying without the database).

    Entries that are not EC P-256 keys with a base64url kid are skipped.
    """
    out: dict[bytes, COSEKeyInterface] = {}
    entries = doc.get("keys") if isinstance(doc, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        try:
            if entry["kty"] != "EC" or entry["crv"] != "P-256":
                continue
            kid = b64url_decode(entry["kid"])
            x, y = (int.from_bytes(b64url_decode(entry[c]), "big") for c in ("x", "y"))
            public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except (KeyError, TypeError, ValueError):
            continue
        out[kid] = public_cose_key(_spki(public), kid)
    return out


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def status(now: datetime | None = None) -> list[dict[str, object]]:
    """The card signing keys for ``kartu keys status``: each key, where it comes from, whether
    it signs new cards, whether verifiers still get it (``/.well-known/kartu-jwks.json``), and
    how many unexpired, unrevoked cards it signed."""
    from django.db.models import Count

    from kartu.card.models import Card

    now = now or timezone.now()
    published = {row.kid for row in published_keys(now)}
    live = {
        row["kid"]: row["n"]
        for row in Card.objects.filter(expires_at__gt=now, revoked_at__isnull=True)
        .values("kid").annotate(n=Count("id"))
    }
    return [
        {
            "kid": row.kid,
            "status": row.status,
            "source": row.source,
            "created_at": row.created_at.isoformat(),
            "retired_at": row.retired_at.isoformat() if row.retired_at else None,
            "published": row.kid in published,
            "live_cards": int(live.get(row.kid, 0)),
        }
        for row in SigningKey.objects.all()
    ]
