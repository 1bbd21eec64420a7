"""Linking an account to its person in the registry.

1. The member claims a person with NIK, full name, place and date of birth: the foundation's
   ``verify_identity`` rule, limits and audit (requester ``account:<user id>``, nothing
   disclosed yet). A mismatch gets the same neutral answer whatever field was wrong.
2. When the registry has an email or phone for that person, a one-time code goes *there*
   (never to the account's own address): knowing a leaked NIK and birth date is not enough.
   The code confirms the link, and the disclosure is audited.
3. When the registry has no contact, the claim succeeds on the identity match alone, marked
   ``pending_branch``: the member is told the agency will confirm at a branch. Agents list these
   on the desk (/desk/branch/) and, after seeing the KTP, confirm the link or reject it (the link
   is removed, with a reason, and the person's cards revoked); both are audited with the agent's
   name.

One person, one account: a claim of a person already linked to another account is refused with a
clear message and audited (``reason="already_linked"``). An unconfirmed claim never holds a
person, so a stranger's half-finished claim cannot lock the owner out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from kartu.accounts.models import Link
from kartu.core import otp
from kartu.registry import audit
from kartu.registry import services as registry
from kartu.registry.models import AuditEvent, Membership, Person

if TYPE_CHECKING:
    from kartu.card.models import Card

PURPOSE = "account-link"
CHANNEL = "account"


def requester_key(user: AbstractBaseUser) -> str:
    return f"{CHANNEL}:{user.pk}"


def otp_subject(person_id: int, user: AbstractBaseUser) -> str:
    """The one-time code of a claim belongs to the person *and* the claiming account.

    Keyed by the person alone, a stranger who knows the owner's NIK, name and birth date could
    void the owner's code, with five wrong tries or simply by claiming again (a new code replaces
    the old one), and could use up the codes the person may receive in an hour: the owner could
    not link. Keyed by both, each account's claim has its own code and its own wrong tries, and a
    code sent for one account's claim cannot confirm another's.

    What reaches the owner's contact stays limited per *person* (``recipient``): at most
    :data:`kartu.core.otp.RECIPIENT_LIMIT` codes an hour whoever asks, so nobody can flood the
    owner's inbox or phone by signing up many accounts. One account may send only
    :data:`kartu.core.otp.REQUESTER_LIMIT` of those, so a single stranger's account cannot use up
    the person's hour by itself and the owner still gets a code (it takes several verified,
    robot-checked accounts, each within its own verification limit, and a branch visit remains).
    """
    return f"person:{person_id}:account:{user.pk}"


def _send_code(user: AbstractBaseUser, person_id: int, email: str, phone: str,
               language: str) -> otp.Issued:
    return otp.issue(PURPOSE, otp_subject(person_id, user), email=email, phone=phone,
                     language=language, recipient=otp.person_recipient(person_id),
                     subject_limit=otp.REQUESTER_LIMIT)


@dataclass(frozen=True)
class Outcome:
    # code_sent | branch | not_matched | limited | already_linked | code_limited
    # linked | wrong_code | no_claim
    status: str
    masked: str = ""
    retry_after: int = 0


def _audit(user: AbstractBaseUser, person: Person, action: str, outcome: str,
           reason: str) -> None:
    """One audit record of this account acting on ``person``."""
    audit.append(
        action=action,
        channel=CHANNEL,
        requester_ref=registry.requester_reference(requester_key(user)),
        subject_index=person.nik_index,
        person_id=person.pk,
        outcome=outcome,
        reason=reason,
    )


def _refuse_already_linked(user: AbstractBaseUser, person: Person) -> Outcome:
    _audit(user, person, AuditEvent.Action.VERIFY, AuditEvent.Outcome.NOT_VERIFIED,
           "already_linked")
    return Outcome("already_linked")


def _taken_by_someone_else(user: AbstractBaseUser, person_id: int) -> bool:
    return (
        Link.objects.filter(person_id=person_id, state__in=Link.CONFIRMED)
        .exclude(user_id=user.pk)
        .exists()
    )


def _verification(person_id: int) -> registry.Verification:
    """A Verification for ``record_disclosure`` after the code (or the identity alone)."""
    infos = tuple(
        registry.MembershipInfo(
            kpj=m.kpj, employer=m.employer, status=m.status,
            registered_on=m.registered_on.isoformat() if m.registered_on else None,
            programmes=m.programme_list,
        )
        for m in Membership.objects.filter(person_id=person_id)
    )
    return registry.Verification(True, False, "", infos, person_id)


def claim(user: AbstractBaseUser, claim: registry.Claim, *, language: str = "id") -> Outcome:
    """Step 1: match the identity, then send the code (or link pending a branch visit)."""
    key = requester_key(user)
    existing = Link.objects.filter(user_id=user.pk).first()
    if existing is not None and existing.confirmed:
        raise ValueError("this account is already linked")

    result = registry.verify_identity(claim, key, disclose=False)
    if result.limited:
        return Outcome("limited", retry_after=result.retry_after)
    if not result.verified or result.person_id is None:
        return Outcome("not_matched")

    person = Person.objects.get(pk=result.person_id)
    if _taken_by_someone_else(user, person.pk):
        with transaction.atomic():
            return _refuse_already_linked(user, person)

    email, phone = person.email, person.phone
    if not (email or phone):
        try:
            with transaction.atomic():
                Link.objects.update_or_create(user=user, defaults={
                    "person": person, "state": Link.State.PENDING_BRANCH, "code_sent_to": "",
                    "confirmed_at": timezone.now(),
                })
                registry.record_disclosure(_verification(person.pk), key, reason="account_link")
        except IntegrityError:  # another account confirmed this person a moment ago
            with transaction.atomic():
                return _refuse_already_linked(user, person)
        return Outcome("branch")

    issued = _send_code(user, person.pk, email, phone, language)
    if issued.limited or not issued.sent:
        return Outcome("code_limited")
    Link.objects.update_or_create(user=user, defaults={
        "person": person, "state": Link.State.PENDING_CODE, "code_sent_to": issued.masked,
        "confirmed_at": None,
    })
    return Outcome("code_sent", masked=issued.masked)


def resend(user: AbstractBaseUser, *, language: str = "id") -> Outcome:
    link = Link.objects.filter(user_id=user.pk, state=Link.State.PENDING_CODE)\
        .select_related("person").first()
    if link is None:
        return Outcome("no_claim")
    person = link.person
    issued = _send_code(user, person.pk, person.email, person.phone, language)
    if issued.limited or not issued.sent:
        return Outcome("code_limited")
    Link.objects.filter(pk=link.pk).update(code_sent_to=issued.masked)
    return Outcome("code_sent", masked=issued.masked)


def confirm(user: AbstractBaseUser, code: str) -> Outcome:
    """Step 2: the code from the registry's contact confirms the link."""
    link = Link.objects.filter(user_id=user.pk, state=Link.State.PENDING_CODE)\
        .select_related("person").first()
    if link is None:
        return Outcome("no_claim")
    person = link.person
    key = requester_key(user)
    if not otp.verify(PURPOSE, otp_subject(person.pk, user), code):
        with transaction.atomic():
            _audit(user, person, AuditEvent.Action.VERIFY, AuditEvent.Outcome.NOT_VERIFIED,
                   "code_wrong")
        return Outcome("wrong_code", masked=link.code_sent_to)
    try:
        with transaction.atomic():
            if _taken_by_someone_else(user, person.pk):
                raise IntegrityError("person already linked")
            link.state = Link.State.LINKED
            link.confirmed_at = timezone.now()
            link.save(update_fields=["state", "confirmed_at"])
            registry.record_disclosure(_verification(person.pk), key, reason="account_link")
    except IntegrityError:
        with transaction.atomic():
            return _refuse_already_linked(user, person)
    return Outcome("linked")


