"""The signed QR: ``KPJ1:`` + Base45 (RFC 9285) of a COSE_Sign1 (RFC 9052, CBOR tag 18).

Format (enough to write a verifier from)::

    QR text     = "KPJ1:" base45(COSE_Sign1)              alphanumeric QR, error correction Q
    COSE_Sign1  = #6.18([protected: bstr, unprotected: {}, payload: bstr, signature: bstr(64)])
    protected   = {1: -7, 4: kid}                          alg ES256; kid = bstr(8)
    kid         = SHA-256(SubjectPublicKeyInfo DER of the signing public key)[0:8]
    payload     = CWT claims, see :mod:`kartu.card.claims`
    signature   = ECDSA P-256 / SHA-256, raw r || s, over
                  ["Signature1", protected, h'', payload]  (RFC 9052 Sig_structure)

Public keys: the JWK set at ``/.well-known/kartu/keys.json``; revoked card ids (``cti`` as
base64url without padding) at ``/.well-known/kartu/revoked.json``.

Signing uses the ``cwt`` package's COSE layer with the claims built by us (``iat`` and ``exp``
set explicitly, ``kid`` in the *protected* header, nothing unprotected). Verification is strict
and never raises on bad input: size cap, prefix, Base45, CBOR with no trailing bytes, tag 18 with
four elements, a protected header that re-encodes to the same bytes (no duplicate labels) holding
exactly alg -7 and an 8-byte kid, an empty unprotected header, a known kid, the signature
(checked with ``cwt``), then the claims — exact key set and types, ``iat`` and ``exp`` integer
NumericDates within 1..253402300799 (1970 to 9999, so every date can be shown), an accepted
``iss``, and the times against ``now`` — and finally the revocation list.

Times: ``exp`` is strict (**no leeway**: a card is expired from its ``exp`` second on). ``iat``
may be up to :data:`IAT_LEEWAY_SECONDS` (300 s) ahead of ``now``, because a card issued a moment
ago is often checked on a phone whose clock is a little behind; a later ``iat`` is not genuine.
The browser verifier (``static/card/verify.js``) applies the same 300 s. (``cwt.decode``'s own
claim checks are not used: they read the wall clock and allow 60 s of leeway on both.)
"""

from __future__ import annotations

import functools
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import base45
import cbor2
import segno
from cwt import COSE
from cwt.cose_key_interface import COSEKeyInterface

from kartu.card import claims as C
from kartu.card.keys import Signer, b64url

PREFIX: Final = "KPJ1:"
#: Longest QR text accepted (a real card is about 300-400 characters).
MAX_TEXT: Final = 1024
ALG_ES256: Final = -7
HDR_ALG, HDR_KID = 1, 4
COSE_SIGN1_TAG: Final = 18

VALID, EXPIRED, REVOKED, NOT_GENUINE = "valid", "expired", "revoked", "not_genuine"
#: Largest NumericDate accepted for ``iat``/``exp``: 9999-12-31T23:59:59Z, the last second a
#: ``datetime`` (and so the page showing the expiry date) can hold.
MAX_NUMERIC_DATE: Final = 253402300799
#: How far ``iat`` may be ahead of the verifier's clock (clock skew between the issuing server
#: and the checking device). ``exp`` has no leeway. verify.js mirrors this value.
IAT_LEEWAY_SECONDS: Final = 300

