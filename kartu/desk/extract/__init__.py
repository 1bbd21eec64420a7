"""Identity extraction from free-text KPJ requests.

Public API::

    from kartu.desk.extract import extract, Extracted

    extract("min saya Budi lahir di Bandung 17 agst 85 nik 3273...").as_dict()
    # {"full_name": "BUDI", "birth_place": "BANDUNG",
    #  "birth_date": "1985-08-17", "nik": "3273..."}

Importable without Django settings (pure Python + stdlib + rapidfuzz).
"""

from .core import extract
from .dates import find_dates, parse_date
from .nik import find_nik_candidates, nik_birth_date, nik_structure_ok, pick_nik
from .normalize import clean_name, clean_place
from .result import FIELDS, Extracted

__all__ = [
    "FIELDS",
    "Extracted",
    "clean_name",
    "clean_place",
    "extract",
    "find_dates",
    "find_nik_candidates",
    "nik_birth_date",
    "nik_structure_ok",
    "parse_date",
    "pick_nik",
]
