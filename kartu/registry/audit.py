"""The disclosure audit: an append-only, hash-chained log of every verification and disclosure.

Each record's ``hash`` is SHA-256 over a canonical line of its own fields (its id included) and
the previous record's hash, so editing, deleting or reordering any record breaks the chain at
that point; the head row remembers the last id and hash, so cutting records off the end shows
too. Database triggers refuse UPDATE (and on PostgreSQL DELETE) of audit rows outright.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone

from kartu.core import sql
from kartu.core.ratelimit import DeferredHit
from kartu.registry.models import AuditEvent, AuditHead, NikLock

GENESIS = "0" * 64


def _escape(part: str) -> str:
    # Fields are free of tabs/newlines by construction; escape anyway so the line is unambiguous.
    return part.replace("\\", "\\\\").replace("\t", "\\t")


def _format_at(at: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (isoformat: strftime cost more than the hash)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _body(
    at: datetime, action: str, channel: str, requester_ref: str, subject_index: str,
    person_id: int | None, outcome: str, reason: str, agent: str, memberships: str,
) -> str:
    """The hashed line without its first field (the id) and its last (the previous hash): what
    the writer knows before it has locked the head."""
    parts = (_format_at(at), action, channel, requester_ref, subject_index,
             "" if person_id is None else str(person_id), outcome, reason, agent, memberships)
    line = "\t".join(parts)
    if "\\" in line or line.count("\t") != len(parts) - 1:  # rare: escape field by field
        line = "\t".join(_escape(p) for p in parts)
    return line


def _line(event: AuditEvent) -> str:
    body = _body(event.at, event.action, event.channel, event.requester_ref,
                 event.subject_index, event.person_id, event.outcome, event.reason, event.agent,
                 event.memberships)
    return f"{_escape(str(event.pk))}\t{body}\t{_escape(event.prev_hash)}"


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
    unless_locked: Sequence[str] = (),
    counting: DeferredHit | None = None,
) -> int | None:
    """Append one record and return its id.

    Atomic on its own: inside the caller's transaction it joins it (no savepoint, so an error
    fails the caller's transaction as a whole); outside one it is its own transaction.

    ``unless_locked`` (the blind indexes of a NIK): write the record only if that NIK is not
    locked, checked atomically with the write, and return None (writing nothing) when it is, so
    a disclosure can never be recorded after a concurrent attempt locked the NIK.

    It runs on every verification, so it is one statement: on PostgreSQL a call of the
    ``kartu_audit_append`` function (migration 0004: it locks the head, hashes the line with the
    same fields as :func:`compute_hash`, inserts and moves the head), on SQLite an
    ``INSERT … SELECT`` (below).

    ``counting`` (see ``RateLimiter.deferred_hit``): a rate-limit hit that rides in this
    statement when it has a CTE (PostgreSQL counters); its decision is then in
    ``counting.decision``. Without one it was counted already and is ignored here.
    """
    at = timezone.now()
    channel, requester_ref, agent = channel[:32], requester_ref[:100], agent[:150]
    body = _body(at, action, channel, requester_ref, subject_index, person_id, outcome, reason,
                 agent, memberships)
    fields = [action, channel, requester_ref, subject_index, person_id, outcome, reason, agent,
              memberships]
    if connection.vendor == "postgresql":
        params = [at, *fields, body, list(unless_locked)]
        with sql.hot_cursor() as cur:
            if counting is None or not counting.cte:
                cur.execute(_PG_APPEND_SQL, params)
                return cur.fetchone()[0]
            cur.execute(f"WITH {counting.cte} {_PG_APPEND_SQL}, hit.current, hit.previous "
                        "FROM hit", [*counting.params, *params])
            audit_id, current, previous = cur.fetchone()
        counting.counted(current, previous)
        return audit_id
    statement = _sqlite_append_sql(len(unless_locked))
    # Django's SQLite format for an aware datetime (naive UTC text), without its slower adapter.
    stamp = at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    params = [stamp, *fields, body, *unless_locked]
    for _attempt in range(3):
        with sql.hot_cursor() as cur:
            cur.execute(statement, params)
            row = cur.fetchone()
        if row is not None:
            return row[0]
        # Nothing written: the NIK is locked, or there was no head row when the statement ran
        # (migration 0003 makes it; a test flush deletes it). Tell the two apart explicitly:
        # another writer may have made the head since, so "the head exists now" does not
        # mean the NIK is locked (that mistake dropped a record under concurrent writers).
        if unless_locked and NikLock.objects.filter(nik_index__in=unless_locked).exists():
            return None
        AuditHead.objects.get_or_create(
            pk=1, defaults={"last_id": 0, "last_hash": GENESIS, "count": 0}
        )
    raise RuntimeError("the audit record could not be appended (no head row)")


# SQLite: one statement. The head is read and the record inserted by INSERT ... SELECT (a write
# statement takes SQLite's write lock before it reads, so appends are serialised), the hash is
# computed by kartu_sha256_hex (registered on every connection by RegistryConfig) and the
# trigger of migration 0006 moves the head.
_SQLITE_APPEND_SQL = (
    "INSERT INTO registry_auditevent (id, at, action, channel, requester_ref, subject_index, "
    "person_id, outcome, reason, agent, memberships, prev_hash, hash) "
    "SELECT last_id + 1, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, last_hash, "
    "kartu_sha256_hex((last_id + 1) || char(9) || %s || char(9) || last_hash) "
    "FROM registry_audithead WHERE id = 1 "
    "AND NOT EXISTS (SELECT 1 FROM registry_niklock WHERE nik_index IN ({marks})) "
    "RETURNING id"
)


@functools.lru_cache(maxsize=8)
def _sqlite_append_sql(locks: int) -> str:
    return _SQLITE_APPEND_SQL.format(marks=", ".join(["%s"] * locks) or "NULL")


_PG_APPEND_SQL = (
    "SELECT kartu_audit_append(%s::timestamptz, %s::text, %s::text, %s::text, %s::text, "
    "%s::bigint, %s::text, %s::text, %s::text, %s::text, %s::text, %s::text[])"
)


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
