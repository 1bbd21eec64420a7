"""Phone numbers, normalised to E.164 (Indonesian numbers by default: ``0812…`` → ``+62812…``)."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s().\-/]")


class InvalidPhone(ValueError):
    pass


def normalize_phone(raw: str, default_country: str = "62") -> str:
    value = _SEPARATORS.sub("", raw.strip())
    if value.startswith("00"):
        value = "+" + value[2:]
    if value.startswith("+"):
        digits = value[1:]
    elif value.startswith("0"):
        digits = default_country + value[1:]
    elif value.startswith(default_country):
        digits = value
    else:
        digits = default_country + value
    if not digits.isdigit() or not 8 <= len(digits) <= 15 or digits[0] == "0":
        raise InvalidPhone(f"{raw!r} is not a phone number")
    if digits.startswith("62") and not 9 <= len(digits) <= 15:
        raise InvalidPhone(f"{raw!r} is not an Indonesian phone number")
    return "+" + digits
