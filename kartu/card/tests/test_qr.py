"""The signed QR: round trip, independent decoding (pycose), and every kind of bad input."""

from __future__ import annotations

import hashlib

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pycose.headers import KID, Algorithm
from pycose.keys import EC2Key
from pycose.messages import Sign1Message

from kartu.card import claims, keys, qr
from kartu.card.models import SigningKey
from kartu.card.tests.conftest import ISS, _encode, _payload, _raw_sign, _signed_with

pytestmark = pytest.mark.django_db

def _cose_parts(text: str) -> list:  # type: ignore[type-arg]
    tag = cbor2.loads(base45.b45decode(text[len(qr.PREFIX):]))
    assert tag.tag == 18
    return list(tag.value)


def _b45(raw: bytes) -> str:
    return "KPJ1:" + base45.b45encode(raw).decode()


def _card(**fields: object) -> dict:  # type: ignore[type-arg]
    base = {"v": 1, "kpj": "10987654321", "n": "X", "dob": "1990-08-17", "nik4": "0003"}
    return {-70001: {**base, **fields}}


def test_round_trip(card, qr_text):  # type: ignore[no-untyped-def]
    assert qr_text.startswith("KPJ1:")
    assert set(qr_text[5:]) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    result = qr.verify(qr_text)
    assert result.valid and result.status == "valid", result.reason
    assert result.card == {
        "kpj": "10987654321", "n": "SITI NURHALIZA", "dob": "1990-08-17", "nik4": "0003",
        "iss": ISS, "iat": int(card.issued_at.timestamp()),
        "exp": int(card.expires_at.timestamp()), "cti": card.cti,
    }
    assert result.as_dict()["valid"] is True
    # The QR text holds no full NIK.
    assert b"3174055708900003" not in base45.b45decode(qr_text[5:])


def test_layout_follows_the_spec(card, qr_text):  # type: ignore[no-untyped-def]
    protected, unprotected, payload, signature = _cose_parts(qr_text)
    row = SigningKey.objects.get(kid=card.kid)
    kid = hashlib.sha256(bytes(row.public_der)).digest()[:8]
    assert cbor2.loads(protected) == {1: -7, 4: kid}
    assert unprotected == {}
    assert len(signature) == 64
    body = cbor2.loads(payload)
    assert set(body) == {1, 4, 6, 7, -70001}
    assert body[1] == ISS and body[4] - body[6] == 730 * 86400
    assert len(body[7]) == 16 and keys.b64url(body[7]) == card.cti
    assert body[-70001] == {"v": 1, "kpj": "10987654321", "n": "SITI NURHALIZA",
                            "dob": "1990-08-17", "nik4": "0003"}


def test_pycose_verifies_our_signature_independently(card, qr_text):  # type: ignore[no-untyped-def]
    raw = base45.b45decode(qr_text[5:])
    msg = Sign1Message.decode(raw)
    assert msg.phdr[Algorithm].identifier == -7
    row = SigningKey.objects.get(kid=card.kid)
    assert msg.phdr[KID] == row.kid_bytes
    assert not msg.uhdr
    public = serialization.load_der_public_key(bytes(row.public_der))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    nums = public.public_numbers()
    msg.key = EC2Key(crv="P_256", x=nums.x.to_bytes(32, "big"), y=nums.y.to_bytes(32, "big"))
    assert msg.verify_signature()
    assert cbor2.loads(msg.payload)[-70001]["kpj"] == "10987654321"


def test_a_card_signed_by_pycose_verifies_with_us(card):  # type: ignore[no-untyped-def]
    """The other direction: a verifier written from the spec text accepts pycose's output."""
    signer = keys.active_signer()
    nums = signer.private_key.private_numbers()
    pub = nums.public_numbers
    key = EC2Key(crv="P_256", d=nums.private_value.to_bytes(32, "big"),
                 x=pub.x.to_bytes(32, "big"), y=pub.y.to_bytes(32, "big"))
    msg = Sign1Message(phdr={Algorithm: -7, KID: signer.kid}, payload=cbor2.dumps(_payload()))
    msg.key = key
    text = qr.PREFIX + base45.b45encode(msg.encode()).decode()
    result = qr.verify(text)
    assert result.status == "valid", result.reason


