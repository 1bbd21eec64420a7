"""Identity verification and disclosure: the one rule every channel calls.

"This person says they are NIK n, name x, born in p on d: may we tell them their KPJ numbers?"

Two factor sets:

* ``full``: NIK, full name, place and date of birth (every written channel, and agents);
* ``phone``: NIK, date of birth, and the caller's number equal to the phone on file (the phone
  line).

Privacy rules built in here, so no door can forget them:

* the requester is never told which field was wrong, and an unknown NIK takes the same path as a
  wrong field: the same queries (a NIK not in the registry is compared against a decoy record, so
  the same matching and decryption work happens) and the same answer;
* rate limits per requester key (members 5/hour, staff keys ``agent:``/``cli:`` 60/hour) and
  per NIK (3 failed attempts per 24 h lock automated disclosure until an agent or the owner
  clears it);
* every attempt and every disclosure is written to the hash-chained audit before its answer is
  returned (a disclosure's record is written only if the NIK is not locked at that moment).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils import timezone

from kartu.core import crypto
from kartu.core.phone import InvalidPhone, normalize_phone
from kartu.core.ratelimit import DeferredHit, Limit, RateLimiter
from kartu.registry import audit
from kartu.registry import nik as nik_rules
from kartu.registry.lookup import MembershipInfo, Record
from kartu.registry.lookup import lookup as _lookup
from kartu.registry.matching import names_match, places_match
from kartu.registry.models import (
    LOCK_NIK_AAD,
    NIK_AAD,
    PHONE_AAD,
    AuditEvent,
    Membership,
    NikLock,
    Person,
)

FACTOR_SETS = ("full", "phone")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
STAFF_PREFIXES = ("agent:", "cli:")


class InvalidClaim(ValueError):
    """The claim is not even well-formed (checked before anything touches the registry)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Claim:
    nik: str
    birth_date: date
    full_name: str = ""
    birth_place: str = ""
    phone: str = ""
    factors: str = "full"


@dataclass(frozen=True)
class Verification:
    verified: bool
    limited: bool
    reason: str  # internal reason code; never shown to the requester
    memberships: tuple[MembershipInfo, ...] = ()
    person_id: int | None = None
    audit_id: int | None = None
    retry_after: int = 0

    @property
    def kpj(self) -> list[str]:
        return sorted(m.kpj for m in self.memberships)

    def public_dict(self) -> dict[str, object]:
        """What a requester (or a script) may see: no reason code, no internal ids."""
        return {
            "verified": self.verified,
            "kpj": self.kpj,
            "memberships": [
                {"kpj": m.kpj, "employer": m.employer, "status": m.status}
                for m in sorted(self.memberships, key=lambda m: m.kpj)
            ],
            "limited": self.limited,
        }


def parse_claim(
    *,
    nik: str,
    birth_date: str | date,
    full_name: str | None = None,
    birth_place: str | None = None,
    phone: str | None = None,
    factors: str = "full",
) -> Claim:
    """Check that a claim is well-formed; raise InvalidClaim naming the field otherwise."""
    if factors not in FACTOR_SETS:
        raise InvalidClaim("factors", f"unknown factor set {factors!r}")
    compact = nik_rules.compact(nik or "")
    try:
        nik_rules.validate(compact)
    except nik_rules.InvalidNik as exc:
        raise InvalidClaim("nik", f"NIK: {exc}") from None
    if isinstance(birth_date, str):
        # Only YYYY-MM-DD: date.fromisoformat also reads 19610928 and 1961-W39-4.
        text = birth_date.strip()
        try:
            if not _ISO_DATE.fullmatch(text):
                raise ValueError(text)
            dob = date.fromisoformat(text)
        except ValueError:
            raise InvalidClaim("birth_date", "date of birth must be YYYY-MM-DD") from None
    else:
        dob = birth_date
    if dob > timezone.localdate():
        raise InvalidClaim("birth_date", "date of birth is in the future")
    if factors == "full":
        if not (full_name or "").strip():
            raise InvalidClaim("full_name", "full name is required")
        if not (birth_place or "").strip():
            raise InvalidClaim("birth_place", "place of birth is required")
        return Claim(compact, dob, full_name.strip(), birth_place.strip(), "", "full")  # type: ignore[union-attr]
    try:
        caller = normalize_phone(phone or "")
    except InvalidPhone:
        raise InvalidClaim("phone", "the caller's phone number is missing or malformed") from None
    return Claim(compact, dob, "", "", caller, "phone")