def confirmed_link(user: AbstractBaseUser) -> Link | None:
    if not user.is_authenticated:
        return None
    return (
        Link.objects.filter(user_id=user.pk, state__in=Link.CONFIRMED)
        .select_related("person").first()
    )


def current_cards(link: Link, memberships: Sequence[Membership]) -> list[Card] | None:
    """The current Kartu Digital of each membership, for the account of ``link`` — or None
    when the link is no longer confirmed.

    The link row is locked while the cards are read or issued: an agent rejecting a branch link
    locks it too (:func:`reject_at_branch`) and revokes the person's live cards, so a request
    that passed the link check just before the rejection can no longer be issued a fresh card
    after it (its card is either revoked by the rejection, or never made)."""
    from kartu.card import services as cards

    with transaction.atomic():
        if not lock_confirmed(link):
            return None
        return [cards.current_card(m) for m in memberships]


def replace_card(link: Link, membership: Membership) -> Card | None:
    """The member asks for a new card of one of their memberships (a lost printout, a
    screenshot that went around): the current one is revoked and a new one issued, under the
    link's lock like every card path (:func:`current_cards`). None when the daily limit of
    replacements refuses it; LookupError when the link is no longer confirmed."""
    from kartu.card import services as cards

    with transaction.atomic():
        if not lock_confirmed(link):
            raise LookupError("the account is no longer linked")
        return cards.reissue_requested(membership)


