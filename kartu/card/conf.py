"""Settings of the digital card, each from a ``KARTU_CARD_*`` environment variable.

A Django setting of the same name wins over the environment (tests use ``settings`` overrides).

``KARTU_CARD_VALID_DAYS``
    how long a card is valid after issue (default 730, two years).
``KARTU_CARD_RENEW_DAYS``
    a member's current card is re-issued when it has fewer days than this left (default 30).
``KARTU_CARD_ISSUERS``
    comma-separated issuer URLs accepted by the verifier besides ``PUBLIC_URL`` (e.g. the old
    URL after a domain move). The card's ``iss`` is always ``PUBLIC_URL``.
``KARTU_CARD_SIGNING_KEY`` / ``KARTU_CARD_SIGNING_KEY_FILE``
    the ES256 (P-256) private key as PEM text, or the path of a PEM file (for secret stores
    that mount files). Absent: a key is generated on first use and kept, encrypted, in the
    database (see :mod:`kartu.card.keys`).
``KARTU_CARD_AGENCY``
    the agency name printed on the card.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from kartu.core.config import env_int, env_str

_DEFAULTS: dict[str, Any] = {
    "KARTU_CARD_VALID_DAYS": lambda: env_int("KARTU_CARD_VALID_DAYS", 730),
    "KARTU_CARD_RENEW_DAYS": lambda: env_int("KARTU_CARD_RENEW_DAYS", 30),
    "KARTU_CARD_ISSUERS": lambda: env_str("KARTU_CARD_ISSUERS", ""),
    "KARTU_CARD_SIGNING_KEY": lambda: env_str("KARTU_CARD_SIGNING_KEY", ""),
    "KARTU_CARD_SIGNING_KEY_FILE": lambda: env_str("KARTU_CARD_SIGNING_KEY_FILE", ""),
    "KARTU_CARD_AGENCY": lambda: env_str("KARTU_CARD_AGENCY", "BPJS Ketenagakerjaan"),
}


def _get(name: str) -> Any:
    if hasattr(settings, name):
        return getattr(settings, name)
    return _DEFAULTS[name]()


def valid_days() -> int:
    return int(_get("KARTU_CARD_VALID_DAYS"))


def renew_days() -> int:
    return int(_get("KARTU_CARD_RENEW_DAYS"))


def issuer() -> str:
    """The ``iss`` of every card we sign: the agency's public URL."""
    return str(settings.PUBLIC_URL)


def accepted_issuers() -> frozenset[str]:
    extra = _get("KARTU_CARD_ISSUERS")
    if isinstance(extra, str):
        extra = [part.strip().rstrip("/") for part in extra.split(",")]
    return frozenset({issuer(), *(e for e in extra if e)})


def signing_key_pem() -> bytes | None:
    """The operator-given signing key (PEM), or None when kartu manages its own keys."""
    text = str(_get("KARTU_CARD_SIGNING_KEY") or "")
    if text.strip():
        return text.replace("\\n", "\n").encode()
    path = str(_get("KARTU_CARD_SIGNING_KEY_FILE") or "")
    if path:
        with open(path, "rb") as fh:
            return fh.read()
    return None


def agency() -> str:
    return str(_get("KARTU_CARD_AGENCY"))