def is_staff(requester_key: str) -> bool:
    return requester_key.startswith(STAFF_PREFIXES)


def channel_of(requester_key: str) -> str:
    return requester_key.split(":", 1)[0] or "unknown"


def requester_reference(requester_key: str) -> str:
    """Staff keys are kept as they are; member keys (email addresses, phone numbers, platform
    ids) are pseudonymised so the audit holds no contact data."""
    if is_staff(requester_key):
        return requester_key
    scheme, _, ident = requester_key.partition(":")
    return f"{scheme}:#{crypto.pseudonym(ident, 'requester')}"


_limiter = RateLimiter()


def _compare(claim: Claim, record: Record) -> str:
    """Return the first failing factor's reason code, or "" when every factor matches.

    Every factor is evaluated (no short-circuit) so the work does not depend on which failed."""
    dob_ok = claim.birth_date == record.birth_date
    if claim.factors == "full":
        name_ok = names_match(claim.full_name, record.full_name)
        place_ok = places_match(claim.birth_place, record.birth_place)
        phone_ok = True
    else:
        name_ok = place_ok = True
        on_file = crypto.decrypt(record.phone_cipher, PHONE_AAD) if record.phone_cipher else ""
        phone_ok = bool(on_file) and hmac.compare_digest(on_file, claim.phone)
    for ok, code in (
        (dob_ok, "dob_mismatch"),
        (name_ok, "name_mismatch"),
        (place_ok, "place_mismatch"),
        (phone_ok, "phone_mismatch"),
    ):
        if not ok:
            return code
    return ""


def verify_identity(
    claim: Claim, requester_key: str, *, agent: str = "", disclose: bool = True
) -> Verification:
    """Decide whether ``claim`` matches a registry person and, when it does and ``disclose`` is
    true, record the disclosure of their KPJ numbers.

    Built as "count, read, decide, write once" so a verification costs a few statements: the
    requester's limit is counted (Redis, or one statement), the registry is read in one
    statement, the comparison runs here, and the outcome is written as one audit record (one
    statement). A disclosure's record is written only if the NIK is still not locked at that
    moment (checked atomically with the write), so an attempt that locks the NIK concurrently
    cannot be overtaken by a disclosure. Outside a caller's transaction each write commits on
    its own (on PostgreSQL a transaction would cost two more round trips than the one WAL
    flush it could save; the rate counters are UNLOGGED and do not wait for one); inside a
    caller's transaction every write joins it."""
    ring = crypto.keyring()
    indexes = crypto.blind_indexes(claim.nik, ring)
    subject = indexes[0]
    channel = channel_of(requester_key)
    ref = requester_reference(requester_key)
    staff = is_staff(requester_key)

    def record(outcome: str, reason: str, person_id: int | None, memberships: str = "",
               unless_locked: list[str] | None = None,
               counting: DeferredHit | None = None) -> int | None:
        action = (
            AuditEvent.Action.DISCLOSE
            if outcome == AuditEvent.Outcome.DISCLOSED
            else AuditEvent.Action.VERIFY
        )
        return audit.append(
            action=action,
            channel=channel,
            requester_ref=ref,
            subject_index=subject,
            person_id=person_id,
            outcome=outcome,
            reason=reason,
            agent=agent,
            memberships=memberships,
            unless_locked=unless_locked or (),
            counting=counting,
        )

    # The requester's hit rides in the lookup (PostgreSQL counters: one round trip) or was
    # counted already (Redis, SQLite): then a refused attempt reads nothing at all.
    requester = _limiter.deferred_hit("verify", requester_key,
                                      Limit.named("staff" if staff else "requester"))
    if requester.decision is None or requester.decision.allowed:
        locked, record_, memberships = _lookup(indexes, ring, requester)
    decision = requester.decision
    assert decision is not None  # counted by now, one way or the other
    if not decision.allowed:
        audit_id = record(AuditEvent.Outcome.LIMITED, "requester_limit", None)
        return Verification(False, True, "requester_limit", (), None, audit_id,
                            decision.retry_after)

    reason = _compare(claim, record_)
    person_id = record_.pk
    if person_id is None:
        reason = "nik_unknown"

    if locked:
        audit_id = record(AuditEvent.Outcome.LIMITED, "nik_locked", person_id)
        return Verification(False, True, "nik_locked", (), None, audit_id)

    if reason:
        fail_limit = Limit.named("nik_failures")
        # Counted by the audit statement itself with PostgreSQL counters, before it otherwise.
        counting = _limiter.deferred_hit("nik_failures", subject, fail_limit)
        audit_id = record(AuditEvent.Outcome.NOT_VERIFIED, reason, person_id, counting=counting)
        failures = counting.decision
        assert failures is not None
        if failures.estimate >= fail_limit.count:
            _lock(subject, claim.nik, person_id, channel, ref, agent)
        return Verification(False, False, reason, (), person_id, audit_id)

    infos = tuple(info for _, info in memberships)
    if disclose:
        audit_id = record(
            AuditEvent.Outcome.DISCLOSED, "", person_id,
            ",".join(str(pk) for pk, _ in memberships), unless_locked=indexes,
        )
    else:
        audit_id = record(AuditEvent.Outcome.VERIFIED, "", person_id, unless_locked=indexes)
    if audit_id is None:  # locked by a concurrent failed attempt since the lookup
        audit_id = record(AuditEvent.Outcome.LIMITED, "nik_locked", person_id)
        return Verification(False, True, "nik_locked", (), None, audit_id)
    return Verification(True, False, "", infos, person_id, audit_id)


