"""Registry import and export (CSV, one row per membership).

Header: ``nik,full_name,birth_place,birth_date,sex,email,phone,kpj,employer,status,registered_on``
(an optional ``programmes`` column holds space-separated codes such as ``JHT JKK JKM JP``).

The import streams the file in chunks (memory does not grow with the file), validates every row,
compares each chunk with what the registry already holds (so importing the same file twice
writes nothing, and a changed row updates its record), and writes new rows with the database's
fastest path: ``COPY`` on PostgreSQL, ``executemany`` on SQLite. A bad row never stops the run:
it goes to ``<input>.rejects.csv`` with its line number and the reason.

How it is fast
--------------
The work is split in two halves, which run in parallel for a file of two chunks or more:

* **reading** (:func:`_parse_chunks`): CSV, validation, blind index, contact digest and the
  encryption of each person (once per chunk), giving a :class:`ParsedChunk` of plain tuples
  already in the shape of the database write. Validation takes a fast path
  (:meth:`RowParser.fast`: cheap sufficient checks and memoised dates, places and
  employers) and leaves every unusual row to the reference rules of :meth:`RowParser.parse`,
  so the accepted values and the reject reasons are exactly those of the reference rules.
  Blind indexes are ``crypto.blind_index`` values and ciphertexts are in the
  ``crypto.encrypt`` format, computed with the same primitives held ready (:class:`_Sealer`);
* **writing** (:func:`_apply_chunk`): the KPJ-ownership check, the comparison with what the
  registry holds, and the bulk writes, one transaction per chunk. SQLite gets the chunk's
  tuples as ``executemany`` parameters as they are (the timestamp is a literal of the
  statement, the person id a sub-select) and a larger page cache for the import
  (:meth:`Writer.tuned`); PostgreSQL gets binary ``COPY`` with person ids taken from the
  sequence beforehand, and existence look-ups that always use the unique indexes.

The reading half runs in a forked worker process (:class:`_WorkerChunks`) that streams the
chunks through a pipe, one ahead: while the database takes chunk N the worker parses chunk
N+1. Both paths run the same generator with the same chunk boundaries, so the chunks, the
rejects and their order, the counts and the registry are the same with or without the worker
(a test compares them); files under about two chunks are read in this process.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import hmac
import marshal
import multiprocessing
import operator
import os
import pickle
import signal
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, NamedTuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import connection, transaction
from django.utils import timezone

from kartu.core import crypto
from kartu.core.phone import InvalidPhone, normalize_phone
from kartu.registry import kpj as kpj_rules
from kartu.registry import nik as nik_rules
from kartu.registry.models import EMAIL_AAD, NIK_AAD, PHONE_AAD, PROGRAMMES
from kartu.registry.regions import PROVINCES as _PROVINCE_NAMES

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


_PROVINCES = frozenset(_PROVINCE_NAMES)
_CACHE_LIMIT = 100_000  # entries per memo dict below; cleared when reached (bounded memory)


class _HmacSha256:
    """HMAC-SHA256 under one fixed key, with the padded key blocks hashed once.

    ``hmac.digest`` re-derives the inner and outer key blocks on every call; copying two
    pre-fed SHA-256 states is about twice as fast. The result is byte-for-byte RFC 2104
    HMAC-SHA256 (a test compares it with ``hmac.digest`` and ``crypto.blind_index``).
    """

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        block = key.ljust(64, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def digest(self, msg: bytes) -> bytes:
        inner = self.inner.copy()
        inner.update(msg)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()


# What RowParser.fast returns for a clean row: blind index, NIK, name, place, birth date
# (date, ISO text, NIK DDMMYY for L, for P), sex, email, phone, contact digest, KPJ, employer,
# status, registration date (date, ISO text) or None, programmes.
BirthDate = tuple[date, str, str, str]
FastRow = tuple[str, str, str, str, BirthDate, str, str, str, str, str, str, str,
                tuple[date, str] | None, str]


class RowParser:
    """Turns one CSV record into (PersonRow, MembershipRow) or raises RowError.

    :meth:`parse` is the reference statement of the rules. :meth:`fast` is the same rules for
    the ordinary row, about three times faster, and declines (returns ``None``) whenever it is
    not sure; :meth:`parse_fast` combines the two and always returns what :meth:`parse` returns.
    """

    def __init__(self, header: list[str], ring: crypto.Keyring) -> None:
        self.ring = ring
        self.index_key = ring.index_keys[ring.active_index]
        self.contact_key = hashlib.sha256(b"kartu-contact" + self.index_key).digest()
        positions = {name: i for i, name in enumerate(header)}
        self.pos = [positions[c] for c in COLUMNS]
        self.programmes_pos = positions.get("programmes")
        self.width = len(header)
        self.today = timezone.localdate()
        self.fields = operator.itemgetter(*self.pos)
        self.index_mac = _HmacSha256(self.index_key)
        self.contact_mac = _HmacSha256(self.contact_key)
        self.no_contact = _contact_digest("", "", self.contact_key)
        # Memos of the fast path, keyed by the raw field. Only values that the reference rules
        # accept are stored, so a hit means "parse() would give exactly this". Each is cleared
        # when it reaches _CACHE_LIMIT entries, so memory stays bounded on any input.
        self.birth_dates: dict[str, BirthDate] = {}
        self.dates: dict[str, tuple[date, str]] = {}
        self.words: dict[str, str] = {}
        self.programme_sets: dict[str, str] = {}

    def parse_fast(self, rec: list[str]) -> tuple[PersonRow, MembershipRow]:
        """Exactly :meth:`parse` (same rows, same values, same errors), faster."""
        row = self.fast(rec)
        if row is None:
            return self.parse(rec)
        (index, nik, name, place, birth, sex, email, phone, contact, kpj, employer, status,
         reg, programmes) = row
        person = PersonRow(index, nik, name, place, birth[0], sex, email, phone, contact)
        return person, MembershipRow(index, kpj, employer, status, reg[0] if reg else None,
                                     programmes)

    def fast(self, rec: list[str]) -> FastRow | None:
        """The row's values when it is clean, ``None`` when :meth:`parse` must decide.

        Every check here is a *sufficient* condition for the corresponding rule of
        :meth:`parse`: an ASCII-only record; a NIK of exactly 16 ASCII digits; a birth date,
        registration date, place, employer or programme list memoised once the reference rule
        accepted it; ``L``/``P``, ``aktif``/``nonaktif`` exactly; a phone already in one of the
        two usual shapes (``08…`` or ``+628…``), and so on. A row that fails any check is left
        to :meth:`parse`, which gives the exact error, or accepts the row with its own
        normalisation (stray spaces, lower case, separators in numbers).

        The NIK is checked against the row instead of being decoded: when its DDMMYY digits
        equal the birth date's (day + 40 for women), every birth-date rule of
        :func:`kartu.registry.nik.validate` holds, because the birth date itself was accepted
        as a real date between 1900 and today (so it is a real date in 19YY or 20YY that is not
        after today) and ``agrees_with`` holds by construction.
        """
        if len(rec) != self.width or not "".join(rec).isascii():
            return None
        (nik, name, place, dob_raw, sex, email, phone, kpj, employer, status,
         reg_raw) = self.fields(rec)
        if not (len(nik) == 16 and nik.isdigit() and nik[:2] in _PROVINCES
                and nik[12:] != "0000"):
            return None
        birth = self.birth_dates.get(dob_raw)
        if birth is None:
            birth = self._birth_date(dob_raw)
            if birth is None:
                return None
        # The literals (not the row's own strings) are returned for sex and status, so that
        # a chunk sent from the worker carries one shared object instead of one per row.
        if sex == "L":
            if nik[6:12] != birth[2]:
                return None
            sex = "L"
        elif sex == "P":
            if nik[6:12] != birth[3]:
                return None
            sex = "P"
        else:
            return None
        name = " ".join(name.split())
        if not name or len(name) > 200:
            return None
        words = self.words
        place_n = words.get(place)
        if place_n is None:
            place_n = self._words(place)
        if not place_n or len(place_n) > 100:
            return None
        if email:
            email = email.strip().lower()
            local, at, domain = email.partition("@")
            if not (at and local and "." in domain) or " " in email or len(email) > 254:
                return None
        if phone:
            # normalize_phone's result for the two usual shapes; anything else goes to it.
            if phone[0] == "0" and phone.isdigit() and 8 <= len(phone) <= 14 and phone[1] != "0":
                phone = "+62" + phone[1:]
            elif not (phone[:3] == "+62" and phone[1:].isdigit() and 10 <= len(phone) <= 16):
                return None
        if not (len(kpj) == 11 and kpj.isdigit()):
            return None
        employer_n = words.get(employer)
        if employer_n is None:
            employer_n = self._words(employer)
        if len(employer_n) > 200:
            return None
        if status == "aktif":
            status = "aktif"
        elif status == "nonaktif":
            status = "nonaktif"
        else:
            return None
        reg = None
        if reg_raw:
            reg = self.dates.get(reg_raw)
            if reg is None:
                reg = self._date(reg_raw)
                if reg is None:
                    return None
        programmes = ""
        if self.programmes_pos is not None:
            raw = rec[self.programmes_pos]
            found = self.programme_sets.get(raw)
            if found is None:
                found = self._programmes(raw)
                if found is None:
                    return None
            programmes = found
        index = self.index_mac.digest(nik.encode())[:16].hex()
        contact = (self.contact_mac.digest(f"{email}\x00{phone}".encode())[:12].hex()
                   if email or phone else self.no_contact)
        return (index, nik, name, place_n, birth, sex, email, phone, contact, kpj, employer_n,
                status, reg, programmes)

    def slow(self, rec: list[str]) -> FastRow:
        """:meth:`parse` (raises RowError) with its result in the shape of :meth:`fast`."""
        p, m = self.parse(rec)
        reg = (m.registered_on, m.registered_on.isoformat()) if m.registered_on else None
        return (p.nik_index, p.nik, p.full_name, p.birth_place,
                (p.birth_date, p.birth_date.isoformat(), "", ""), p.sex, p.email, p.phone,
                p.contact, m.kpj, m.employer, m.status, reg, m.programmes)

    def _birth_date(self, raw: str) -> BirthDate | None:
        """Memoise a birth date that :meth:`parse` accepts, with its NIK DDMMYY for L and P."""
        if len(raw) != 10:
            return None
        try:
            dob = _iso_date(raw, "birth_date")
        except RowError:
            return None
        if dob > self.today or dob.year < 1900:
            return None
        mmyy = f"{dob.month:02d}{dob.year % 100:02d}"
        found = (dob, dob.isoformat(), f"{dob.day:02d}{mmyy}",
                 f"{dob.day + nik_rules.FEMALE_DAY_OFFSET:02d}{mmyy}")
        if len(self.birth_dates) >= _CACHE_LIMIT:
            self.birth_dates.clear()
        self.birth_dates[raw] = found
        return found

    def _date(self, raw: str) -> tuple[date, str] | None:
        if len(raw) != 10:
            return None
        try:
            value = _iso_date(raw, "registered_on")
        except RowError:
            return None
        if len(self.dates) >= _CACHE_LIMIT:
            self.dates.clear()
        found = self.dates[raw] = (value, value.isoformat())
        return found

    def _words(self, raw: str) -> str:
        """Whitespace collapsed, as :meth:`parse` does for names, places and employers."""
        value = " ".join(raw.split())
        if len(self.words) >= _CACHE_LIMIT:
            self.words.clear()
        self.words[raw] = value
        return value

    def _programmes(self, raw: str) -> str | None:
        codes = raw.replace(",", " ").replace(";", " ").upper().split()
        if any(c not in PROGRAMMES for c in codes):
            return None
        value = " ".join(c for c in PROGRAMMES if c in codes)
        if len(self.programme_sets) >= _CACHE_LIMIT:
            self.programme_sets.clear()
        self.programme_sets[raw] = value
        return value

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


# --- reading: the file as chunks of rows ready to write ---------------------------------------


class ParsedChunk(NamedTuple):
    """Up to ``chunk_size`` accepted rows, and everything read since the previous chunk.

    ``members[i]`` and ``people[i]`` are the i-th accepted row in the shape the database write
    takes (see :func:`_parse_chunks`) and ``lines[i]`` its line number. ``rejects`` are the
    rows rejected while reading, in file order, all before the chunk's last accepted row.
    ``position`` is the byte offset reached in the file (for the progress bar).
    """

    rows: int
    position: int
    rejects: list[tuple[int, str, list[str]]]
    lines: list[int]
    members: list[tuple[Any, ...]]
    people: list[tuple[Any, ...]]
    repeats: bool  # a KPJ occurs more than once among the accepted rows


class _Sealer:
    """:func:`kartu.core.crypto.encrypt` for many values, with the same ciphertext layout.

    The layout prefix (format byte, key-id length, key id) is taken from a real
    ``crypto.encrypt`` result, so :func:`kartu.core.crypto.decrypt` reads every ciphertext made
    here. Nonces are random 96-bit values as there, drawn from ``os.urandom`` 1,024 at a time.
    A sealer must be used in one process only (it is created inside :func:`_parse_chunks`, in
    the process that parses): a buffer of nonces copied by ``fork`` into two processes that
    both encrypt would repeat nonces. As a second guard the buffer is refilled, never reused,
    when the process id changes.
    """

    def __init__(self, ring: crypto.Keyring) -> None:
        sample = crypto.encrypt("", b"", ring)
        self.prefix = sample[: 2 + sample[1]]
        self.aead = AESGCM(ring.field_keys[ring.active_field])
        self.nonces: list[bytes] = []
        self.pid = 0

    def seal(self, value: str, aad: bytes) -> bytes:
        nonces = self.nonces
        if not nonces or self.pid != os.getpid():
            block = os.urandom(12 * 1024)
            nonces[:] = [block[i : i + 12] for i in range(0, len(block), 12)]
            self.pid = os.getpid()
        nonce = nonces.pop()
        return b"".join((self.prefix, nonce, self.aead.encrypt(nonce, value.encode(), aad)))


# PostgreSQL binary COPY: file header, per-row field count, NULL, and fixed-size field headers.
_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_PG_COPY_TRAILER = b"\xff\xff"
_PG_NULL = b"\xff\xff\xff\xff"
_PG_DATE_EPOCH = date(2000, 1, 1)
_PG_TIME_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_int4 = struct.Struct(">i").pack
_int8 = struct.Struct(">q").pack


def _pg_text(value: str) -> bytes:
    """A text/varchar field of binary COPY (the connection's encoding is UTF-8)."""
    data = value.encode()
    return _int4(len(data)) + data


def _pg_bytes(value: bytes | None) -> bytes:
    return _PG_NULL if value is None else _int4(len(value)) + value


def _pg_date(iso: str) -> bytes:
    return b"\0\0\0\4" + _int4((date.fromisoformat(iso) - _PG_DATE_EPOCH).days)


def _bounded_memo(convert: Callable[[str], bytes]) -> Callable[[str], bytes]:
    """``convert`` memoised per value, the memo emptied whenever it reaches _CACHE_LIMIT."""
    memo: dict[str, bytes] = {}

    def cached(value: str) -> bytes:
        found = memo.get(value)
        if found is None:
            if len(memo) >= _CACHE_LIMIT:
                memo.clear()
            found = memo[value] = convert(value)
        return found

    return cached


def _parse_chunks(
    src: Path, parser: RowParser, chunk_size: int, vendor: str
) -> Iterator[ParsedChunk]:
    """Read ``src`` (after its header) and yield it as :class:`ParsedChunk` s.

    A chunk ends when it holds ``chunk_size`` accepted rows, as in the original one-row-at-a-
    time loop, so the chunks (and with them the KPJ checks, the "later row wins" rule and the
    counts) do not depend on whether this runs in a worker process or not.

    Row shapes:

    * person: ``(nik_index, nik_index_kid, nik_cipher, full_name, birth_place, birth_date,
      sex, email_cipher, phone_cipher, contact_digest)`` - the parameters of the SQLite
      ``INSERT`` as they are - plus, for PostgreSQL, the same row as binary ``COPY`` fields.
      A person is encrypted once per chunk: rows of the same NIK with the same values share
      one tuple (the usual case of several memberships), which then also crosses the pipe
      once (marshal sends a shared object once);
    * membership: ``(nik_index, kpj, employer, status, registered_on, programmes)`` plus, for
      PostgreSQL, its binary ``COPY`` fields but the person id and the timestamps.

    Dates travel as ISO text. Malformed CSV, blank lines and bad rows are handled as before:
    a malformed record is a reject with no fields, a blank line is skipped, a bad row is a
    reject with its fields and the reason from :meth:`RowParser.parse`.
    """
    sqlite = vendor == "sqlite"
    seal = _Sealer(parser.ring).seal
    fast, slow = parser.fast, parser.slow
    index_kid = parser.ring.active_index
    # Binary COPY fields that repeat: memoised per value (bounded: see _CACHE_LIMIT).
    field = _bounded_memo(_pg_text)
    date_field = _bounded_memo(_pg_date)

    kid_field = _pg_text(index_kid)
    with open(src, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        next(reader, None)  # the header, checked by the caller
        rows = 0
        rejects: list[tuple[int, str, list[str]]] = []
        line_nos: list[int] = []
        members: list[tuple[Any, ...]] = []
        people: list[tuple[Any, ...]] = []
        persons: dict[str, tuple[Any, ...]] = {}
        kpjs: set[str] = set()
        repeats = False
        while True:
            start = reader.line_num + 1
            try:
                rec = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                rejects.append((start, f"malformed CSV: {exc}", []))
                continue
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue  # blank line
            rows += 1
            row = fast(rec)
            if row is None:
                try:
                    row = slow(rec)
                except RowError as exc:
                    rejects.append((start, str(exc), rec))
                    continue
            (index, nik, name, place, birth, sex, email, phone, contact, kpj, employer, status,
             reg, programmes) = row
            dob = birth[1]
            person = persons.get(index)
            if (person is None or person[3] != name or person[4] != place or person[5] != dob
                    or person[6] != sex or person[9] != contact):
                nik_c = seal(nik, NIK_AAD)
                email_c = seal(email, EMAIL_AAD) if email else None
                phone_c = seal(phone, PHONE_AAD) if phone else None
                if sqlite:
                    person = (index, index_kid, nik_c, name, place, dob, sex, email_c, phone_c,
                              contact)
                else:
                    person = (index, index_kid, nik_c, name, place, dob, sex, email_c, phone_c,
                              contact, b"".join((
                                  b"\0\0\0\x20", index.encode(), kid_field, _pg_bytes(nik_c),
                                  _pg_text(name), field(place), date_field(dob), field(sex),
                                  _pg_bytes(email_c), _pg_bytes(phone_c),
                                  b"\0\0\0\x18", contact.encode(),
                              )))
                persons[index] = person
            reg_text = reg[1] if reg is not None else None
            if sqlite:
                members.append((index, kpj, employer, status, reg_text, programmes))
            else:
                members.append((index, kpj, employer, status, reg_text, programmes, b"".join((
                    b"\0\0\0\x0b", kpj.encode(), field(employer), field(status),
                    _PG_NULL if reg_text is None else date_field(reg_text), field(programmes),
                ))))
            people.append(person)
            line_nos.append(start)
            if kpj in kpjs:
                repeats = True
            else:
                kpjs.add(kpj)
            if len(members) >= chunk_size:
                yield ParsedChunk(rows, os.lseek(fh.fileno(), 0, os.SEEK_CUR), rejects,
                                  line_nos, members, people, repeats)
                rows = 0
                rejects, line_nos, members, people = [], [], [], []
                persons = {}
                kpjs = set()
                repeats = False
        if rows or rejects:
            yield ParsedChunk(rows, os.lseek(fh.fileno(), 0, os.SEEK_CUR), rejects, line_nos,
                              members, people, repeats)


class _SourceRecords:
    """The file's records read again, forward only, for the rare reject found while writing.

    A row whose KPJ turns out to belong to another NIK is rejected by the writing half, which
    no longer holds the row's fields (sending them along for every row would cost more than
    the rest of the transfer). So they are read again here, with the same reader settings and
    line numbering as the first pass; such rejects come in increasing line order, so one
    forward pass over the file serves them all. The record found is checked to be the same
    row (same blind index and KPJ): should the file have changed during the import, that is
    an error rather than a wrong reject.
    """

    def __init__(self, src: Path, parser: RowParser) -> None:
        self.src = src
        self.parser = parser
        self.fh: IO[str] | None = None
        self.reader: Any = None

    def get(self, line: int, index: str, kpj: str) -> list[str]:
        if self.reader is None:
            self.fh = open(self.src, encoding="utf-8-sig", errors="surrogateescape",  # noqa: SIM115
                           newline="")
            self.reader = csv.reader(self.fh, strict=True)
            next(self.reader, None)
        while True:
            start = self.reader.line_num + 1
            try:
                rec: list[str] = next(self.reader)
            except StopIteration:
                break
            except csv.Error:
                continue
            if start < line:
                continue
            if start == line:
                try:
                    _, membership = self.parser.parse_fast(rec)
                except RowError:
                    break
                if (membership.nik_index, membership.kpj) == (index, kpj):
                    return rec
            break
        raise ImportFileError(f"{self.src}: line {line} changed during the import")

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


class _WorkerChunks:
    """:func:`_parse_chunks` run in a forked worker process; iterate to receive its chunks.

    The worker is forked, so it inherits the parser (and with it the keys) in memory: nothing
    secret is pickled or put on a command line. It needs no database and never touches the
    inherited connection. Each chunk is serialised with :mod:`marshal` (plain tuples, lists,
    strings, bytes and ints; about twice as fast as pickle both ways) and sent through a
    one-way pipe; the worker blocks in ``send`` until this process has taken the previous
    chunk, so at most about two chunks are in flight and memory stays bounded. Chunks arrive
    in file order (one worker, one pipe).

    Errors: an exception in the worker is sent over (pickled) and raised here. ``close()``
    (always called, also on Ctrl-C or a database error here) closes the pipe and stops the
    worker if it is still running; the worker ignores SIGINT so that Ctrl-C is handled here
    only, and it exits by itself if this process goes away (its next ``send`` fails).
    """

    def __init__(self, make: Callable[[], Iterator[ParsedChunk]]) -> None:
        ctx = multiprocessing.get_context("fork")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # else the child would flush the same buffered text again
        self.conn, child_end = ctx.Pipe(duplex=False)
        self.done = False
        self.proc = ctx.Process(target=_worker_main, args=(make, child_end, self.conn),
                                name="kartu-import-reader", daemon=True)
        self.proc.start()
        child_end.close()

    def __iter__(self) -> Iterator[ParsedChunk]:
        while True:
            try:
                data = self.conn.recv_bytes()
            except EOFError:
                self.proc.join(1)
                raise RuntimeError(
                    f"the import's reader process stopped unexpectedly "
                    f"(exit code {self.proc.exitcode})"
                ) from None
            kind, body = data[:1], memoryview(data)[1:]
            if kind == b"C":
                yield ParsedChunk(*marshal.loads(body))  # noqa: S302 - from our own child
            elif kind == b"D":
                self.done = True
                return
            else:
                raise pickle.loads(body)  # noqa: S301 - our own child, through a pipe

    def close(self) -> None:
        self.conn.close()
        if not self.done and self.proc.is_alive():
            self.proc.terminate()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def _worker_main(make: Callable[[], Iterator[ParsedChunk]], conn: Any, parent_end: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    parent_end.close()
    try:
        for chunk in make():
            conn.send_bytes(b"C" + marshal.dumps(tuple(chunk), 4))
        conn.send_bytes(b"D")
    except (BrokenPipeError, ConnectionResetError):
        return  # the parent stopped listening
    except BaseException as exc:  # every failure is reported to the parent
        try:
            data = pickle.dumps(exc)
            pickle.loads(data)  # noqa: S301 - checks that the exception survives the trip
        except Exception:
            data = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
        with contextlib.suppress(OSError):
            conn.send_bytes(b"E" + data)
    finally:
        conn.close()


# --- writing ----------------------------------------------------------------------------------


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
        """Connection settings for a bulk import (SQLite), restored afterwards.

        * ``cache_size`` 64 MiB instead of SQLite's 2 MiB: a chunk inserts some 15,000 random
          blind indexes, and at a million people the index they go into no longer fits the
          default cache, so every chunk would read most of it again;
        * ``wal_autocheckpoint`` 20,000 pages (80 MiB) instead of 1,000: each chunk's commit
          writes those index pages to the WAL, and checkpointing after every commit copies
          the same pages into the database again and again.

        Both are settings of this connection only (other connections are not affected) and
        are put back at the end, followed by a PASSIVE checkpoint (it never waits for readers
        or writers) so that the next commit elsewhere does not inherit a large one. Together
        they make a one-million-row import about 20 % faster. PostgreSQL: nothing to do.
        """
        if self.vendor != "sqlite":
            yield
            return
        def pragma(name: str) -> int:
            return int(self.raw.execute(f"PRAGMA {name}").fetchone()[0])

        cache, pages = pragma("cache_size"), pragma("wal_autocheckpoint")
        cache_bytes = -cache * 1024 if cache < 0 else cache * pragma("page_size")
        if cache_bytes < 64 << 20:
            self.raw.execute("PRAGMA cache_size=-65536")
        if 0 < pages < 20000:  # 0 or less: automatic checkpoints are off, leave them off
            self.raw.execute("PRAGMA wal_autocheckpoint=20000")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # best effort: never hide the import's error
                self.raw.execute(f"PRAGMA cache_size={cache}")
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
        cols = self.PERSON_COLUMNS
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
        return dict(self._lookup("registry_person", "nik_index", "id", indexes))

    def insert_memberships(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert complete rows (person id first, Python values); used by the benchmarks."""
        cols = self.MEMBERSHIP_COLUMNS
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
        self.position = 0
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                            desc="import", file=sys.stderr, mininterval=0.5)

    def advance_to(self, position: int) -> None:
        if self.bar is not None and position > self.position:
            self.bar.update(position - self.position)
            self.position = position

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def rejects_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


#: Files smaller than this many bytes per row of a chunk, times two chunks, are read in this
#: process: below about two chunks the worker has nothing to overlap and its start-up is waste.
_BYTES_PER_ROW_ESTIMATE = 100


def import_csv(
    path: str | os.PathLike[str],
    *,
    progress: bool | None = None,
    chunk_size: int = CHUNK,
    max_listed_rejects: int = 10,
    parallel: bool | None = None,
) -> ImportSummary:
    """Import a registry CSV; see the module docstring.

    ``parallel``: read and validate in a worker process while this one writes (``True``), in
    this process (``False``), or decide by file size (``None``: a worker for files of about
    two chunks or more, where ``fork`` is available). The result is the same either way.
    """
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
    with open(src, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh, open(
        summary.rejects_path, "w", encoding="utf-8", errors="surrogateescape", newline=""
    ) as rej_fh:
        header = _read_header(csv.reader(fh, strict=True), src)
        rejects = csv.writer(rej_fh)
        rejects.writerow(["line", "reason", *header])
        parser = RowParser(header, ring)
        writer = Writer()

        def reject(line: int, reason: str, rec: list[str]) -> None:
            summary.rejected += 1
            rejects.writerow([line, reason, *rec])
            if len(summary.first_rejects) < max_listed_rejects:
                summary.first_rejects.append(f"line {line}: {reason}")

        if parallel is None:
            parallel = src.stat().st_size >= 2 * chunk_size * _BYTES_PER_ROW_ESTIMATE
        parallel = parallel and "fork" in multiprocessing.get_all_start_methods()

        def chunks() -> Iterator[ParsedChunk]:
            return _parse_chunks(src, parser, chunk_size, writer.vendor)

        with contextlib.ExitStack() as stack:
            # The worker is forked first, before the progress bar starts tqdm's thread.
            worker = _WorkerChunks(chunks) if parallel else None
            if worker is not None:
                stack.callback(worker.close)
            bar = _Progress(src, sys.stderr.isatty() if progress is None else progress)
            stack.callback(bar.close)
            sources = _SourceRecords(src, parser)
            stack.callback(sources.close)
            stack.enter_context(writer.tuned())
            for chunk in worker if worker is not None else chunks():
                summary.rows += chunk.rows
                for line, reason, rec in chunk.rejects:
                    reject(line, reason, rec)
                if chunk.members:
                    _apply_chunk(chunk, writer, summary, reject, sources)
                bar.advance_to(chunk.position)
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


def _apply_chunk(
    chunk: ParsedChunk,
    writer: Writer,
    summary: ImportSummary,
    reject: Callable[[int, str, list[str]], None],
    sources: _SourceRecords,
) -> None:
    """Write one chunk in one transaction.

    The rules are those of the original row-by-row version: a KPJ that the registry or an
    earlier row of the chunk gives to another NIK is a reject; the last accepted row of a NIK
    gives its person values; new people and memberships are inserted, changed ones updated,
    the rest counted unchanged. The common case of a first import - no KPJ known yet and none
    repeated in the chunk - skips the per-row loops and hands the chunk's own tuples to the
    bulk insert.
    """
    when = timezone.now()
    now, ts = writer.stamps(when)
    members, people_rows = chunk.members, chunk.people
    with transaction.atomic():
        # The people of every row are looked up first (a rejected row's person is looked up for
        # nothing, which is harmless), so that the memberships need no join: a KPJ's owner is
        # compared by person id, which stands for exactly one blind index.
        existing_p = writer.existing_people(list(dict.fromkeys([m[0] for m in members])))
        existing_m = writer.existing_memberships([m[1] for m in members])
        check_kpjs = bool(existing_m) or chunk.repeats
        if check_kpjs:
            # KPJs repeated inside the chunk: the first owner wins; another NIK is a reject.
            kpj_owner: dict[str, str] = {}
            keep: list[int] = []
            for i, m in enumerate(members):
                kpj, index = m[1], m[0]
                old_m = existing_m.get(kpj)
                if old_m is not None:
                    mine = existing_p.get(index)
                    taken = mine is None or mine[0] != old_m[0]
                else:
                    owner = kpj_owner.get(kpj)
                    taken = owner is not None and owner != index
                if taken:
                    line = chunk.lines[i]
                    reject(line, "kpj: this KPJ already belongs to another NIK",
                           sources.get(line, index, kpj))
                    continue
                kpj_owner[kpj] = index
                keep.append(i)
            if len(keep) < len(members):
                members = [members[i] for i in keep]
                people_rows = [people_rows[i] for i in keep]

        people = {p[0]: p for p in people_rows}  # later rows of the same NIK win
        changed: list[tuple[Any, ...]] = []
        changed_contact: list[tuple[Any, ...]] = []
        if existing_p:
            new_people = []  # (existing_p may also hold people of rejected rows)
            for index, p in people.items():
                old = existing_p.get(index)
                if old is None:
                    new_people.append(p)
                elif old[5] != p[9]:
                    changed_contact.append((*p[3:10], now, old[0]))
                elif old[1:5] != p[3:7]:
                    changed.append((*p[3:7], now, old[0]))
        else:
            new_people = list(people.values())
        ids = writer.add_people(new_people, when, ts) if new_people else {}
        writer.update_people(changed, changed_contact)
        summary.people_added += len(new_people)
        summary.people_updated += len(changed) + len(changed_contact)

        if writer.vendor == "postgresql":
            ids.update({i: v[0] for i, v in existing_p.items()})
        changed_m: list[tuple[Any, ...]] = []
        if check_kpjs:
            new_m = []
            seen: dict[str, tuple[Any, ...]] = {}
            for m in members:
                kpj = m[1]
                values = m[2:6]  # employer, status, registered_on, programmes
                if kpj in seen:
                    # Same KPJ twice for the same NIK in one chunk: the later row wins.
                    if seen[kpj] != values:
                        changed_m.append((*values, now, kpj))
                        seen[kpj] = values
                    else:
                        summary.unchanged += 1
                    continue
                seen[kpj] = values
                old_m = existing_m.get(kpj)
                if old_m is None:
                    new_m.append(m)
                elif old_m[1:] != values:
                    changed_m.append((*values, now, kpj))
                else:
                    summary.unchanged += 1
        else:
            new_m = members
        if new_m:
            writer.add_memberships(new_m, when, ts, ids)
        if changed_m:
            writer.update_memberships(changed_m)
        summary.memberships_added += len(new_m)
        summary.memberships_updated += len(changed_m)


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
