from __future__ import annotations

import os
import time

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from kartu.card import keys, qr


@pytest.fixture(autouse=True)
def _fresh_key_cache():  # type: ignore[no-untyped-def]
    """Keys cached by one test must not leak into the next (its database was rolled back)."""
    keys.reset_cache()
    yield
    keys.reset_cache()


@pytest.fixture
def membership(loaded_registry):  # type: ignore[no-untyped-def]
    """SITI NURHALIZA's active membership (she also has 12345678901, inactive)."""
    from kartu.registry.models import Membership

    return Membership.objects.select_related("person").get(kpj="10987654321")


@pytest.fixture
def card(membership):  # type: ignore[no-untyped-def]
    from kartu.card import services

    return services.current_card(membership)


@pytest.fixture
def qr_text(card) -> str:  # type: ignore[no-untyped-def]
    from kartu.card import services

    return services.qr_text(card)


@pytest.fixture
def other_signer() -> keys.Signer:
    """A P-256 key that the agency never published."""
    return keys._signer(ec.generate_private_key(ec.SECP256R1()))


# --- hand-made QR texts (the tests of qr.verify, the CLI and the pages share them) ---------

ISS = "http://127.0.0.1:8000"


def _encode(parts: list, prefix: str = qr.PREFIX) -> str:  # type: ignore[type-arg]
    return prefix + base45.b45encode(cbor2.dumps(cbor2.CBORTag(18, parts))).decode()


def _raw_sign(private_key: ec.EllipticCurvePrivateKey, protected: bytes, payload: bytes,
              hash_alg: hashes.HashAlgorithm | None = None) -> bytes:
    """ECDSA over the COSE Sig_structure, as raw r || s."""
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    der = private_key.sign(tbs, ec.ECDSA(hash_alg or hashes.SHA256()))
    r, s = decode_dss_signature(der)
    size = (private_key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _payload(override: dict | None = None) -> dict:  # type: ignore[type-arg]
    now = int(time.time())
    base = {1: ISS, 6: now - 10, 4: now + 3600, 7: os.urandom(16),
            -70001: {"v": 1, "kpj": "10987654321", "n": "SITI NURHALIZA", "dob": "1990-08-17",
                     "nik4": "0003"}}
    base.update(override or {})
    return base


def _signed_with(signer: keys.Signer, payload: dict, protected: dict | None = None) -> str:  # type: ignore[type-arg]
    prot = cbor2.dumps(protected if protected is not None else {1: -7, 4: signer.kid})
    body = cbor2.dumps(payload)
    return _encode([prot, {}, body, _raw_sign(signer.private_key, prot, body)])
