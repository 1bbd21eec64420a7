"""What a card says, built from a :class:`~kartu.registry.models.Membership`.

The signed part (the QR) is deliberately small and holds no full NIK: the KPJ, the full name,
the date of birth and the last four NIK digits, enough for a verifier to compare with a photo ID.
The printed card shows a little more (status, programmes, employer); every shown field goes into
the :func:`fingerprint`, so a change to any of them re-issues the card.

CWT claims (RFC 8392) of the payload::

    1 iss     text     the agency's public URL (settings.PUBLIC_URL)
    6 iat     int      NumericDate of issue
    4 exp     int      NumericDate of expiry
    7 cti     bstr 16  random card identifier
    -70001    map      {"v": 1, "kpj": "11 digits", "n": "full name", "dob": "YYYY-MM-DD",
                        "nik4": "last 4 NIK digits"}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kartu.registry.models import Membership

#: Private-use CWT claim key (< -65536) holding the card map.
CARD_CLAIM = -70001
CLAIM_ISS, CLAIM_EXP, CLAIM_IAT, CLAIM_CTI = 1, 4, 6, 7
CARD_VERSION = 1
#: Bumped when the printed card changes in a way that should re-issue every card.
LAYOUT_VERSION = 1


@dataclass(frozen=True, slots=True)
class CardData:
    """The person- and membership-dependent part of a card (no full NIK)."""

    kpj: str
    name: str
    dob: str  # YYYY-MM-DD
    nik4: str
    status: str
    programmes: tuple[str, ...]
    employer: str

    def __repr__(self) -> str:  # keep personal data out of logs and tracebacks
        return "CardData(…)"

    def payload(self) -> dict[str, Any]:
        """The private claim -70001."""
        return {"v": CARD_VERSION, "kpj": self.kpj, "n": self.name, "dob": self.dob,
                "nik4": self.nik4}


def card_data(membership: Membership) -> CardData:
    person = membership.person
    return CardData(
        kpj=membership.kpj,
        name=person.full_name,
        dob=person.birth_date.isoformat(),
        nik4=person.nik[-4:],
        status=membership.status,
        programmes=tuple(membership.programme_list),
        employer=membership.employer,
    )


def build_claims(data: CardData, *, iss: str, iat: int, exp: int, cti: bytes) -> dict[int, Any]:
    return {CLAIM_ISS: iss, CLAIM_IAT: iat, CLAIM_EXP: exp, CLAIM_CTI: cti,
            CARD_CLAIM: data.payload()}


def fingerprint(data: CardData, iss: str) -> str:
    """SHA-256 (hex) over everything the card shows and signs.

    Unkeyed on purpose: every input is printed on the card or in its QR already (the NIK only as
    its last four digits), so the digest reveals nothing a card does not.
    """
    doc = {"layout": LAYOUT_VERSION, "iss": iss, **data.payload(), "status": data.status,
           "programmes": list(data.programmes), "employer": data.employer}
    raw = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()
