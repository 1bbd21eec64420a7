"""NIK (Nomor Induk Kependudukan): the 16-digit Indonesian national identity number.

Layout (Dukcapil, the civil-registration service of the Home Ministry)::

    PP RR SS DDMMYY NNNN
    |  |  |  |      `-- serial number, assigned by the system, starting at 0001
    |  |  |  `-- date of birth; DD + 40 for women (41-71), YY = last two digits of the year
    |  |  `-- district (kecamatan) code  \
    |  `-- regency / city code            > where the NIK was first registered (never changes)
    `-- province code                    /

There is no check digit. We deliberately do not use ``stdnum.id.nik``: it knows only 33
statistics-bureau province codes (it rejects real NIKs from 65 Kalimantan Utara and from the
Papua provinces 92-96), accepts day fields 81-99, accepts serial 0000, and resolves the century
to 19YY first (a child born in 2005 comes back as born in 1905).

Our rules (:func:`validate`), checked in this order, each with its :attr:`InvalidNik.code`:

``format``
    after :func:`compact`, only ASCII digits remain.
``length``
    exactly 16 digits.
``province``
    the first two digits are one of the 38 Kemendagri provinces. The regency and district
    are *not* checked - see :mod:`kartu.registry.regions` for why.
``birth_date``
    DD is 01-31 (men) or 41-71 (women) - 00, 32-40 and 72-99 are rejected; MM is 01-12; the day
    exists in that month in 19YY or 20YY (29 February with YY=00 exists, in 2000); and the
    date resolved by :meth:`Nik.birth_date` is not after ``today``.
``serial``
    the last four digits are not 0000.

Passing these checks means "well formed", not "exists": only a Dukcapil lookup proves that.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

from kartu.registry.regions import is_known_province, province_name, regency_name

__all__ = [
    "FEMALE",
    "MALE",
    "InvalidNik",
    "Nik",
    "Sex",
    "compact",
    "is_valid",
    "make_nik",
    "mask",
    "validate",
]

Sex = Literal["L", "P"]
#: Sex codes as printed on the KTP (identity card): L = laki-laki (male), P = perempuan (female).
MALE: Final = "L"
FEMALE: Final = "P"

#: Added to the day of birth of women.
FEMALE_DAY_OFFSET: Final = 40
LENGTH: Final = 16

InvalidNikCode = Literal["format", "length", "province", "birth_date", "serial"]

# Whitespace (including NBSP and friends), dots and the dash family are just separators that
# people and OCR put between digit groups: "3171.0117-0845 0001".
_SEPARATORS = re.compile(r"[\s.\-\u2010-\u2015\u2212]+")
_DIGITS = re.compile(r"[0-9]+")


class InvalidNik(ValueError):
    """A value that is not a well-formed NIK. ``code`` says which rule failed."""

    def __init__(self, code: InvalidNikCode, message: str) -> None:
        super().__init__(message)
        self.code: InvalidNikCode = code


def compact(value: str) -> str:
    """Remove separators (whitespace, dots, dashes) anywhere in ``value``."""
    return _SEPARATORS.sub("", value)


def _normalize_sex(sex: str) -> Sex:
    code = sex.strip().upper()
    if code == MALE:
        return "L"
    if code == FEMALE:
        return "P"
    raise ValueError(f"sex must be 'L' (male) or 'P' (female), not {sex!r}")


def _day_exists(year: int, month: int, day: int) -> bool:
    return 1 <= day <= calendar.monthrange(year, month)[1]


def _resolve_birth_date(day: int, month: int, yy: int, today: date) -> date | None:
    """Most recent date ``day/month/??yy`` that exists and is not after ``today``."""
    century = today.year - today.year % 100
    for base in (century, century - 100, century - 200):
        year = base + yy
        if 1 <= year <= today.year and _day_exists(year, month, day):
            candidate = date(year, month, day)
            if candidate <= today:
                return candidate
    return None


@dataclass(frozen=True, slots=True, repr=False)
class Nik:
    """A validated NIK split into its parts (build it with :func:`validate`).

    ``province``, ``regency`` and ``district`` are cumulative codes (2, 4 and 6 digits), so that
    ``regency`` can be looked up directly in :data:`kartu.registry.regions.REGENCIES`.
    ``birth_day`` is the real day (the +40 of women already removed). ``repr()`` masks the
    number so that a NIK never lands in a log by accident; use ``.value`` for the digits.
    """

    value: str
    province: str
    regency: str
    district: str
    birth_day: int
    birth_month: int
    birth_yy: int
    sex: Sex
    serial: int

    def __repr__(self) -> str:
        return f"Nik({mask(self.value)!r})"

    @property
    def province_name(self) -> str | None:
        return province_name(self.province)

    @property
    def regency_name(self) -> str | None:
        """Regency/city of first registration, if the code is in our table."""
        return regency_name(self.regency)

    def birth_date(self, today: date | None = None) -> date:
        """Date of birth, taking the most recent century that does not put it in the future.

        With ``today`` in 2026: YY=05 gives 2005, YY=45 gives 1945, YY=26 gives 2026 if that
        day has passed and 1926 otherwise. The NIK cannot tell a centenarian from a newborn, so
        prefer the date of birth on record when there is one (see :meth:`agrees_with`).
        """
        today = today or date.today()  # noqa: DTZ011 - a calendar date, callers may pass one
        resolved = _resolve_birth_date(self.birth_day, self.birth_month, self.birth_yy, today)
        if resolved is None:
            raise InvalidNik("birth_date", "The NIK's date of birth cannot be placed before today.")
        return resolved

    def agrees_with(self, birth_date: date, sex: str) -> bool:
        """Whether the NIK's DDMMYY and sex encoding match a recorded date of birth and sex.

        The century is taken from ``birth_date``; only its last two digits are compared.
        ``sex`` is ``'L'`` or ``'P'`` (case-insensitive); anything else raises ``ValueError``.
        """
        return (
            _normalize_sex(sex) == self.sex
            and birth_date.day == self.birth_day
            and birth_date.month == self.birth_month
            and birth_date.year % 100 == self.birth_yy
        )


def validate(value: str, *, today: date | None = None) -> Nik:
    """Check ``value`` against the NIK rules above and return its parts.

    Raises :class:`InvalidNik` (a ``ValueError``) with ``code`` set to the failed rule.
    """
    number = compact(value)
    if not _DIGITS.fullmatch(number):
        raise InvalidNik("format", "A NIK may contain only digits.")
    if len(number) != LENGTH:
        raise InvalidNik("length", f"A NIK has 16 digits; this one has {len(number)}.")
    province = number[:2]
    if not is_known_province(province):
        raise InvalidNik("province", f"{province} is not an Indonesian province code.")

    raw_day, month, yy = int(number[6:8]), int(number[8:10]), int(number[10:12])
    sex: Sex
    if 1 <= raw_day <= 31:
        day = raw_day
        sex = "L"
    elif 1 + FEMALE_DAY_OFFSET <= raw_day <= 31 + FEMALE_DAY_OFFSET:
        day = raw_day - FEMALE_DAY_OFFSET
        sex = "P"
    else:
        raise InvalidNik(
            "birth_date",
            f"The day of birth in a NIK is 01-31 for men or 41-71 for women, not {raw_day:02d}.",
        )
    if not 1 <= month <= 12:
        raise InvalidNik("birth_date", f"The month of birth in a NIK is 01-12, not {month:02d}.")
    if not (_day_exists(1900 + yy, month, day) or _day_exists(2000 + yy, month, day)):
        raise InvalidNik("birth_date", f"{day:02d}-{month:02d}-{yy:02d} is not a real date.")
    if _resolve_birth_date(day, month, yy, today or date.today()) is None:  # noqa: DTZ011
        raise InvalidNik("birth_date", "The NIK's date of birth cannot be placed before today.")

    serial = int(number[12:])
    if serial == 0:
        raise InvalidNik("serial", "A NIK's serial number (last four digits) starts at 0001.")

    return Nik(
        value=number,
        province=province,
        regency=number[:4],
        district=number[:6],
        birth_day=day,
        birth_month=month,
        birth_yy=yy,
        sex=sex,
        serial=serial,
    )


def is_valid(value: str, *, today: date | None = None) -> bool:
    """Whether :func:`validate` accepts ``value``."""
    try:
        validate(value, today=today)
    except InvalidNik:
        return False
    return True


def mask(nik: str | Nik) -> str:
    """Show only the last four digits: ``************0001``. Separators are removed first."""
    number = nik.value if isinstance(nik, Nik) else compact(nik)
    if len(number) <= 4:
        return "*" * len(number)
    return "*" * (len(number) - 4) + number[-4:]


def make_nik(province_regency_district: str, birth_date: date, sex: str, serial: int) -> str:
    """Build a NIK (for demo data and tests) and check it with :func:`validate`.

    ``province_regency_district`` is the 6-digit ``PPRRSS`` prefix; ``sex`` is ``'L'`` or
    ``'P'``; ``serial`` is 1-9999. Only the last two digits of the year are encoded.
    Raises ``ValueError`` for bad arguments and :class:`InvalidNik` for an unknown province.
    """
    if not re.fullmatch(r"[0-9]{6}", province_regency_district):
        raise ValueError("province_regency_district must be exactly 6 digits")
    if not 1 <= serial <= 9999:
        raise ValueError("serial must be between 1 and 9999")
    day = birth_date.day + (FEMALE_DAY_OFFSET if _normalize_sex(sex) == FEMALE else 0)
    number = (
        f"{province_regency_district}{day:02d}{birth_date.month:02d}"
        f"{birth_date.year % 100:02d}{serial:04d}"
    )
    validate(number, today=max(birth_date, date.today()))  # noqa: DTZ011
    return number