_cose = COSE.new()
_DIGITS = {n: re.compile(f"[0-9]{{{n}}}") for n in (4, 11)}
_DOB = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PAYLOAD_KEYS = frozenset({C.CLAIM_ISS, C.CLAIM_IAT, C.CLAIM_EXP, C.CLAIM_CTI, C.CARD_CLAIM})
_CARD_KEYS = frozenset({"v", "kpj", "n", "dob", "nik4"})


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify`.

    ``status`` is one of ``valid``, ``expired``, ``revoked``, ``not_genuine``; ``code`` a short
    machine name for the reason (the web page translates it); ``reason`` an English sentence;
    ``card`` the decoded card (``kpj n dob nik4 iss iat exp cti``) or None when nothing could be
    decoded. For a ``not_genuine`` result ``card`` is *unverified* data: show it as such.
    """

    status: str
    code: str
    reason: str
    card: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        return self.status == VALID

    def as_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "status": self.status, "reason": self.reason,
                "card": self.card}

    def __repr__(self) -> str:
        return f"Verification({self.status}, {self.code})"


class _Reject(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# --- signing ------------------------------------------------------------------------------


def sign_claims(claims: dict[int, Any], signer: Signer) -> str:
    """Sign CWT claims and return the QR text."""
    token = _cose.encode_and_sign(
        cbor2.dumps(claims), signer.cose_key,
        protected={HDR_ALG: ALG_ES256, HDR_KID: signer.kid}, unprotected={},
    )
    assert isinstance(token, bytes)
    return PREFIX + base45.b45encode(token).decode("ascii")


def sign(data: C.CardData, signer: Signer, *, iss: str, iat: int, exp: int, cti: bytes) -> str:
    return sign_claims(C.build_claims(data, iss=iss, iat=iat, exp=exp, cti=cti), signer)


# --- the QR symbol ------------------------------------------------------------------------


_MASKS: dict[str, int] = {}


def remember_mask(text: str, mask: int | None) -> None:
    """Tell :func:`make_qr` which mask pattern an issued card's QR uses (stored on the card)."""
    if mask is not None and len(_MASKS) < 100_000:
        _MASKS[text] = mask


@functools.lru_cache(maxsize=256)
def make_qr(text: str) -> segno.QRCode:
    """Alphanumeric mode, error correction Q (not boosted, so the symbol stays small).

    Choosing the best of the eight mask patterns is most of the ~20 ms segno takes, so it is
    done once when a card is issued (the choice is stored on the card and passed back through
    :func:`remember_mask`), and the symbol is cached per text: a card's page, PNG and PDF show
    the same QR.
    """
    return segno.make_qr(text, error="q", boost_error=False, mode="alphanumeric",
                         mask=_MASKS.get(text))


def svg(text: str, *, responsive: bool = False, scale: int = 1) -> str:
    """The QR as SVG with its 4-module quiet zone painted white (the card may be coloured).

    ``responsive`` leaves out width/height (only a viewBox), for inline HTML sized by CSS.
    """
    buf = io.BytesIO()
    make_qr(text).save(
        buf, kind="svg", border=4, scale=scale, dark="#000", light="#fff", xmldecl=False,
        svgns=True, omitsize=responsive, nl=False, svgclass="kartu-qr", lineclass=None,
    )
    return buf.getvalue().decode()


# --- verification -------------------------------------------------------------------------


def _cbor(data: bytes, what: str) -> Any:
    fp = io.BytesIO(data)
    try:
        obj = cbor2.CBORDecoder(fp).decode()
    except Exception:  # cbor2 raises many types on hostile input
        raise _Reject("bad_cbor", f"{what} is not valid CBOR") from None
    if fp.tell() != len(data):
        raise _Reject("bad_cbor", f"{what} has trailing bytes after the CBOR item")
    if not _safe_ints(obj):
        # The browser's verifier (verify.js) reads integers as JavaScript numbers and refuses
        # any beyond 2**53 while decoding; refusing them here too keeps both answers the same.
        raise _Reject("bad_cbor", f"{what} holds an integer beyond 2**53")
    return obj


def _safe_ints(obj: Any, depth: int = 0) -> bool:
    if type(obj) is int:
        return -(2**53) <= obj <= 2**53 - 1
    if depth > 32:  # cbor2 bounds nesting itself; this only bounds the walk
        return True
    if isinstance(obj, dict):
        return all(_safe_ints(k, depth + 1) and _safe_ints(v, depth + 1) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return all(_safe_ints(v, depth + 1) for v in obj)
    if isinstance(obj, cbor2.CBORTag):
        return _safe_ints(obj.value, depth + 1)
    return True


def _is_int(value: object) -> bool:
    return type(value) is int  # bool is an int subclass; CBOR true is not a NumericDate


def _text(value: object, pattern: re.Pattern[str] | None = None, max_len: int = 200) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        return False
    return pattern.fullmatch(value) is not None if pattern else not _CONTROL.search(value)


def _card_from_payload(payload: bytes) -> dict[str, Any]:
    claims = _cbor(payload, "the payload")
    if not isinstance(claims, dict):
        raise _Reject("bad_claims", "the payload is not a CBOR map of claims")
    if set(claims) != _PAYLOAD_KEYS:
        raise _Reject("bad_claims", "the claims are not exactly iss, iat, exp, cti and -70001")
    iss, iat, exp, cti = (claims[k] for k in (C.CLAIM_ISS, C.CLAIM_IAT, C.CLAIM_EXP,
                                                C.CLAIM_CTI))
    if not _text(iss, max_len=200):
        raise _Reject("bad_claims", "iss is not a short text")
    if not (_is_int(iat) and _is_int(exp)):
        raise _Reject("bad_claims", "iat and exp are not integer NumericDates")
    if not (0 < iat <= MAX_NUMERIC_DATE and 0 < exp <= MAX_NUMERIC_DATE):
        raise _Reject("bad_claims",
                      f"iat or exp is outside the NumericDate range 1..{MAX_NUMERIC_DATE}")
    if not iat < exp:
        raise _Reject("bad_claims", "iat is not before exp")
    if not (isinstance(cti, bytes) and len(cti) == 16):
        raise _Reject("bad_claims", "cti is not 16 bytes")
    card = claims[C.CARD_CLAIM]
    if not isinstance(card, dict) or set(card) != _CARD_KEYS:
        raise _Reject("bad_claims", "claim -70001 is not a map of exactly v, kpj, n, dob, nik4")
    if not (_is_int(card["v"]) and card["v"] == C.CARD_VERSION):
        raise _Reject("bad_claims", "unsupported card version")
    if not _text(card["kpj"], _DIGITS[11]):
        raise _Reject("bad_claims", "kpj is not 11 digits")
    if not _text(card["n"]) or card["n"].strip() != card["n"]:
        raise _Reject("bad_claims", "n is not a name")
    if not _text(card["dob"], _DOB):
        raise _Reject("bad_claims", "dob is not YYYY-MM-DD")
    try:
        date.fromisoformat(card["dob"])
    except ValueError:
        raise _Reject("bad_claims", "dob is not a real date") from None
    if not _text(card["nik4"], _DIGITS[4]):
        raise _Reject("bad_claims", "nik4 is not 4 digits")
    return {"kpj": card["kpj"], "n": card["n"], "dob": card["dob"], "nik4": card["nik4"],
            "iss": iss, "iat": iat, "exp": exp, "cti": b64url(cti)}


def _parse(text: str | bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """Text to (kid, the COSE bytes, protected bytes, payload), checking the envelope."""
    if isinstance(text, bytes):
        if len(text) > MAX_TEXT * 4:
            raise _Reject("too_long", f"the QR text is longer than {MAX_TEXT} characters")
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise _Reject("bad_prefix", "the QR text is not ASCII") from None
    if not isinstance(text, str):
        raise _Reject("empty", "no QR text given")
    if len(text) > MAX_TEXT * 4:
        raise _Reject("too_long", f"the QR text is longer than {MAX_TEXT} characters")
    text = text.strip()
    if not text:
        raise _Reject("empty", "no QR text given")
    if len(text) > MAX_TEXT:
        raise _Reject("too_long", f"the QR text is longer than {MAX_TEXT} characters")
    if not text.startswith(PREFIX):
        raise _Reject("bad_prefix", f"the QR text does not start with {PREFIX}")
    try:
        raw = base45.b45decode(text[len(PREFIX):])
    except Exception:
        raise _Reject("bad_base45", "the text after the prefix is not valid Base45") from None
    obj = _cbor(raw, "the decoded QR")
    if not (isinstance(obj, cbor2.CBORTag) and obj.tag == COSE_SIGN1_TAG):
        raise _Reject("not_cose", "not a COSE_Sign1 (CBOR tag 18)")
    msg = obj.value
    if not (isinstance(msg, list) and len(msg) == 4):
        raise _Reject("not_cose", "a COSE_Sign1 is an array of four elements")
    protected, unprotected, payload, signature = msg
    if not (isinstance(protected, bytes) and isinstance(unprotected, dict)
            and isinstance(payload, bytes) and isinstance(signature, bytes)):
        raise _Reject("not_cose", "the COSE_Sign1 elements have the wrong types")
    header = _cbor(protected, "the protected header")
    if not isinstance(header, dict) or cbor2.dumps(header) != protected:
        raise _Reject("bad_header", "the protected header is not a plain CBOR map")
    if header.get(HDR_ALG) != ALG_ES256 or not _is_int(header.get(HDR_ALG)):
        alg = header.get(HDR_ALG)
        raise _Reject("bad_alg", f"algorithm {alg!r} is not ES256 (-7)")
    kid = header.get(HDR_KID)
    if set(header) != {HDR_ALG, HDR_KID} or not (isinstance(kid, bytes) and len(kid) == 8):
        raise _Reject("bad_header", "the protected header must hold exactly alg and an 8-byte kid")
    if unprotected:
        raise _Reject("bad_header", "the unprotected header must be empty")
    if len(signature) != 64:
        raise _Reject("bad_signature", "an ES256 signature is 64 bytes")
    return kid, raw, protected, payload


def _default_lookup(kid: bytes) -> COSEKeyInterface | None:
    from kartu.card.keys import verification_key

    return verification_key(kid)


def _default_revoked(cti: str) -> bool:
    from kartu.card.keys import is_revoked

    return is_revoked(cti)


def _numeric(now: int | float | datetime | None) -> int:
    if now is None:
        return int(time.time())
    if isinstance(now, datetime):
        return int(now.timestamp())
    return int(now)


def verify(
    text: str | bytes,
    *,
    now: int | float | datetime | None = None,
    key_lookup: Callable[[bytes], COSEKeyInterface | None] | None = None,
    is_revoked: Callable[[str], bool] | None = None,
    issuers: frozenset[str] | set[str] | None = None,
) -> Verification:
    """Check a QR text. Never raises for bad input; see the module docstring for the checks.

    By default keys come from the published key set, revocations from the database and the
    accepted issuers from :func:`kartu.card.conf.accepted_issuers`.
    """
    try:
        kid, raw, _protected, payload = _parse(text)
    except _Reject as rej:
        return Verification(NOT_GENUINE, rej.code, rej.reason)
    try:
        card: dict[str, Any] | None = _card_from_payload(payload)
        claims_error: _Reject | None = None
    except _Reject as rej:
        card, claims_error = None, rej

    key = (key_lookup or _default_lookup)(kid)
    if key is None:
        return Verification(NOT_GENUINE, "unknown_kid",
                            "signed by a key that is not in the published key set", card)
    try:
        _cose.decode(raw, key)
    except Exception:  # cwt's VerifyError/DecodeError, or anything a hostile input provokes
        return Verification(NOT_GENUINE, "bad_signature", "the signature does not verify", card)
    if claims_error is not None or card is None:
        assert claims_error is not None
        return Verification(NOT_GENUINE, claims_error.code, claims_error.reason)

    if issuers is None:
        from kartu.card.conf import accepted_issuers

        issuers = accepted_issuers()
    if card["iss"] not in issuers:
        return Verification(NOT_GENUINE, "wrong_issuer",
                            f"issued by {card['iss']!r}, which is not an accepted issuer", card)
    t = _numeric(now)
    if card["iat"] > t + IAT_LEEWAY_SECONDS:
        return Verification(NOT_GENUINE, "future_iat", "the card claims to be issued in the future",
                            card)
    if t >= card["exp"]:
        when = datetime.fromtimestamp(card["exp"], tz=UTC).isoformat(timespec="seconds")
        return Verification(EXPIRED, "expired", f"the card expired at {when}", card)
    if (is_revoked or _default_revoked)(card["cti"]):
        return Verification(REVOKED, "revoked", "the card has been revoked by the issuer", card)
    return Verification(VALID, "valid", "signature, issuer and validity period check out", card)
