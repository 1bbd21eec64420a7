"""Issuing, renewing and revoking cards: the building blocks the portal pages call.

One live card per membership. :func:`current_card` is the only thing a page needs: it returns the
membership's live card, issuing one when there is none, and re-issuing (revoking the old one) when
the registry data the card shows has changed since it was issued.

Every card stores a :func:`~kartu.card.claims.fingerprint` of what it shows. A change to the
registry re-issues the cards it affects at once, so the old QR is listed in ``revoked.json``
and stops verifying: :func:`refresh_people` runs on ``kartu.registry.signals.persons_changed``
(sent by the importer, which writes with raw SQL so ``post_save`` never fires for it) and, for
edits through the ORM (the admin), on ``post_save`` of a person or membership (see
:mod:`kartu.card.receivers`). :func:`current_card` still compares the fingerprint each time a card
is shown or downloaded, as the safety net for a change that reached the database any other way.
A member can also ask for a new card (:func:`reissue_requested`, the "Ganti kartu" button).
(When a membership row is deleted, its cards are listed as revoked, see
:func:`kartu.card.keys.revoked_ctis`.)
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterable
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


def _signed_card(membership: Membership, data: claims.CardData, *, signer: keys.Signer,
                 iss: str, now: datetime) -> tuple[Card, str]:
    """A new card (not saved yet) and its QR text."""
    cti = os.urandom(16)
    expires = now + timedelta(days=conf.valid_days())
    text = qr.sign(data, signer, iss=iss, iat=int(now.timestamp()),
                   exp=int(expires.timestamp()), cti=cti)
    card = Card(
        membership=membership, cti=keys.b64url(cti), kid=signer.kid.hex(), issued_at=now,
        expires_at=expires, fingerprint=claims.fingerprint(data, iss),
        token_cipher=crypto.encrypt(text, TOKEN_AAD),
    )
    return card, text


def issue_card(membership: Membership, *, now: datetime | None = None) -> Card:
    """Sign and store a new card for ``membership`` (does not revoke older ones)."""
    card, text = _signed_card(membership, claims.card_data(membership),
                              signer=keys.active_signer(), iss=conf.issuer(), now=_now(now))
    card.qr_mask = qr.make_qr(text).mask
    card.save(force_insert=True)
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


def revoke_person_cards(person_id: int, reason: str, *, now: datetime | None = None) -> int:
    """Revoke every live card of every membership of a person, in one statement."""
    revoked = Card.objects.filter(membership__person_id=person_id, revoked_at__isnull=True)\
        .update(revoked_at=_now(now), revoked_reason=str(reason))
    log.info("%d cards of person %s revoked (%s)", revoked, person_id, reason)
    return revoked


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
        elif keep.qr_mask is None:
            _store_mask(keep)
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


#: How many new cards a member may ask for per membership in :data:`REQUEST_WINDOW`: each one
#: puts the old card on the public revocation list until it would have expired.
REQUESTS_PER_WINDOW = 3
REQUEST_WINDOW = timedelta(days=1)


def reissue_requested(membership: Membership, *, now: datetime | None = None) -> Card | None:
    """The member asked for a new card (lost printout, a screenshot that went around): the
    current card is revoked and a new one issued, as :func:`reissue`. ``None`` when they already
    asked :data:`REQUESTS_PER_WINDOW` times in the last :data:`REQUEST_WINDOW` for this
    membership (nothing changed then)."""
    now = _now(now)
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        asked = Card.objects.filter(membership=membership, revoked_reason=Card.Reason.REQUESTED,
                                    revoked_at__gt=now - REQUEST_WINDOW).count()
        if asked >= REQUESTS_PER_WINDOW:
            log.info("new card refused for membership #%s: %d requests in the window",
                     membership.pk, asked)
            return None
        return reissue(membership, Card.Reason.REQUESTED, now=now)


#: People per transaction in :func:`refresh_people` (each batch is a handful of queries).
REFRESH_BATCH = 500


def refresh_people(person_ids: Iterable[int], *, now: datetime | None = None) -> int:
    """After a registry change: for these people, revoke every live card whose data no longer
    matches the registry and issue the new card. Returns how many cards were re-issued.

    Only memberships that have a live (unrevoked, unexpired) card are looked at: a member who
    never opened the card page gets theirs when they first do. Queries go by batches of
    :data:`REFRESH_BATCH` people, each batch in one transaction that locks the memberships it
    re-issues (as :func:`current_card` does), so a page opened meanwhile does not issue a second
    card. The new cards are stored without their QR mask pattern (choosing it is most of the
    cost of a card); :func:`current_card` stores it the first time the card is shown.
    """
    ids = sorted({int(pk) for pk in person_ids})
    now = _now(now)
    return sum(_refresh_batch(ids[start:start + REFRESH_BATCH], now)
               for start in range(0, len(ids), REFRESH_BATCH))


def _refresh_batch(person_ids: list[int], now: datetime) -> int:
    with transaction.atomic():
        live = Card.objects.filter(revoked_at__isnull=True, expires_at__gt=now)
        memberships = list(
            Membership.objects.select_for_update(of=("self",)).select_related("person")
            .filter(person_id__in=person_ids,
                    pk__in=live.filter(membership__person_id__in=person_ids)
                    .values("membership_id"))
            .order_by("pk")
        )
        if not memberships:
            return 0
        cards: dict[int, list[Card]] = defaultdict(list)
        for card in live.filter(membership__in=memberships):
            assert card.membership_id is not None
            cards[card.membership_id].append(card)
        iss = conf.issuer()
        signer: keys.Signer | None = None
        stale: list[Card] = []
        new: list[Card] = []
        for membership in memberships:
            data = claims.card_data(membership)
            wanted = claims.fingerprint(data, iss)
            outdated = [c for c in cards[membership.pk] if c.fingerprint != wanted]
            if not outdated:
                continue
            stale += outdated
            if len(outdated) == len(cards[membership.pk]):  # no live card shows the new data
                signer = signer or keys.active_signer()
                new.append(_signed_card(membership, data, signer=signer, iss=iss, now=now)[0])
        if not stale:
            return 0
        Card.objects.filter(pk__in=[c.pk for c in stale], revoked_at__isnull=True).update(
            revoked_at=now, revoked_reason=Card.Reason.DATA_CHANGED)
        Card.objects.bulk_create(new)
    for card in stale:
        log.info("card %s revoked (%s)", card.cti, Card.Reason.DATA_CHANGED)
    for card in new:
        log.info("card %s issued for membership #%s with key %s", card.cti, card.membership_id,
                 card.kid)
    return len(new)


def _store_mask(card: Card) -> None:
    """Choose and store the QR mask pattern of a card issued without one."""
    try:
        card.qr_mask = qr.make_qr(qr_text(card)).mask
    except crypto.CryptoError:
        return
    Card.objects.filter(pk=card.pk, qr_mask__isnull=True).update(qr_mask=card.qr_mask)


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
