"""Registry import and export (CSV, one row per membership).

Header: ``nik,full_name,birth_place,birth_date,sex,email,phone,kpj,employer,status,registered_on``
(an optional ``programmes`` column holds space-separated codes such as ``JHT JKK JKM JP``).

The import streams the file in chunks (memory does not grow with the file), validates every row,
compares each chunk with what the registry already holds (so importing the same file twice
writes nothing, and a changed row updates its record), and writes new rows with the database's
fastest path: ``COPY`` on PostgreSQL, ``executemany`` on SQLite. A bad row never stops the run:
it goes to ``<input>.rejects.csv`` with its line number and the reason.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from kartu.core import crypto
from kartu.core.phone import InvalidPhone, normalize_phone
from kartu.registry import kpj as kpj_rules
from kartu.registry import nik as nik_rules
from kartu.registry.models import EMAIL_AAD, NIK_AAD, PHONE_AAD, PROGRAMMES

COLUMNS = (
    "nik", "full_name", "birth_place", "birth_date", "sex", "email", "phone",
    "kpj", "employer", "status", "registered_on",
)
OPTIONAL_COLUMNS = ("programmes",)
STATUSES = ("aktif", "nonaktif")
CHUNK = 20_000


class ImportFileError(Exception):
    """The file as a whole cannot be imported (missing, empty, bad header)."""


class PersonRow(NamedTuple):
    nik_index: str
    nik: str
    full_name: str
    birth_place: str
    birth_date: date
    sex: str
    email: str
    phone: str
    contact: str  # keyed digest of email + phone, to tell a change without decrypting


class MembershipRow(NamedTuple):
    nik_index: str
    kpj: str
    employer: str
    status: str
    registered_on: date | None
    programmes: str


@dataclass
class ImportSummary:
    rows: int = 0
    people_added: int = 0
    people_updated: int = 0
    memberships_added: int = 0
    memberships_updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0
    rejects_path: str = ""
    first_rejects: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def text(self) -> str:
        lines = [
            f"{self.rows} rows read in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s)",
            f"  people:      {self.people_added} added, {self.people_updated} updated",
            f"  memberships: {self.memberships_added} added, {self.memberships_updated} updated, "
            f"{self.unchanged} unchanged",
            f"  rejected:    {self.rejected}"
            + (f" (every one is in {self.rejects_path})" if self.rejected else ""),
        ]
        lines += [f"    {r}" for r in self.first_rejects]
        if self.rejected > len(self.first_rejects):
            lines.append(f"    … and {self.rejected - len(self.first_rejects)} more")
        return "\n".join(lines)


class RowError(ValueError):
    pass


def _contact_digest(email: str, phone: str, key: bytes) -> str:
    return hmac.digest(key, f"{email}\x00{phone}".encode(), "sha256")[:12].hex()


class RowParser:
    """Turns one CSV record into (PersonRow, MembershipRow) or raises RowError."""

    def __init__(self, header: list[str], ring: crypto.Keyring) -> None:
        self.ring = ring
        self.index_key = ring.index_keys[ring.active_index]
        self.contact_key = hashlib.sha256(b"kartu-contact" + self.index_key).digest()
        positions = {name: i for i, name in enumerate(header)}
        self.pos = [positions[c] for c in COLUMNS]
        self.programmes_pos = positions.get("programmes")
        self.width = len(header)
        self.today = timezone.localdate()

    def parse(self, rec: list[str]) -> tuple[PersonRow, MembershipRow]:
        if len(rec) != self.width:
            raise RowError(f"expected {self.width} fields, found {len(rec)}")
        try:
            "".join(rec).encode("utf-8")
        except UnicodeEncodeError:
            raise RowError("the line is not valid UTF-8 text") from None
        (nik_raw, name, place, dob_raw, sex, email, phone, kpj_raw, employer, status,
         reg_raw) = (rec[i].strip() for i in self.pos)
        try:
            nik = nik_rules.validate(nik_raw, today=self.today)
        except nik_rules.InvalidNik as exc:
            raise RowError(f"nik: {exc}") from None
        dob = _iso_date(dob_raw, "birth_date")
        if dob > self.today or dob.year < 1900:
            raise RowError("birth_date: not a plausible date of birth")
        sex = sex.upper()
        if sex not in ("L", "P"):
            raise RowError("sex: must be L or P")
        if not nik.agrees_with(dob, sex):
            raise RowError("nik: its birth-date digits do not agree with birth_date and sex")
        name = " ".join(name.split())
        if not name or len(name) > 200:
            raise RowError("full_name: required, at most 200 characters")
        place = " ".join(place.split())
        if not place or len(place) > 100:
            raise RowError("birth_place: required, at most 100 characters")
        if email:
            email = email.lower()
            local, at, domain = email.partition("@")
            if not (at and local and "." in domain) or " " in email or len(email) > 254:
                raise RowError("email: not an email address")
        if phone:
            try:
                phone = normalize_phone(phone)
            except InvalidPhone:
                raise RowError("phone: not a phone number") from None
        try:
            kpj = kpj_rules.validate(kpj_raw)
        except kpj_rules.InvalidKpj as exc:
            raise RowError(f"kpj: {exc}") from None
        employer = " ".join(employer.split())
        if len(employer) > 200:
            raise RowError("employer: at most 200 characters")
        status = status.lower()
        if status not in STATUSES:
            raise RowError("status: must be aktif or nonaktif")
        registered_on = _iso_date(reg_raw, "registered_on") if reg_raw else None
        programmes = ""
        if self.programmes_pos is not None:
            codes = rec[self.programmes_pos].replace(",", " ").replace(";", " ").upper().split()
            unknown = [c for c in codes if c not in PROGRAMMES]
            if unknown:
                raise RowError(f"programmes: unknown code(s) {', '.join(unknown)}")
            programmes = " ".join(c for c in PROGRAMMES if c in codes)
        index = hmac.digest(self.index_key, nik.value.encode(), "sha256")[:16].hex()
        person = PersonRow(index, nik.value, name, place, dob, sex, email, phone,
                           _contact_digest(email, phone, self.contact_key))
        return person, MembershipRow(index, kpj, employer, status, registered_on, programmes)


def _iso_date(raw: str, column: str) -> date:
    if len(raw) != 10 or raw[4] != "-" or raw[7] != "-":
        raise RowError(f"{column}: dates are written YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise RowError(f"{column}: {raw!r} is not a real date") from None


# --- writing ----------------------------------------------------------------------------------


class Writer:
    """Database-specific bulk writes. Rows carry plain Python values."""

    def __init__(self) -> None:
        connection.ensure_connection()
        self.raw: Any = connection.connection
        self.vendor = connection.vendor
        self.ph = "?" if self.vendor == "sqlite" else "%s"
        # Keys per lookup query. PostgreSQL often answers a large key list with one sequential
        # scan of the table, so it gets the whole chunk at once (one scan, not one per 5,000).
        self.batch = 5000 if self.vendor == "sqlite" else 1_000_000

    def _in(self, column: str, values: list[str]) -> tuple[str, list[str]]:
        """``column IN (values)`` and its parameters.

        On PostgreSQL the values travel as one comma-separated parameter: a 5,000-placeholder
        ``IN`` list costs psycopg more time to build than the query costs the server. Every
        value passed here is a blind index (hex) or a validated KPJ (digits), never a comma.
        """
        if self.vendor == "postgresql":
            return f"{column} = ANY(string_to_array(%s, ','))", [",".join(values)]
        return f"{column} IN ({','.join([self.ph] * len(values))})", values

    def existing_people(self, indexes: list[str]) -> dict[str, tuple[Any, ...]]:
        found: dict[str, tuple[Any, ...]] = {}
        cur = self.raw.cursor()
        for part in _parts(indexes, self.batch):
            where, params = self._in("nik_index", part)
            cur.execute(
                "SELECT nik_index, id, full_name, birth_place, birth_date, sex, contact_digest "
                f"FROM registry_person WHERE {where}",
                params,
            )
            for index, pk, name, place, dob, sex, contact in cur.fetchall():
                if isinstance(dob, str):
                    dob = date.fromisoformat(dob)
                found[index] = (pk, name, place, dob, sex, contact)
        return found

    def existing_memberships(self, kpjs: list[str]) -> dict[str, tuple[Any, ...]]:
        found: dict[str, tuple[Any, ...]] = {}
        cur = self.raw.cursor()
        for part in _parts(kpjs, self.batch):
            where, params = self._in("m.kpj", part)
            cur.execute(
                "SELECT m.kpj, p.nik_index, m.employer, m.status, m.registered_on, m.programmes "
                "FROM registry_membership m JOIN registry_person p ON p.id = m.person_id "
                f"WHERE {where}",
                params,
            )
            for kpj, index, employer, status, reg, programmes in cur.fetchall():
                if isinstance(reg, str):
                    reg = date.fromisoformat(reg)
                found[kpj] = (index, employer, status, reg, programmes)
        return found

    def insert_people(self, rows: list[tuple[Any, ...]]) -> None:
        cols = ("nik_index, nik_index_kid, nik_cipher, full_name, birth_place, birth_date, sex, "
                "email_cipher, phone_cipher, contact_digest, created_at, updated_at")
        if self.vendor == "postgresql":
            with self.raw.cursor() as cur, cur.copy(
                f"COPY registry_person ({cols}) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.raw.cursor().executemany(
                f"INSERT INTO registry_person ({cols}) VALUES ({','.join(['?'] * 12)})", rows
            )

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
        ids: dict[str, int] = {}
        cur = self.raw.cursor()
        for part in _parts(indexes, self.batch):
            where, params = self._in("nik_index", part)
            cur.execute(f"SELECT nik_index, id FROM registry_person WHERE {where}", params)
            ids.update(cur.fetchall())
        return ids

    def insert_memberships(self, rows: list[tuple[Any, ...]]) -> None:
        cols = "person_id, kpj, employer, status, registered_on, programmes, created_at, updated_at"
        if self.vendor == "postgresql":
            with self.raw.cursor() as cur, cur.copy(
                f"COPY registry_membership ({cols}) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.raw.cursor().executemany(
                f"INSERT INTO registry_membership ({cols}) VALUES ({','.join(['?'] * 8)})", rows
            )

    def update_memberships(self, rows: list[tuple[Any, ...]]) -> None:
        p = self.ph
        sql = (f"UPDATE registry_membership SET employer={p}, status={p}, registered_on={p}, "
               f"programmes={p}, updated_at={p} WHERE kpj={p}")
        self.raw.cursor().executemany(sql, rows)


def _parts(values: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


# --- the import -------------------------------------------------------------------------------


class _Progress:
    def __init__(self, path: Path, enabled: bool) -> None:
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                            desc="import", file=sys.stderr, mininterval=0.5)

    def lines(self, fh: IO[str]) -> Iterator[str]:
        if self.bar is None:
            yield from fh
            return
        done = 0
        for line in fh:
            done += len(line)
            if done > 1 << 20:
                self.bar.update(done)
                done = 0
            yield line
        self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def rejects_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


def import_csv(
    path: str | os.PathLike[str],
    *,
    progress: bool | None = None,
    chunk_size: int = CHUNK,
    max_listed_rejects: int = 10,
) -> ImportSummary:
    src = Path(path)
    if not src.is_file():
        raise ImportFileError(f"{src}: no such file")
    ring = crypto.keyring()
    if len(ring.index_keys) > 1:
        raise ImportFileError(
            "a blind-index key rotation is in progress; run `kartu keys rotate` to finish it "
            "before importing"
        )
    started = time.perf_counter()
    summary = ImportSummary(rejects_path=str(rejects_path_for(src)))
    bar = _Progress(src, sys.stderr.isatty() if progress is None else progress)
    with open(src, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh, open(
        summary.rejects_path, "w", encoding="utf-8", errors="surrogateescape", newline=""
    ) as rej_fh:
        reader = csv.reader(bar.lines(fh), strict=True)
        header = _read_header(reader, src)
        rejects = csv.writer(rej_fh)
        rejects.writerow(["line", "reason", *header])
        parser = RowParser(header, ring)
        writer = Writer()

        def reject(line: int, reason: str, rec: list[str]) -> None:
            summary.rejected += 1
            rejects.writerow([line, reason, *rec])
            if len(summary.first_rejects) < max_listed_rejects:
                summary.first_rejects.append(f"line {line}: {reason}")

        chunk: list[tuple[int, list[str], PersonRow, MembershipRow]] = []
        for line, rec in _records(reader, reject):
            summary.rows += 1
            try:
                person, membership = parser.parse(rec)
            except RowError as exc:
                reject(line, str(exc), rec)
                continue
            chunk.append((line, rec, person, membership))
            if len(chunk) >= chunk_size:
                _apply_chunk(chunk, writer, ring, summary, reject)
                chunk = []
        if chunk:
            _apply_chunk(chunk, writer, ring, summary, reject)
    bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _read_header(reader: Iterator[list[str]], src: Path) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{src}: the file is empty (expected a header line)") from None
    except csv.Error as exc:
        raise ImportFileError(f"{src}: line 1: {exc}") from None
    header = [h.strip().lower() for h in header]
    try:
        "".join(header).encode("utf-8")
    except UnicodeEncodeError:
        raise ImportFileError(f"{src}: line 1: the header is not UTF-8 text") from None
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS and c not in OPTIONAL_COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        raise ImportFileError(
            f"{src}: line 1: {'; '.join(parts)}. Expected header: {','.join(COLUMNS)}"
        )
    if len(set(header)) != len(header):
        raise ImportFileError(f"{src}: line 1: a column is named twice")
    return header


def _records(reader: Any, reject: Any) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, record), turning malformed CSV into rejects instead of stopping."""
    while True:
        start = reader.line_num + 1
        try:
            rec = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reject(start, f"malformed CSV: {exc}", [])
            continue
        if not rec or (len(rec) == 1 and not rec[0].strip()):
            continue  # blank line
        yield start, rec