def record_disclosure(
    verification: Verification, requester_key: str, *, agent: str = "", reason: str = ""
) -> int:
    """Record a disclosure that follows an earlier verification (e.g. after a one-time code)."""
    if not verification.verified or verification.person_id is None:
        raise ValueError("only a verified identity can be disclosed")
    ids = Membership.objects.filter(
        person_id=verification.person_id, kpj__in=verification.kpj
    ).values_list("pk", flat=True)
    person = Person.objects.only("nik_index").get(pk=verification.person_id)
    audit_id = audit.append(
        action=AuditEvent.Action.DISCLOSE,
        channel=channel_of(requester_key),
        requester_ref=requester_reference(requester_key),
        subject_index=person.nik_index,
        person_id=verification.person_id,
        outcome=AuditEvent.Outcome.DISCLOSED,
        reason=reason,
        agent=agent,
        memberships=",".join(str(i) for i in sorted(ids)),
    )
    assert audit_id is not None  # no unless_locked: always written
    return audit_id


def _lock(
    subject: str, nik: str, person_id: int | None, channel: str, ref: str, agent: str
) -> None:
    """Lock ``nik`` (blind index ``subject``), registered or not. The NIK is kept encrypted in
    the lock so a blind-index rotation can move every lock (see kartu.registry.keys)."""
    _, created = NikLock.objects.get_or_create(
        nik_index=subject, defaults={"nik_cipher": crypto.encrypt(nik, LOCK_NIK_AAD)}
    )
    if created:
        audit.append(
            action=AuditEvent.Action.LOCK,
            channel=channel,
            requester_ref=ref,
            subject_index=subject,
            person_id=person_id,
            outcome=AuditEvent.Outcome.DONE,
            reason="too_many_failures",
            agent=agent,
        )


def is_locked(nik: str) -> bool:
    indexes = crypto.blind_indexes(nik_rules.compact(nik))
    return NikLock.objects.filter(nik_index__in=indexes).exists()


def clear_nik_lock(nik: str, *, by: str) -> bool:
    """Clear the lock on ``nik`` (an agent, an operator, or the owner after proving control of
    their account). ``by`` is a staff key or ``member:<account id>``. Audited."""
    compact = nik_rules.compact(nik)
    indexes = crypto.blind_indexes(compact)
    with transaction.atomic():
        deleted, _ = NikLock.objects.filter(nik_index__in=indexes).delete()
        for index in indexes:
            _limiter.clear("nik_failures", index, Limit.named("nik_failures"))
        person = Person.objects.filter(nik_index__in=indexes).only("pk").first()
        if deleted:
            audit.append(
                action=AuditEvent.Action.UNLOCK,
                channel=channel_of(by),
                requester_ref=requester_reference(by),
                subject_index=indexes[0],
                person_id=person.pk if person else None,
                outcome=AuditEvent.Outcome.DONE,
                reason="cleared",
                agent=by.split(":", 1)[1] if by.startswith("agent:") else "",
            )
    return bool(deleted)


def find_person(nik: str) -> Person | None:
    """Look a person up by NIK (for staff tools; members go through verify_identity)."""
    compact = nik_rules.compact(nik)
    return Person.objects.filter(nik_index__in=crypto.blind_indexes(compact)).first()


__all__ = [
    "NIK_AAD",
    "Claim",
    "InvalidClaim",
    "MembershipInfo",
    "Verification",
    "clear_nik_lock",
    "find_person",
    "is_locked",
    "parse_claim",
    "record_disclosure",
    "verify_identity",
]