def test_expired_with_no_leeway(card, qr_text):  # type: ignore[no-untyped-def]
    exp = int(card.expires_at.timestamp())
    assert qr.verify(qr_text, now=exp - 1).status == "valid"
    result = qr.verify(qr_text, now=exp)
    assert result.status == "expired" and not result.valid
    assert "expired" in result.reason and result.card is not None
    assert qr.verify(qr_text, now=exp + 1).status == "expired"


def test_issued_in_the_future_is_not_genuine(card, qr_text):  # type: ignore[no-untyped-def]
    iat = int(card.issued_at.timestamp())
    result = qr.verify(qr_text, now=iat - qr.IAT_LEEWAY_SECONDS - 1)
    assert result.status == "not_genuine" and result.code == "future_iat"


def test_a_device_clock_a_little_behind_still_accepts_a_new_card(card, qr_text):  # type: ignore[no-untyped-def]
    """Clock skew: a card issued a moment ago, checked on a phone whose clock is a few seconds
    (up to 300) behind, is valid; ``exp`` keeps no leeway (see test_expired_with_no_leeway)."""
    assert qr.IAT_LEEWAY_SECONDS == 300
    iat = int(card.issued_at.timestamp())
    for behind in (1, 5, 299, 300):
        assert qr.verify(qr_text, now=iat - behind).status == "valid", behind
    assert qr.verify(qr_text, now=iat - 301).code == "future_iat"


@pytest.mark.parametrize(
    "times",
    [
        {4: 2**39},  # forged far-future expiry: datetime cannot hold the year
        {4: qr.MAX_NUMERIC_DATE + 1},
        {6: -5},
        {6: 0},
        {6: qr.MAX_NUMERIC_DATE + 1, 4: qr.MAX_NUMERIC_DATE + 2},
    ],
)
def test_numeric_dates_out_of_range_are_not_genuine(card, other_signer, times):  # type: ignore[no-untyped-def]
    for signer in (keys.active_signer(), other_signer):
        result = qr.verify(_signed_with(signer, _payload(times)))
        assert result.status == "not_genuine" and result.card is None, result
        assert result.code == ("bad_claims" if signer is not other_signer else "unknown_kid")
    result = qr.verify(_signed_with(keys.active_signer(), _payload(times)))
    assert "NumericDate range" in result.reason


def test_the_last_numeric_date_is_accepted(card):  # type: ignore[no-untyped-def]
    result = qr.verify(_signed_with(keys.active_signer(), _payload({4: qr.MAX_NUMERIC_DATE})))
    assert result.status == "valid", result


def test_revoked(card, qr_text):  # type: ignore[no-untyped-def]
    from kartu.card import services

    services.revoke(card, "requested")
    result = qr.verify(qr_text)
    assert result.status == "revoked" and result.reason
    assert result.card is not None and result.card["cti"] == card.cti


def test_resigned_with_another_key_is_unknown_kid(card, qr_text, other_signer):  # type: ignore[no-untyped-def]
    _, _, payload, _ = _cose_parts(qr_text)
    forged = _signed_with(other_signer, cbor2.loads(payload))
    result = qr.verify(forged)
    assert result.status == "not_genuine" and result.code == "unknown_kid"
    assert result.reason


def test_resigned_with_another_key_under_our_kid(card, qr_text, other_signer):  # type: ignore[no-untyped-def]
    _, _, payload, _ = _cose_parts(qr_text)
    real_kid = bytes.fromhex(card.kid)
    forged = _signed_with(other_signer, cbor2.loads(payload), {1: -7, 4: real_kid})
    result = qr.verify(forged)
    assert result.status == "not_genuine" and result.code == "bad_signature"


def test_tampered_payload(card, qr_text):  # type: ignore[no-untyped-def]
    protected, unprotected, payload, signature = _cose_parts(qr_text)
    body = cbor2.loads(payload)
    body[-70001]["n"] = "ADOLF HITLER"
    result = qr.verify(_encode([protected, unprotected, cbor2.dumps(body), signature]))
    assert result.status == "not_genuine" and result.code == "bad_signature"
    # One flipped bit anywhere in the signature, too.
    bad_sig = bytes([signature[0] ^ 1]) + signature[1:]
    result = qr.verify(_encode([protected, unprotected, payload, bad_sig]))
    assert result.status == "not_genuine" and result.code == "bad_signature"


