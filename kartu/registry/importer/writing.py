"""The writing half of an import: database-specific bulk reads and writes (:class:`Writer`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from django.db import connection

from kartu.registry.importer.reading import (
    _PG_COPY_HEADER,
    _PG_COPY_TRAILER,
    _PG_TIME_EPOCH,
    _int8,
)


def _iso(value: Any) -> str | None:
    """A date read back from the database, as ISO text (what the chunks carry)."""
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(value).isoformat()


class Writer:
    """Database-specific bulk writes. Rows carry plain Python values."""

    PERSON_COLUMNS = ("nik_index, nik_index_kid, nik_cipher, full_name, birth_place, birth_date, "
                      "sex, email_cipher, phone_cipher, contact_digest, created_at, updated_at")
    MEMBERSHIP_COLUMNS = ("person_id, kpj, employer, status, registered_on, programmes, "
                          "created_at, updated_at")

    def __init__(self) -> None:
        connection.ensure_connection()
        self.raw: Any = connection.connection
        self.vendor = connection.vendor
        self.ph = "?" if self.vendor == "sqlite" else "%s"
        self.person_id_sequence = ""

    @contextlib.contextmanager
    def tuned(self) -> Iterator[None]:
        """A connection setting for a bulk import (SQLite), restored afterwards:
        ``wal_autocheckpoint`` 20,000 pages (80 MiB) instead of 1,000. Each chunk's commit writes
        the index pages its random blind indexes went into to the WAL, and checkpointing after
        every commit copies the same pages into the database again and again. (The page cache
        this needs, 64 MiB, is every kartu SQLite connection's: settings.DATABASES.)

        A setting of this connection only, put back at the end, followed by a PASSIVE
        checkpoint (it never waits for readers or writers) so that the next commit elsewhere
        does not inherit a large one. PostgreSQL: nothing to do.
        """
        if self.vendor != "sqlite":
            yield
            return
        pages = int(self.raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        if 0 < pages < 20000:  # 0 or less: automatic checkpoints are off, leave them off
            self.raw.execute("PRAGMA wal_autocheckpoint=20000")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # best effort: never hide the import's error
                self.raw.execute(f"PRAGMA wal_autocheckpoint={pages}")
                if not connection.in_atomic_block:
                    self.raw.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _lookup(self, table: str, key: str, columns: str, keys: list[str]) -> list[Any]:
        """Rows of ``table`` whose unique ``key`` is one of ``keys`` (``key`` first).

        SQLite: ``key IN (...)`` in parts of 5,000, which it answers with the index.
        PostgreSQL: one query per chunk, the keys as one comma-separated parameter (a long
        placeholder list costs psycopg more than the query costs the server), each key looked
        up through a ``LATERAL ... LIMIT 1`` subquery. That form cannot be flattened into a
        join, so the unique index is always used: given a plain ``key = ANY(...)`` with 20,000
        keys the planner prefers a parallel sequential scan and a hash join, which at a million
        rows costs some 250 ms per chunk whether the keys exist or not, against 40 ms or less
        for 20,000 absent keys (the first import) by index. The keys go in sorted order, which
        keeps successive probes on neighbouring index pages (up to twice as fast on a big
        table). Every key is a blind index (hex) or a validated KPJ (digits), never a comma.
        """
        cur = self.raw.cursor()
        if self.vendor == "postgresql":
            cur.execute(
                f"SELECT x.* FROM unnest(string_to_array(%s, ',')) AS k(key) CROSS JOIN LATERAL "
                f"(SELECT {key}, {columns} FROM {table} WHERE {key} = k.key LIMIT 1) x",
                [",".join(sorted(set(keys)))],
            )
            return list(cur.fetchall())
        found: list[Any] = []
        for part in _parts(keys, 5000):
            cur.execute(
                f"SELECT {key}, {columns} FROM {table} "
                f"WHERE {key} IN ({','.join(['?'] * len(part))})",
                part,
            )
            found += cur.fetchall()
        return found

    def existing_people(self, indexes: list[str]) -> dict[str, tuple[Any, ...]]:
        """nik_index -> (id, full_name, birth_place, birth_date as ISO text, sex, contact)."""
        rows = self._lookup("registry_person", "nik_index",
                            "id, full_name, birth_place, birth_date, sex, contact_digest", indexes)
        return {index: (pk, name, place, _iso(dob), sex, contact)
                for index, pk, name, place, dob, sex, contact in rows}

    def existing_memberships(self, kpjs: list[str]) -> dict[str, tuple[Any, ...]]:
        """kpj -> (person id, employer, status, registered_on as ISO text, programmes)."""
        rows = self._lookup("registry_membership", "kpj",
                            "person_id, employer, status, registered_on, programmes", kpjs)
        return {kpj: (person, employer, status, _iso(reg), programmes)
                for kpj, person, employer, status, reg, programmes in rows}

    def stamps(self, now: Any) -> tuple[Any, str]:
        """``now`` as an update parameter, and as the literal text bulk inserts write."""
        if self.vendor == "sqlite":
            ts = str(connection.ops.adapt_datetimefield_value(now))
            if "'" in ts:
                raise ValueError(f"unexpected timestamp text {ts!r}")
            return ts, ts
        return now, now.isoformat()

    def add_people(self, rows: list[tuple[Any, ...]], now: Any, ts: str) -> dict[str, int]:
        """Insert rows shaped by :func:`_parse_chunks`; on PostgreSQL return their ids.

        SQLite: one ``executemany`` whose statement carries the timestamp as a literal, so the
        chunk's tuples are the parameters as they are. PostgreSQL: the ids are taken from the
        table's identity sequence first (``nextval``, in the order ``COPY`` would have taken
        them), then the rows go through binary ``COPY`` with their id; the memberships need
        the ids, and no second look-up of the people is needed.
        """
        if self.vendor == "postgresql":
            ids = self.new_person_ids(len(rows))
            head, stamps = b"\0\x0d\0\0\0\x08", self._pg_stamps(now)
            self._copy_binary(
                f"COPY registry_person (id, {self.PERSON_COLUMNS}) FROM STDIN (FORMAT BINARY)",
                [b"".join((head, _int8(pk), row[10], stamps))
                 for pk, row in zip(ids, rows, strict=True)],
            )
            return {row[0]: pk for pk, row in zip(ids, rows, strict=True)}
        self.raw.cursor().executemany(
            f"INSERT INTO registry_person ({self.PERSON_COLUMNS}) "
            f"VALUES ({','.join(['?'] * 10)}, '{ts}', '{ts}')",
            rows,
        )
        return {}

    @staticmethod
    def _pg_stamps(now: Any) -> bytes:
        """created_at and updated_at as binary COPY fields (microseconds since 2000, UTC)."""
        micros = (now - _PG_TIME_EPOCH) // timedelta(microseconds=1)
        return (b"\0\0\0\x08" + _int8(micros)) * 2

    def _copy_binary(self, sql: str, rows: list[bytes]) -> None:
        with self.raw.cursor() as cur, cur.copy(sql) as copy:
            copy.write(b"".join((_PG_COPY_HEADER, *rows, _PG_COPY_TRAILER)))

    def new_person_ids(self, count: int) -> list[int]:
        """``count`` fresh ids from registry_person's sequence (PostgreSQL), ascending."""
        with self.raw.cursor() as cur:
            if not self.person_id_sequence:
                cur.execute("SELECT pg_get_serial_sequence('registry_person', 'id')")
                self.person_id_sequence = cur.fetchone()[0]
            cur.execute("SELECT nextval(%s) FROM generate_series(1, %s)",
                        [self.person_id_sequence, count])
            return sorted(r[0] for r in cur.fetchall())

    def add_memberships(
        self, rows: list[tuple[Any, ...]], now: Any, ts: str, ids: dict[str, int]
    ) -> None:
        """Insert rows shaped by :func:`_parse_chunks`.

        SQLite finds the person id itself (a sub-select on the unique ``nik_index``), so the
        tuples go to ``executemany`` as they are; PostgreSQL takes it from ``ids``.
        """
        if self.vendor == "postgresql":
            head, stamps = b"\0\x08\0\0\0\x08", self._pg_stamps(now)
            self._copy_binary(
                f"COPY registry_membership ({self.MEMBERSHIP_COLUMNS}) FROM STDIN (FORMAT BINARY)",
                [b"".join((head, _int8(ids[row[0]]), row[6], stamps)) for row in rows],
            )
            return
        self.raw.cursor().executemany(
            f"INSERT INTO registry_membership ({self.MEMBERSHIP_COLUMNS}) VALUES ("
            "(SELECT id FROM registry_person WHERE nik_index = ?), ?, ?, ?, ?, ?, "
            f"'{ts}', '{ts}')",
            rows,
        )

    def insert_people(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert complete rows (all 12 columns, Python values); used by the benchmarks."""
        self._insert_rows("registry_person", self.PERSON_COLUMNS, rows)

    def _insert_rows(self, table: str, cols: str, rows: list[tuple[Any, ...]]) -> None:
        """Complete rows in Python values: COPY on PostgreSQL, executemany on SQLite."""
        if self.vendor == "postgresql":
            with self.raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ",".join(["?"] * len(cols.split(",")))
            self.raw.cursor().executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)

    def update_people(
        self, rows: list[tuple[Any, ...]], rows_with_contact: list[tuple[Any, ...]]
    ) -> None:
        fields = "full_name={0}, birth_place={0}, birth_date={0}, sex={0}, "
        contact = "email_cipher={0}, phone_cipher={0}, contact_digest={0}, "
        tail = "updated_at={0} WHERE id={0}"
        cur = self.raw.cursor()
        if rows:
            cur.executemany(f"UPDATE registry_person SET {fields}{tail}".format(self.ph), rows)
        if rows_with_contact:
            cur.executemany(
                f"UPDATE registry_person SET {fields}{contact}{tail}".format(self.ph),
                rows_with_contact,
            )

    def person_ids(self, indexes: list[str]) -> dict[str, int]:
        return dict(self._lookup("registry_person", "nik_index", "id", indexes))

    def insert_memberships(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert complete rows (person id first, Python values); used by the benchmarks."""
        self._insert_rows("registry_membership", self.MEMBERSHIP_COLUMNS, rows)

    def update_memberships(self, rows: list[tuple[Any, ...]], programmes: bool = True) -> None:
        """``rows``: (employer, status, registered_on[, programmes], updated_at, kpj)."""
        p = self.ph
        sql = (f"UPDATE registry_membership SET employer={p}, status={p}, registered_on={p}, "
               f"{f'programmes={p}, ' if programmes else ''}updated_at={p} WHERE kpj={p}")
        self.raw.cursor().executemany(sql, rows)


def _parts(values: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]