def lock_confirmed(link: Link) -> bool:
    """Inside a transaction: lock the link row until it ends and say whether it is still
    confirmed. Every path that issues a card for an account goes through it (see
    :func:`current_cards`)."""
    return Link.objects.select_for_update().filter(pk=link.pk, state__in=Link.CONFIRMED).exists()


def own_history(
    user: AbstractBaseUser, person_id: int, limit: int = 100
) -> list[tuple[AuditEvent, bool]]:
    """The member's own verification and disclosure history, newest first, each record with
    whether this account made it (the only thing about the requester a member is told)."""
    mine = registry.requester_reference(requester_key(user))
    return [(e, e.requester_ref == mine) for e in audit.for_person(person_id, limit=limit)]


def record_nik_reveal(user: AbstractBaseUser, person: Person) -> None:
    """The owner asked to see their full NIK on the card page: audited like a disclosure."""
    with transaction.atomic():
        _audit(user, person, AuditEvent.Action.DISCLOSE, AuditEvent.Outcome.DISCLOSED,
               "nik_reveal")


# --- branch confirmation (agents) -------------------------------------------------------------

BRANCH_CONFIRMED = "branch_confirmed"
BRANCH_REJECTED = "branch_rejected"  # audited as "branch_rejected:<reason>"
# Why an agent rejects a link pending a branch visit: fixed codes, never free text (the audit is
# append-only and kept; a note could hold personal data).
REJECT_REASONS: dict[str, Promise] = {
    "ktp_mismatch": _("KTP yang ditunjukkan tidak cocok dengan data peserta"),
    "not_owner": _("Pemilik data menyatakan akun ini bukan miliknya"),
    "member_request": _("Atas permintaan peserta"),
}


def pending_branch() -> QuerySet[Link]:
    """Links waiting for an agent at a branch, oldest claim first."""
    return (Link.objects.filter(state=Link.State.PENDING_BRANCH)
            .select_related("user", "person").order_by("confirmed_at", "pk"))


def pending_branch_count() -> int:
    return pending_branch().count()


def _agent_audit(link: Link, agent: AbstractBaseUser, outcome: str, reason: str) -> None:
    """The agent's decision on an account's claim: the requester is the claiming account
    (pseudonymised, so its owner sees the record as theirs), the agent named beside it."""
    audit.append(
        action=AuditEvent.Action.VERIFY,
        channel="agent",
        requester_ref=registry.requester_reference(requester_key(link.user)),
        subject_index=link.person.nik_index,
        person_id=link.person_id,
        outcome=outcome,
        reason=reason,
        agent=agent.get_username(),
    )


def _pending_for_update(link_id: int) -> Link | None:
    return (Link.objects.select_for_update().select_related("user", "person")
            .filter(pk=link_id, state=Link.State.PENDING_BRANCH).first())


def confirm_at_branch(link_id: int, agent: AbstractBaseUser) -> Link | None:
    """An agent saw the KTP and the member signed in to this account: the link is confirmed.
    None when the link is no longer pending (another agent was first, or it is gone)."""
    with transaction.atomic():
        link = _pending_for_update(link_id)
        if link is None:
            return None
        link.state = Link.State.LINKED
        link.confirmed_at = timezone.now()
        link.save(update_fields=["state", "confirmed_at"])
        _agent_audit(link, agent, AuditEvent.Outcome.VERIFIED, BRANCH_CONFIRMED)
    return link


def reject_at_branch(link_id: int, agent: AbstractBaseUser, reason: str) -> Link | None:
    """An agent rejects a link pending a branch visit: the link is removed (the account is no
    longer linked, and the person is free for the owner's own claim), and the person's live
    Kartu Digital cards are revoked: the account may have downloaded them, and which ones it did
    is not known. None when it is no longer pending. Raises ValueError for a reason that is not
    one of REJECT_REASONS."""
    from kartu.card import services as cards
    from kartu.card.models import Card

    if reason not in REJECT_REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    with transaction.atomic():
        link = _pending_for_update(link_id)
        if link is None:
            return None
        _agent_audit(link, agent, AuditEvent.Outcome.NOT_VERIFIED, f"{BRANCH_REJECTED}:{reason}")
        cards.revoke_person_cards(link.person_id, Card.Reason.ADMIN)
        link.delete()
    return link