def test_wrong_algorithms(card, qr_text):  # type: ignore[no-untyped-def]
    _, _, payload, _ = _cose_parts(qr_text)
    kid = bytes.fromhex(card.kid)
    # ES384 with a P-384 key.
    p384 = ec.generate_private_key(ec.SECP384R1())
    prot = cbor2.dumps({1: -35, 4: kid})
    es384 = _encode([prot, {}, payload, _raw_sign(p384, prot, payload, hashes.SHA384())])
    # EdDSA (Ed25519).
    ed = ed25519.Ed25519PrivateKey.generate()
    prot_ed = cbor2.dumps({1: -8, 4: kid})
    sig_ed = ed.sign(cbor2.dumps(["Signature1", prot_ed, b"", payload]))
    eddsa = _encode([prot_ed, {}, payload, sig_ed])
    # "none"-style: no algorithm at all, and alg given as text.
    no_alg = _encode([cbor2.dumps({4: kid}), {}, payload, b"\0" * 64])
    text_alg = _encode([cbor2.dumps({1: "ES256", 4: kid}), {}, payload, b"\0" * 64])
    for forged in (es384, eddsa, no_alg, text_alg):
        result = qr.verify(forged)
        assert result.status == "not_genuine" and result.code == "bad_alg", result


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda t: t[: len(t) // 2], None),  # truncated
        (lambda t: t[:-1], None),
        (lambda t: t[:-3], None),
        (lambda t: "KPJ2:" + t[5:], "bad_prefix"),
        (lambda t: "HC1:" + t[5:], "bad_prefix"),
        (lambda t: t[5:], "bad_prefix"),
        (lambda t: t.lower(), "bad_prefix"),
        (lambda t: "KPJ1:" + "A" * 2000, "too_long"),
        (lambda t: t + "0" * 1200, "too_long"),
        (lambda t: "x" * 10_000_000, "too_long"),
        (lambda t: "KPJ1:abc", "bad_base45"),
        (lambda t: "KPJ1:ZZZ", "bad_base45"),  # 3 chars above 65535
        (lambda t: "KPJ1:A", "bad_base45"),
        (lambda t: _b45(b"hello world"), "bad_cbor"),
        (lambda t: _b45(b"\xff\xff\xff"), "bad_cbor"),
        (lambda t: _b45(cbor2.dumps([1, 2, 3, 4])), "not_cose"),
        (lambda t: _b45(cbor2.dumps(cbor2.CBORTag(17, [b"", {}, b"", b""]))), "not_cose"),
        (lambda t: _b45(cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b""]))), "not_cose"),
        (lambda t: _b45(cbor2.dumps(cbor2.CBORTag(18, [{}, {}, b"", b""]))), "not_cose"),
        (lambda t: _b45(b"\xd2\x84" + b"\x5b" + b"\xff" * 8), "bad_cbor"),
        (lambda t: _b45(b"\x9f" * 5000), "too_long"),
        (lambda t: _b45(b"\x81" * 600 + b"\x00"), None),
        (lambda t: "", "empty"),
        (lambda t: "   \n", "empty"),
        (lambda t: "KPJ1:", "bad_cbor"),
        (lambda t: "KPJ1:\u00e9\u00e9\u00e9", "bad_base45"),
    ],
)
def test_bad_input_is_not_genuine_and_never_raises(qr_text, mutate, code):  # type: ignore[no-untyped-def]
    result = qr.verify(mutate(qr_text))
    assert result.status == "not_genuine" and not result.valid
    assert result.reason
    if code:
        assert result.code == code, result
    d = result.as_dict()
    assert set(d) == {"valid", "status", "reason", "card"}


