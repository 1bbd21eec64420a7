"""KPJ (Kartu Peserta Jamsostek) numbers: the 11-digit BPJS Ketenagakerjaan membership number.

Two kinds of KPJ live in kartu:

**Imported numbers** (from the agency's records) are *opaque*: exactly 11 ASCII digits, kept as
strings (leading zeros matter, never store them as integers). No public source documents a check
digit or any meaning of the digit positions, so :func:`validate` checks only the shape. It rejects
the numbers people most often paste by mistake: the 13-digit BPJS Kesehatan (health insurance,
JKN) card number and the 16-digit NIK.

**Numbers issued by kartu** (:func:`issue_number`) are 10 body digits followed by one check
digit computed with the **Damm algorithm** (``stdnum.damm``, based on a totally anti-symmetric
quasigroup of order 10). Damm detects *every* single-digit substitution and *every* transposition
of two adjacent different digits, has no special "X" digit (unlike ISBN-10 / mod 11) and, unlike
Luhn, catches ``09`` <-> ``90``. :func:`has_valid_check_digit` verifies it.

Never use :func:`has_valid_check_digit` to reject an *imported* number: about one in ten random
11-digit numbers passes it by chance and nine in ten fail it, so it says nothing about numbers
kartu did not issue. It is a typo check for kartu-issued numbers only.
"""

from __future__ import annotations

import re
from typing import Final, Literal

from stdnum import damm

__all__ = [
    "BODY_LENGTH",
    "LENGTH",
    "InvalidKpj",
    "compact",
    "has_valid_check_digit",
    "is_valid",
    "issue_number",
    "mask",
    "validate",
]

LENGTH: Final = 11
BODY_LENGTH: Final = LENGTH - 1

InvalidKpjCode = Literal["format", "length"]

_SEPARATORS = re.compile(r"[\s.\-\u2010-\u2015\u2212]+")
_DIGITS = re.compile(r"[0-9]+")


class InvalidKpj(ValueError):
    """Not a KPJ number. ``code`` is ``"format"`` (not only digits) or ``"length"``."""

    def __init__(self, code: InvalidKpjCode, message: str) -> None:
        super().__init__(message)
        self.code: InvalidKpjCode = code


def compact(value: str) -> str:
    """Remove separators (whitespace, dots, dashes) anywhere in ``value``."""
    return _SEPARATORS.sub("", value)


def validate(value: str) -> str:
    """Return the compact 11-digit KPJ, or raise :class:`InvalidKpj`."""
    number = compact(value)
    if not _DIGITS.fullmatch(number):
        raise InvalidKpj("format", "A KPJ number contains only digits.")
    if len(number) != LENGTH:
        hint = ""
        if len(number) == 13:
            hint = " 13 digits looks like a BPJS Kesehatan (JKN) card number."
        elif len(number) == 16:
            hint = " 16 digits looks like a NIK (national ID number)."
        raise InvalidKpj("length", f"A KPJ number has 11 digits; this one has {len(number)}.{hint}")
    return number


def is_valid(value: str) -> bool:
    """Whether :func:`validate` accepts ``value`` (shape only, see the module docstring)."""
    try:
        validate(value)
    except InvalidKpj:
        return False
    return True


def issue_number(body10: str) -> str:
    """A new kartu KPJ: the 10-digit ``body10`` followed by its Damm check digit."""
    if len(body10) != BODY_LENGTH or not _DIGITS.fullmatch(body10):
        raise ValueError("the body of a KPJ is exactly 10 digits")
    return body10 + damm.calc_check_digit(body10)


def has_valid_check_digit(kpj: str) -> bool:
    """Whether an 11-digit number ends in the right Damm check digit (kartu-issued numbers)."""
    number = compact(kpj)
    return (
        len(number) == LENGTH
        and _DIGITS.fullmatch(number) is not None
        and damm.checksum(number) == 0
    )


def mask(kpj: str) -> str:
    """Show only the last four digits: ``*******1234``."""
    number = compact(kpj)
    if len(number) <= 4:
        return "*" * len(number)
    return "*" * (len(number) - 4) + number[-4:]
