"""Issuing, renewing and revoking cards: the building blocks the portal pages call.

One live card per membership. :func:`current_card` is the only thing a page needs: it returns the
membership's live card, issuing one when there is none, and re-issuing (revoking the old one) when
the registry data the card shows has changed since it was issued.

Why lazily here and not with model signals: the registry importer writes people and memberships
with raw SQL (``kartu.registry.importer``), so ``post_save`` never fires for most changes. Instead
every card stores a :func:`~kartu.card.claims.fingerprint` of what it shows, and
:func:`current_card` compares it with the registry each time a card is shown or downloaded. A
card that nobody looks at is not re-issued, but it is also not shown to anyone; the QR a verifier
scans carries only the KPJ, name, date of birth and NIK's last four digits, all fingerprinted.
(When a membership row is deleted, its cards are listed as revoked, see
:func:`kartu.card.keys.revoked_ctis`.)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from kartu.card import claims, conf, keys, qr
from kartu.card.models import TOKEN_AAD, Card
from kartu.core import crypto
from kartu.registry.models import Membership, MembershipStatus, Person
from kartu.registry.nik import mask

log = logging.getLogger(__name__)


def _now(now: datetime | None) -> datetime:
    return (now or timezone.now()).replace(microsecond=0)


def issue_card(membership: Membership, *, now: datetime | None = None) -> Card:
    """Sign and store a new card for ``membership`` (does not revoke older ones)."""
    now = _now(now)
    data = claims.card_data(membership)
    iss = conf.issuer()
    signer = keys.active_signer()
    cti = os.urandom(16)
    expires = now + timedelta(days=conf.valid_days())
    text = qr.sign(data, signer, iss=iss, iat=int(now.timestamp()),
                   exp=int(expires.timestamp()), cti=cti)
    card = Card.objects.create(
        membership=membership, cti=keys.b64url(cti), kid=signer.kid.hex(), issued_at=now,
        expires_at=expires, fingerprint=claims.fingerprint(data, iss),
        token_cipher=crypto.encrypt(text, TOKEN_AAD), qr_mask=qr.make_qr(text).mask,
    )
    log.info("card %s issued for membership #%s with key %s", card.cti, membership.pk,
             card.kid)
    return card


def revoke(card: Card, reason: str = Card.Reason.REQUESTED, *,
           now: datetime | None = None) -> None:
    """Revoke ``card``; it is listed in ``revoked.json`` until it would have expired."""
    if card.revoked_at is not None:
        return
    card.revoked_at = _now(now)
    card.revoked_reason = str(reason)
    Card.objects.filter(pk=card.pk, revoked_at__isnull=True).update(
        revoked_at=card.revoked_at, revoked_reason=card.revoked_reason
    )
    log.info("card %s revoked (%s)", card.cti, reason)


def _live(membership: Membership) -> list[Card]:
    return list(Card.objects.filter(membership=membership, revoked_at__isnull=True)
                .order_by("-issued_at", "-id"))


def _readable(card: Card) -> bool:
    try:
        crypto.decrypt(card.token_cipher, TOKEN_AAD)
    except crypto.CryptoError:
        return False
    return True


def current_card(membership: Membership, *, now: datetime | None = None) -> Card:
    """The membership's live card, issued or re-issued as needed.

    Re-issues (and revokes the old card) when the data it shows changed, when it expires within
    ``KARTU_CARD_RENEW_DAYS``, or when its stored QR can no longer be decrypted (field key gone).
    """
    now = _now(now)
    iss = conf.issuer()
    with transaction.atomic():
        # Lock the membership so that two requests do not both issue a card.
        membership = (Membership.objects.select_for_update().select_related("person")
                      .get(pk=membership.pk))
        wanted = claims.fingerprint(claims.card_data(membership), iss)
        live = _live(membership)
        keep: Card | None = None
        for card in live:
            if keep is None and card.fingerprint == wanted \
                    and card.expires_at - now > timedelta(days=conf.renew_days()) \
                    and _readable(card):
                keep = card
        if keep is None:
            keep = issue_card(membership, now=now)
        for card in live:
            if card.pk != keep.pk:
                reason = (Card.Reason.DATA_CHANGED if card.fingerprint != wanted
                          else Card.Reason.RENEWED)
                revoke(card, reason, now=now)
        keep.membership = membership
        return keep


def reissue(membership: Membership, reason: str = Card.Reason.REQUESTED, *,
            now: datetime | None = None) -> Card:
    """A new card now (the member asked, e.g. after losing a printout); the old one is revoked."""
    now = _now(now)
    with transaction.atomic():
        membership = (Membership.objects.select_for_update().select_related("person")
                      .get(pk=membership.pk))
        old = _live(membership)
        card = issue_card(membership, now=now)
        for previous in old:
            revoke(previous, reason, now=now)
        card.membership = membership
        return card


def cards_for_person(person: Person, *, now: datetime | None = None) -> list[Card]:
    """The current card of each of the person's memberships, in KPJ order."""
    return [current_card(m, now=now) for m in person.memberships.order_by("kpj")]


def qr_text(card: Card) -> str:
    """The signed QR text of ``card`` (``KPJ1:…``)."""
    text = crypto.decrypt(card.token_cipher, TOKEN_AAD)
    qr.remember_mask(text, card.qr_mask)
    return text


@dataclass(frozen=True)
class CardView:
    """Everything a card shows, for the HTML include and the PNG/PDF template.

    ``nik_full`` is empty unless the caller asked for it (``reveal_nik=True``): only a page that
    has just re-authenticated the member should.
    """

    card: Card
    name: str
    nik_masked: str
    nik_full: str
    kpj: str
    birth_date: date
    status: str
    status_label: str
    active: bool
    programmes: tuple[str, ...]
    employer: str
    issued_on: date
    valid_until: date
    qr_text: str
    agency: str

    def __repr__(self) -> str:
        return f"CardView(card={self.card.pk})"

    @property
    def qr_svg(self) -> SafeString:
        """Inline SVG of the QR (sized by CSS); segno's own output, safe to embed."""
        return mark_safe(qr.svg(self.qr_text, responsive=True))  # noqa: S308


def card_view(card: Card, *, reveal_nik: bool = False) -> CardView:
    membership = card.membership
    if membership is None:
        raise ValueError("the card's membership no longer exists")
    person = membership.person
    nik = person.nik
    local = timezone.localtime
    return CardView(
        card=card,
        name=person.full_name,
        nik_masked=mask(nik),
        nik_full=nik if reveal_nik else "",
        kpj=membership.kpj,
        birth_date=person.birth_date,
        status=membership.status,
        status_label=str(MembershipStatus(membership.status).label)
        if membership.status in MembershipStatus.values else membership.status,
        active=membership.status == MembershipStatus.ACTIVE,
        programmes=tuple(membership.programme_list),
        employer=membership.employer,
        issued_on=local(card.issued_at).date(),
        valid_until=local(card.expires_at).date(),
        qr_text=qr_text(card),
        agency=conf.agency(),
    )