def _apply_chunk(
    chunk: list[tuple[int, list[str], PersonRow, MembershipRow]],
    writer: Writer,
    ring: crypto.Keyring,
    summary: ImportSummary,
    reject: Any,
) -> None:
    now = timezone.now()
    ts = connection.ops.adapt_datetimefield_value(now) if writer.vendor == "sqlite" else now
    iso = writer.vendor == "sqlite"

    def d(value: date | None) -> Any:
        return value.isoformat() if (iso and value is not None) else value

    with transaction.atomic():
        # KPJs repeated inside the chunk: the first owner wins; another NIK is a reject.
        kpj_owner: dict[str, str] = {}
        accepted: list[tuple[int, list[str], PersonRow, MembershipRow]] = []
        existing_m = writer.existing_memberships([m.kpj for _, _, _, m in chunk])
        for item in chunk:
            line, rec, person, membership = item
            owner = existing_m.get(membership.kpj, (None,))[0] or kpj_owner.get(membership.kpj)
            if owner is not None and owner != person.nik_index:
                reject(line, "kpj: this KPJ already belongs to another NIK", rec)
                continue
            kpj_owner[membership.kpj] = person.nik_index
            accepted.append(item)

        people: dict[str, PersonRow] = {}
        for _, _, person, _ in accepted:
            people[person.nik_index] = person  # later rows of the same NIK win
        existing_p = writer.existing_people(list(people))
        new_people, changed, changed_contact = [], [], []
        for index, p in people.items():
            old = existing_p.get(index)
            if old is None:
                new_people.append((
                    index, ring.active_index, crypto.encrypt(p.nik, NIK_AAD, ring),
                    p.full_name, p.birth_place, d(p.birth_date), p.sex,
                    _cipher(p.email, EMAIL_AAD, ring), _cipher(p.phone, PHONE_AAD, ring),
                    p.contact, ts, ts,
                ))
            elif old[5] != p.contact:
                changed_contact.append((
                    p.full_name, p.birth_place, d(p.birth_date), p.sex,
                    _cipher(p.email, EMAIL_AAD, ring), _cipher(p.phone, PHONE_AAD, ring),
                    p.contact, ts, old[0],
                ))
            elif old[1:5] != (p.full_name, p.birth_place, p.birth_date, p.sex):
                changed.append((p.full_name, p.birth_place, d(p.birth_date), p.sex, ts, old[0]))
        if new_people:
            writer.insert_people(new_people)
        writer.update_people(changed, changed_contact)
        changed_people = changed + changed_contact
        summary.people_added += len(new_people)
        summary.people_updated += len(changed_people)

        ids = writer.person_ids([i for i in people if i not in existing_p])
        ids.update({i: v[0] for i, v in existing_p.items()})
        new_m, changed_m = [], []
        seen: dict[str, tuple[Any, ...]] = {}
        for _, _, _, m in accepted:
            values = (m.employer, m.status, m.registered_on, m.programmes)
            old_m = existing_m.get(m.kpj)
            if m.kpj in seen:
                # Same KPJ twice for the same NIK in one chunk: the later row wins.
                if seen[m.kpj] != values:
                    changed_m.append((*values[:2], d(values[2]), values[3], ts, m.kpj))
                    seen[m.kpj] = values
                else:
                    summary.unchanged += 1
                continue
            seen[m.kpj] = values
            if old_m is None:
                new_m.append((ids[m.nik_index], m.kpj, m.employer, m.status,
                              d(m.registered_on), m.programmes, ts, ts))
            elif old_m[1:] != values:
                changed_m.append((m.employer, m.status, d(m.registered_on), m.programmes, ts,
                                  m.kpj))
            else:
                summary.unchanged += 1
        if new_m:
            writer.insert_memberships(new_m)
        if changed_m:
            writer.update_memberships(changed_m)
        summary.memberships_added += len(new_m)
        summary.memberships_updated += len(changed_m)


