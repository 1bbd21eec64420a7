"""Signing keys: rotation, the JWK set, env-given keys, the revocation list."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import CommandError, call_command
from django.utils import timezone

from kartu.card import keys, qr, services
from kartu.card.models import PRIVATE_KEY_AAD, SigningKey
from kartu.core import crypto

pytestmark = pytest.mark.django_db


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_first_use_generates_one_active_key_with_a_warning(db, capsys):  # type: ignore[no-untyped-def]
    signer = keys.active_signer()
    assert "WARNING generated card signing key" in capsys.readouterr().err
    row = SigningKey.objects.get()
    assert row.status == "active" and row.kid == signer.kid.hex()
    assert hashlib.sha256(bytes(row.public_der)).digest()[:8] == signer.kid
    # The private key is stored encrypted, under its own associated data.
    blob = bytes(row.private_cipher)
    assert b"PRIVATE" not in blob
    der = base64.b64decode(crypto.decrypt(blob, PRIVATE_KEY_AAD))
    assert serialization.load_der_private_key(der, None) is not None
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(blob, b"kartu:registry.person.nik")
    assert keys.active_signer().kid == signer.kid  # no second key


def test_rotation_keeps_old_cards_valid_and_publishes_both(card, qr_text, capsys):  # type: ignore[no-untyped-def]
    old_kid = card.kid
    out = io.StringIO()
    call_command("keys", "rotate", "--card", stdout=out)
    assert "card signing key" in out.getvalue()
    new = SigningKey.objects.get(status="active")
    assert new.kid != old_kid
    old = SigningKey.objects.get(kid=old_kid)
    assert old.status == "retired" and old.retired_at is not None
    assert old.private_cipher is None  # retired keys only verify
    # The old card still verifies; new cards use the new key.
    assert qr.verify(qr_text).status == "valid"
    fresh = services.reissue(card.membership)
    assert fresh.kid == new.kid and qr.verify(services.qr_text(fresh)).status == "valid"
    doc = keys.jwks()
    by_kid = {k["kid"]: k for k in doc["keys"]}
    assert by_kid[keys.b64url(bytes.fromhex(new.kid))]["status"] == "active"
    assert by_kid[keys.b64url(bytes.fromhex(old_kid))]["status"] == "retired"
    assert doc["keys"][0]["status"] == "active"


def test_rotate_card_leaves_the_field_keys_alone(db):  # type: ignore[no-untyped-def]
    before = crypto.keyring()
    keys.active_signer()
    call_command("keys", "rotate", "--card", stdout=io.StringIO())
    after = crypto.reload_keyring()
    assert after.active_field == before.active_field
    assert after.active_index == before.active_index
    assert SigningKey.objects.count() == 2


def test_jwks_entries(card):  # type: ignore[no-untyped-def]
    (entry,) = keys.jwks()["keys"]
    assert entry["kty"] == "EC" and entry["crv"] == "P-256" and entry["alg"] == "ES256"
    assert entry["status"] == "active"
    assert _b64d(entry["kid"]) == bytes.fromhex(card.kid) and len(_b64d(entry["kid"])) == 8
    x, y = (int.from_bytes(_b64d(entry[c]), "big") for c in ("x", "y"))
    public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    spki = public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
    assert hashlib.sha256(spki).digest()[:8].hex() == card.kid
    # keyset_from_jwks (the database-free verifier) accepts our own document.
    keyset = keys.keyset_from_jwks(keys.jwks())
    assert set(keyset) == {bytes.fromhex(card.kid)}
    assert keys.keyset_from_jwks({"keys": [{"kty": "RSA"}, "junk"]}) == {}
    assert keys.keyset_from_jwks("nonsense") == {}


def test_retired_keys_drop_out_once_their_cards_expired(card):  # type: ignore[no-untyped-def]
    keys.rotate()
    later = timezone.now() + timedelta(days=732)
    statuses = [k["status"] for k in keys.jwks(later)["keys"]]
    assert statuses == ["active"]


def test_revoked_list_shape(card, membership):  # type: ignore[no-untyped-def]
    doc = keys.revoked_list()
    assert set(doc) == {"updated", "revoked"} and isinstance(doc["updated"], int)
    assert doc["revoked"] == []
    services.reissue(membership)
    doc = keys.revoked_list()
    assert doc["revoked"] == [card.cti]
    assert "=" not in card.cti and len(_b64d(card.cti)) == 16
    # Expired revoked cards are no longer listed.
    assert keys.revoked_list(card.expires_at + timedelta(seconds=1))["revoked"] == []


def test_env_key(db, settings):  # type: ignore[no-untyped-def]
    keys.active_signer()  # a generated key exists first
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    settings.KARTU_CARD_SIGNING_KEY = pem
    keys.reset_cache()
    signer = keys.active_signer()
    assert signer.kid == keys.kid_of(private.public_key())
    row = SigningKey.objects.get(status="active")
    assert row.kid == signer.kid.hex() and row.source == "env" and row.private_cipher is None
    assert SigningKey.objects.filter(status="retired").count() == 1
    with pytest.raises(CommandError, match="KARTU_CARD_SIGNING_KEY"):
        call_command("keys", "rotate", "--card", stdout=io.StringIO())
    settings.KARTU_CARD_SIGNING_KEY = "not a key"
    keys.reset_cache()
    with pytest.raises(keys.CardKeyError):
        keys.active_signer()
    # Env key removed again: say what to do instead of signing with nothing.
    settings.KARTU_CARD_SIGNING_KEY = ""
    keys.reset_cache()
    with pytest.raises(keys.CardKeyError, match="rotate --card"):
        keys.active_signer()


def test_env_key_is_published_before_it_signs(db, settings, tmp_path):  # type: ignore[no-untyped-def]
    private = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "card.pem"
    path.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    settings.KARTU_CARD_SIGNING_KEY = ""
    settings.KARTU_CARD_SIGNING_KEY_FILE = str(path)
    (entry,) = keys.jwks()["keys"]
    assert _b64d(entry["kid"]) == keys.kid_of(private.public_key())


def test_field_key_rotation_moves_the_private_key(db, settings, tmp_path):  # type: ignore[no-untyped-def]
    signer = keys.active_signer()
    row = SigningKey.objects.get()
    ring = crypto.keyring()
    new_ring = crypto.Keyring({**ring.field_keys, "f9": b"\x01" * 32}, "f9", ring.index_keys,
                              ring.active_index, "test")
    crypto._cache._ring = new_ring
    crypto._cache._checked = 1e18
    try:
        keys.reset_cache()
        assert keys.active_signer().kid == signer.kid
        row.refresh_from_db()
        assert crypto.key_id_of(bytes(row.private_cipher)) == "f9"
    finally:
        crypto.reload_keyring()


def test_keys_status_lists_the_card_signing_keys_and_their_live_cards(card):  # type: ignore[no-untyped-def]
    import json

    def status() -> dict:  # type: ignore[type-arg]
        out = io.StringIO()
        call_command("keys", "status", stdout=out)
        return json.loads(out.getvalue())  # type: ignore[no-any-return]

    before = status()
    assert before["active_field_key"] and before["people_by_index_key"]  # the registry part
    [only] = before["card_signing_keys"]
    assert (only["kid"], only["status"], only["published"], only["live_cards"]) == \
        (card.kid, "active", True, 1)
    keys.rotate()
    after = {k["kid"]: k for k in status()["card_signing_keys"]}
    assert after[card.kid]["status"] == "retired" and after[card.kid]["published"]
    assert after[card.kid]["live_cards"] == 1  # its card stays valid until it expires
    [new] = [k for k in after.values() if k["status"] == "active"]
    assert new["live_cards"] == 0 and new["source"] == "db"
    assert "private" not in json.dumps(after)  # no key material in the report
