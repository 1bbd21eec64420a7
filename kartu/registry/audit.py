"""The disclosure audit: an append-only, hash-chained log of every verification and disclosure.

Each record's ``hash`` is SHA-256 over a canonical line of its own fields (its id included) and
the previous record's hash, so editing, deleting or reordering any record breaks the chain at
that point; the head row remembers the last id and hash, so cutting records off the end shows
too. Database triggers refuse UPDATE (and on PostgreSQL DELETE) of audit rows outright.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC

from django.db import connection, transaction
from django.utils import timezone

from kartu.registry.models import AuditEvent, AuditHead

GENESIS = "0" * 64


def _line(event: AuditEvent) -> str:
    at = event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    parts = [
        str(event.pk),
        at,
        event.action,
        event.channel,
        event.requester_ref,
        event.subject_index,
        "" if event.person_id is None else str(event.person_id),
        event.outcome,
        event.reason,
        event.agent,
        event.memberships,
        event.prev_hash,
    ]
    # Fields are free of tabs/newlines by construction; escape anyway so the line is unambiguous.
    return "\t".join(p.replace("\\", "\\\\").replace("\t", "\\t") for p in parts)


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_line(event).encode()).hexdigest()


def append(
    *,
    action: str,
    channel: str,
    requester_ref: str,
    outcome: str,
    subject_index: str = "",
    person_id: int | None = None,
    reason: str = "",
    agent: str = "",
    memberships: str = "",
) -> AuditEvent:
    """Append one record. Must run inside the caller's transaction (it joins it: no savepoint
    of its own, so an error here fails the caller's transaction as a whole).

    Runs on every verification, so it speaks SQL directly (three statements: lock and read the
    head, insert the record, move the head) instead of paying for the ORM's query building."""
    with transaction.atomic(savepoint=False), connection.cursor() as cur:
        cur.execute(_HEAD_SQL + _for_update())
        head = cur.fetchone()
        if head is None:
            AuditHead.objects.create(pk=1, last_id=0, last_hash=GENESIS, count=0)
            cur.execute(_HEAD_SQL + _for_update())
            head = cur.fetchone()
        last_id, last_hash, count = head
        event = AuditEvent(
            id=last_id + 1,
            at=timezone.now(),
            action=action,
            channel=channel[:32],
            requester_ref=requester_ref[:100],
            subject_index=subject_index,
            person_id=person_id,
            outcome=outcome,
            reason=reason,
            agent=agent[:150],
            memberships=memberships,
            prev_hash=last_hash,
        )
        event.hash = compute_hash(event)
        cur.execute(_INSERT_SQL, [
            event.pk, connection.ops.adapt_datetimefield_value(event.at), event.action,
            event.channel, event.requester_ref, event.subject_index, event.person_id,
            event.outcome, event.reason, event.agent, event.memberships, event.prev_hash,
            event.hash,
        ])
        cur.execute(_HEAD_UPDATE_SQL, [event.pk, event.hash, count + 1])
    event._state.adding = False
    event._state.db = connection.alias
    return event


_HEAD_SQL = "SELECT last_id, last_hash, count FROM registry_audithead WHERE id = 1"
_INSERT_SQL = (
    "INSERT INTO registry_auditevent (id, at, action, channel, requester_ref, subject_index, "
    "person_id, outcome, reason, agent, memberships, prev_hash, hash) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_HEAD_UPDATE_SQL = (
    "UPDATE registry_audithead SET last_id = %s, last_hash = %s, count = %s WHERE id = 1"
)


def _for_update() -> str:
    # SQLite has no row locks: its write transactions are serialised (BEGIN IMMEDIATE) instead.
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


@dataclass
class ChainReport:
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "checked": self.checked, "problems": self.problems}


def _events(batch: int = 5000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        chunk = list(AuditEvent.objects.filter(pk__gt=last).order_by("pk")[:batch])
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].pk


def verify_chain(max_problems: int = 50) -> ChainReport:
    """Walk the whole chain and say where it is broken (edited, deleted, reordered, cut off)."""
    report = ChainReport()
    prev_hash = GENESIS
    expected_id = 1
    for event in _events():
        report.checked += 1
        if event.pk != expected_id:
            report.problems.append(
                f"record {event.pk}: expected record {expected_id} here "
                f"({'records missing' if event.pk > expected_id else 'out of order'})"
            )
        if event.prev_hash != prev_hash:
            report.problems.append(
                f"record {event.pk}: does not follow the record before it "
                "(a record before it was edited, deleted or moved)"
            )
        if compute_hash(event) != event.hash:
            report.problems.append(f"record {event.pk}: contents were edited after it was written")
        prev_hash = event.hash
        expected_id = event.pk + 1
        if len(report.problems) >= max_problems:
            report.problems.append("… stopping after too many problems")
            return report
    head = AuditHead.objects.filter(pk=1).first()
    if head is not None:
        if head.last_id != expected_id - 1 or head.last_hash != prev_hash:
            report.problems.append(
                f"end of chain: the log ends at record {expected_id - 1} but the head says "
                f"{head.last_id} (records cut off the end, or the head was edited)"
            )
        if head.count != report.checked:
            report.problems.append(
                f"end of chain: {report.checked} records found, the head counted {head.count}"
            )
    elif report.checked:
        report.problems.append("end of chain: the head row is missing")
    return report


def for_person(person_id: int, limit: int = 100) -> list[AuditEvent]:
    """A person's own verification and disclosure history, newest first (for portal and app)."""
    return list(
        AuditEvent.objects.filter(
            person_id=person_id,
            action__in=[AuditEvent.Action.VERIFY, AuditEvent.Action.DISCLOSE],
        ).order_by("-pk")[:limit]
    )
