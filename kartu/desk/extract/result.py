"""The value returned by :func:`kartu.desk.extract.extract`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

FIELDS = ("full_name", "birth_place", "birth_date", "nik")


@dataclass(frozen=True, slots=True)
class Extracted:
    """Identity fields read from one message; ``None`` when not written.

    ``full_name`` and ``birth_place`` are upper case with single spaces
    (titles, honorifics and Kota/Kab. prefixes removed), ``birth_date`` is
    ISO ``YYYY-MM-DD`` and ``nik`` is the 16 digits without separators.
    """

    full_name: str | None = None
    birth_place: str | None = None
    birth_date: str | None = None
    nik: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def is_empty(self) -> bool:
        return not any(getattr(self, f) for f in FIELDS)