def test_trailing_bytes_and_extra_headers(card, qr_text):  # type: ignore[no-untyped-def]
    protected, _, payload, signature = _cose_parts(qr_text)
    raw = base45.b45decode(qr_text[5:])
    assert qr.verify("KPJ1:" + base45.b45encode(raw + b"\x00").decode()).code == "bad_cbor"
    kid = bytes.fromhex(card.kid)
    assert qr.verify(_encode([protected, {4: kid}, payload, signature])).code == "bad_header"
    assert qr.verify(_encode([protected, {1: -7}, payload, signature])).code == "bad_header"
    # Duplicate label in the protected header (a second alg): re-encoding differs.
    dup = b"\xa3\x01\x26\x04\x48" + kid + b"\x01\x26"
    assert qr.verify(_encode([dup, {}, payload, signature])).code == "bad_header"
    # An extra protected label (content type).
    extra = cbor2.dumps({1: -7, 4: kid, 3: 61})
    assert qr.verify(_encode([extra, {}, payload, signature])).code == "bad_header"
    assert qr.verify(_encode([cbor2.dumps({1: -7, 4: kid[:4]}), {}, payload, signature])).code \
        == "bad_header"
    assert qr.verify(_encode([protected, {}, payload, signature[:63]])).code == "bad_signature"
    # Untagged COSE_Sign1.
    untagged = "KPJ1:" + base45.b45encode(cbor2.dumps([protected, {}, payload, signature])).decode()
    assert qr.verify(untagged).code == "not_cose"


def test_bytes_input_and_whitespace(qr_text):  # type: ignore[no-untyped-def]
    assert qr.verify(("  " + qr_text + "\r\n").encode()).status == "valid"
    assert qr.verify(b"\xff\xfe").status == "not_genuine"
    assert qr.verify(None).status == "not_genuine"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({1: "https://evil.example"}, "wrong_issuer"),
        ({6: True}, "bad_claims"),
        ({4: 1.5e12}, "bad_claims"),
        ({7: b"short"}, "bad_claims"),
        (_card(v=2), "bad_claims"),
        (_card(kpj="1098765432"), "bad_claims"),
        (_card(dob="1990-02-30"), "bad_claims"),
        (_card(nik4="03"), "bad_claims"),
        (_card(nik="3174055708900003"), "bad_claims"),
        (_card(kpj="١٠٩٨٧٦٥٤٣٢١"), "bad_claims"),
        ({-70001: ["not", "a", "map"]}, "bad_claims"),
        (_card(n=" padded "), "bad_claims"),
        (_card(n="line\nbreak"), "bad_claims"),
        ({2: "subject"}, "bad_claims"),
    ],
)
def test_signed_but_malformed_claims(card, override, fragment):  # type: ignore[no-untyped-def]
    signer = keys.active_signer()
    text = _signed_with(signer, _payload(override))
    result = qr.verify(text)
    assert result.status == "not_genuine" and result.code == fragment, result


def test_a_well_formed_card_we_signed_ourselves_is_valid(card):  # type: ignore[no-untyped-def]
    """The helpers above produce valid cards when nothing is wrong (so the tests test the
    mutation, not the helper)."""
    assert qr.verify(_signed_with(keys.active_signer(), _payload())).status == "valid"


def test_accepted_issuers_are_configurable(card, settings):  # type: ignore[no-untyped-def]
    text = _signed_with(keys.active_signer(), _payload({1: "https://old.example.id"}))
    assert qr.verify(text).code == "wrong_issuer"
    settings.KARTU_CARD_ISSUERS = "https://old.example.id/"
    assert qr.verify(text).status == "valid"


def test_qr_symbol_is_alphanumeric_q_with_quiet_zone(qr_text):  # type: ignore[no-untyped-def]
    code = qr.make_qr(qr_text)
    assert code.mode == "alphanumeric" and code.error == "Q"
    svg = qr.svg(qr_text)
    width = code.symbol_size(border=4)[0]
    assert f'width="{width}"' in svg and 'fill="#fff"' in svg


def test_claims_fingerprint_changes_with_what_the_card_shows(membership):  # type: ignore[no-untyped-def]
    data = claims.card_data(membership)
    fp = claims.fingerprint(data, ISS)
    assert fp == claims.fingerprint(claims.card_data(membership), ISS)
    membership.status = "nonaktif"
    assert claims.fingerprint(claims.card_data(membership), ISS) != fp
    assert claims.fingerprint(data, "https://other") != fp
    assert "SITI" not in repr(data)