def _cipher(value: str, aad: bytes, ring: crypto.Keyring) -> bytes | None:
    return crypto.encrypt(value, aad, ring) if value else None


# --- export -----------------------------------------------------------------------------------


def export_csv(out: IO[str], *, programmes: bool = False, batch: int = 5000) -> int:
    """Write the registry back in the import format; returns the number of rows."""
    from kartu.registry.models import Membership

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*COLUMNS, *(OPTIONAL_COLUMNS if programmes else ())])
    ring = crypto.keyring()
    count = 0
    last = 0
    while True:
        rows = list(
            Membership.objects.select_related("person").filter(pk__gt=last).order_by("pk")[:batch]
        )
        if not rows:
            return count
        for m in rows:
            p = m.person
            writer.writerow([
                crypto.decrypt(p.nik_cipher, NIK_AAD, ring), p.full_name, p.birth_place,
                p.birth_date.isoformat(), p.sex,
                crypto.decrypt(p.email_cipher, EMAIL_AAD, ring) if p.email_cipher else "",
                crypto.decrypt(p.phone_cipher, PHONE_AAD, ring) if p.phone_cipher else "",
                m.kpj, m.employer, m.status,
                m.registered_on.isoformat() if m.registered_on else "",
                *([m.programmes] if programmes else []),
            ])
            count += 1
        last = rows[-1].pk


def iter_csv_rows(rows: Iterable[dict[str, str]], out: IO[str]) -> None:
    """Write dict rows in the import format (used by demo data and benchmarks)."""
    writer = csv.DictWriter(out, fieldnames=[*COLUMNS, *OPTIONAL_COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
