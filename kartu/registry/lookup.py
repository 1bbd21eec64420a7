"""The registry read of a verification: the NIK lock, the person and their memberships in one
statement, shaped the same whether or not the NIK is registered (see :func:`lookup`)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import date
from functools import cache

from django.db import connection

from kartu.core import crypto, sql
from kartu.core.ratelimit import DeferredHit
from kartu.registry.models import PHONE_AAD


@dataclass(frozen=True)
class MembershipInfo:
    kpj: str
    employer: str
    status: str
    registered_on: str | None
    programmes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Decoy:
    """Stands in for the registry record when the NIK is unknown, so the comparison work
    (string matching, one decryption) is the same as for a known NIK with a wrong field."""

    row: tuple[object, ...]


@cache
def _decoy(ring_field_kid: str) -> _Decoy:
    # Same shape and types as a row of _LOOKUP_SQL after the lock column: person id (None marks
    # the decoy), name, place, birth date, phone ciphertext, and one membership.
    return _Decoy(row=(
        None, "NAMA PESERTA TIDAK DIKENAL SAMA SEKALI", "TEMPAT TIDAK DIKENAL", "1900-01-01",
        crypto.encrypt("+620000000000", PHONE_AAD), 0, "00000000000", "", "nonaktif", None,
        "",
    ))


_LOOKUP_SQL = """
{with_hit}SELECT (SELECT 1 FROM registry_niklock WHERE nik_index IN ({marks}) LIMIT 1),
       p.nik_index IN ({marks}),
       p.id, p.full_name, p.birth_place, p.birth_date, p.phone_cipher,
       m.id, m.kpj, m.employer, m.status, m.registered_on, m.programmes{hit_columns}
FROM (SELECT 1 AS one) AS anchor{hit_join}
LEFT JOIN registry_person p ON p.id = COALESCE(
    (SELECT id FROM registry_person WHERE nik_index IN ({marks}) LIMIT 1), %s)
LEFT JOIN registry_membership m ON m.person_id = p.id
ORDER BY m.kpj
"""


@cache
def _lookup_sql(keys: int, hit_cte: str = "") -> str:
    marks = ", ".join(["%s"] * keys)
    if not hit_cte:
        return _LOOKUP_SQL.format(marks=marks, with_hit="", hit_columns="", hit_join="")
    return _LOOKUP_SQL.format(marks=marks, with_hit=f"WITH {hit_cte}\n",
                              hit_columns=", hit.current, hit.previous",
                              hit_join=" CROSS JOIN hit")


@dataclass(frozen=True)
class Record:
    pk: int | None
    full_name: str
    birth_place: str
    birth_date: date
    phone_cipher: bytes | None


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


class _PersonIds:
    """Random existing person ids, for the stand-in read of an unknown NIK."""

    refresh_seconds = 300.0

    def __init__(self) -> None:
        self.max_id = 0
        self.read_at = -1e9

    def random(self) -> int:
        now = time.monotonic()
        if now - self.read_at > self.refresh_seconds or self.max_id == 0:
            with connection.cursor() as cur:
                cur.execute("SELECT MAX(id) FROM registry_person")
                self.max_id = int(cur.fetchone()[0] or 0)
            self.read_at = now
        return secrets.randbelow(self.max_id) + 1 if self.max_id else 0


_person_ids = _PersonIds()


def lookup(
    indexes: list[str], ring: crypto.Keyring, counting: DeferredHit | None = None
) -> tuple[bool, Record, list[tuple[int, MembershipInfo]]]:
    """The NIK lock, the person and their memberships in one statement (which also counts
    ``counting``, a rate-limit hit, when it rides in the caller's statement: its decision is
    then in ``counting.decision``).

    A NIK not in the registry must cost what a registered one costs, or response times would
    tell which NIKs are registered. So the statement always reads one real person: the claimed
    one, or else a random other person (their record is read, converted and compared exactly like
    the claimed one's, then thrown away: it is never disclosed). Only when no such record exists
    (an empty registry, a gap in the ids) does a constant decoy stand in.
    (Plain SQL: the ORM's query building cost more than the query itself.)
    """
    hit_cte, hit_params = (counting.cte, counting.params) if counting else ("", [])
    with sql.hot_cursor() as cur:
        cur.execute(_lookup_sql(len(indexes), hit_cte),
                    [*hit_params, *indexes, *indexes, *indexes, _person_ids.random()])
        rows = cur.fetchall()
    if counting is not None and hit_cte:
        counting.counted(rows[0][-2], rows[0][-1])
    locked = rows[0][0] is not None
    claimed = bool(rows[0][1])
    if rows[0][2] is None:
        rows = [(rows[0][0], False, *_decoy(ring.active_field).row)]
    first = rows[0]
    record = Record(first[2] if claimed else None, first[3], first[4], _as_date(first[5]),
                     bytes(first[6]) if first[6] is not None else None)
    memberships = [
        (row[7], MembershipInfo(
            kpj=row[8], employer=row[9], status=row[10],
            registered_on=_as_date(row[11]).isoformat() if row[11] else None,
            programmes=str(row[12]).split(),
        ))
        for row in rows
    ]
    return locked, record, (memberships if claimed else [])
