"""The rows of an import file: columns, the validation rules (:class:`RowParser`), the row types."""

from __future__ import annotations

import hashlib
import hmac
import operator
import re
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from django.utils import timezone

from kartu.core import crypto
from kartu.core.phone import InvalidPhone, normalize_phone
from kartu.registry import kpj as kpj_rules
from kartu.registry import nik as nik_rules
from kartu.registry.models import PROGRAMMES
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


def contact_key(ring: crypto.Keyring) -> bytes:
    """The key of :func:`contact_digest`, derived from the active blind-index key (it is a
    blind index of low-entropy phone numbers too, so it rotates with that key)."""
    return hashlib.sha256(b"kartu-contact" + ring.index_keys[ring.active_index]).digest()


def contact_digest(email: str, phone: str, key: bytes) -> str:
    """How the importer tells an unchanged email and phone without decrypting them."""
    return hmac.digest(key, f"{email}\x00{phone}".encode(), "sha256")[:12].hex()


_PROVINCES = frozenset(_PROVINCE_NAMES)
#: C0 control characters (NUL to US, with tab, CR and LF). None is valid in any field, and
#: PostgreSQL refuses NUL in text outright: one such row would fail its whole chunk's COPY.
_CONTROL = re.compile("[\x00-\x1f]")
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
        self.contact_key = contact_key(ring)
        positions = {name: i for i, name in enumerate(header)}
        self.pos = [positions[c] for c in COLUMNS]
        self.programmes_pos = positions.get("programmes")
        self.header = list(header)
        self.width = len(header)
        self.today = timezone.localdate()
        self.fields = operator.itemgetter(*self.pos)
        self.index_mac = _HmacSha256(self.index_key)
        self.contact_mac = _HmacSha256(self.contact_key)
        self.no_contact = contact_digest("", "", self.contact_key)
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
        :meth:`parse`: a record of printable ASCII only (so no control character); a NIK of
        exactly 16 ASCII digits; a birth date, registration date, place, employer or programme
        list memoised once the reference rule accepted it; ``L``/``P``, ``aktif``/``nonaktif``
        exactly; a phone already in one of the two usual shapes (``08…`` or ``+628…``), and so
        on. A row that fails any check is left to :meth:`parse`, which gives the exact error, or
        accepts the row with its own normalisation (stray spaces, lower case, separators in
        numbers).

        The NIK is checked against the row instead of being decoded: when its DDMMYY digits
        equal the birth date's (day + 40 for women), every birth-date rule of
        :func:`kartu.registry.nik.validate` holds, because the birth date itself was accepted
        as a real date between 1900 and today (so it is a real date in 19YY or 20YY that is not
        after today) and ``agrees_with`` holds by construction.
        """
        joined = "".join(rec)
        if len(rec) != self.width or not (joined.isascii() and joined.isprintable()):
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
        joined = "".join(rec)
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:
            raise RowError("the line is not valid UTF-8 text") from None
        if _CONTROL.search(joined):
            # Tab, CR and LF included: none belongs in these fields (a line break in a field
            # is also the usual trace of a quote left open).
            for name, value in zip(self.header, rec, strict=True):
                if _CONTROL.search(value):
                    raise RowError(f"{name}: contains control characters")
        (nik_raw, name, place, dob_raw, sex, email, phone, kpj_raw, employer, status,
         reg_raw) = (rec[i].strip() for i in self.pos)
        try:
            nik = nik_rules.validate(nik_raw, today=self.today)
        except nik_rules.InvalidNik as exc:
            raise RowError(f"nik: {_NIK_REASONS[exc.code]}") from None
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
                           contact_digest(email, phone, self.contact_key))
        return person, MembershipRow(index, kpj, employer, status, registered_on, programmes)


# Fixed reasons: the validator's own messages quote digits of the NIK (its date, its province
# code), and a reject reason is printed in the summary, to terminals and cron logs.
_NIK_REASONS: dict[str, str] = {
    "format": "may contain only digits",
    "length": "must have 16 digits",
    "province": "its first two digits are not an Indonesian province code",
    "birth_date": "its birth-date digits are not a possible date of birth",
    "serial": "its serial number (the last four digits) starts at 0001",
}


def _iso_date(raw: str, column: str) -> date:
    if len(raw) != 10 or raw[4] != "-" or raw[7] != "-":
        raise RowError(f"{column}: dates are written YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        # The value is not repeated: the summary goes to terminals and cron logs.
        raise RowError(f"{column}: not a real date (day or month out of range)") from None
