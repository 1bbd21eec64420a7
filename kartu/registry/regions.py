"""Indonesian region codes as used in the NIK (Home Ministry / Kemendagri numbering).

Domain words:

* **NIK** (Nomor Induk Kependudukan) - the 16-digit national ID number. Its first six digits
  ``PP RR SS`` are the province, the regency/city and the district (kecamatan) where the NIK
  was *first registered*; the NIK never changes when its holder moves.
* **Provinsi** - province, two digits (``PP``).
* **Kabupaten / Kota** - regency / city, the second level. We key them by four digits
  ``PPRR``; codes ``RR`` of 71 and above are cities (kota), lower ones regencies (kabupaten).

NIKs use the **Kemendagri** codes, *not* the statistics-bureau (BPS) codes found in many
datasets and in python-stdnum's ``loc.dat``. The two mostly agree for provinces but differ for
Papua (Kemendagri 91 Papua, 92 Papua Barat, 93-96 for the provinces created in 2022) and for
many regencies: for example Kemendagri ``3171`` is Jakarta Pusat and ``3174`` Jakarta Selatan,
whereas BPS ``3171`` is Jakarta Selatan; Kemendagri ``1111`` is Bireuen, BPS ``1111`` is Aceh
Utara.

Data and sources:

* ``data/provinces.csv`` - the 38 provinces of Kepmendagri No. 300.2.2-2138 Tahun 2025.
* ``data/regencies.csv`` - the 514 regencies and cities of the same decree, transcribed from
  ``db/wilayah_luas.sql`` of github.com/cahyadsn/wilayah (MIT licence; the file header states
  "Data Kode Wilayah sesuai Kepmendagri No 300.2.2-2138 Tahun 2025"). Names were upper-cased,
  spacing collapsed, "Kab" expanded to "KABUPATEN", and the word "Administrasi" dropped from the
  five Jakarta cities and Kepulauan Seribu ("KOTA JAKARTA SELATAN"). Per-province counts agree
  with the 514 total of Permendagri 72/2019 + the 2022 Papua split.
* :data:`FORMER_REGENCIES` - codes that were valid before the 2022 Papua split (Permendagri
  72/2019 numbering, checked against a public pre-2022 dataset). NIKs are permanent, so a NIK
  first registered in Nabire in 2015 still starts ``9104`` although Nabire is ``9401`` today.
  Pre-2012 Kalimantan Timur codes for what is now Kalimantan Utara (e.g. Tarakan, then
  ``64.73``) are not included because I could not verify the full list.

Only the province is enforced when validating a NIK. Regency codes are informational (demo data,
"where was this NIK first registered"): rejecting a real NIK is worse than accepting an unknown
regency, and the regency list changes with every new regency (pemekaran).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

__all__ = [
    "FORMER_REGENCIES",
    "PROVINCES",
    "REGENCIES",
    "is_known_province",
    "province_name",
    "regencies_in",
    "regency_name",
]

_DATA_DIR = Path(__file__).resolve().parent / "data"


def _load(filename: str, code_length: int) -> Mapping[str, str]:
    table: dict[str, str] = {}
    with (_DATA_DIR / filename).open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            code, name = row["code"].strip(), row["name"].strip()
            if len(code) != code_length or not code.isdigit() or not name:
                raise ValueError(f"{filename}: bad row {row!r}")
            if code in table:
                raise ValueError(f"{filename}: duplicate code {code}")
            table[code] = name
    return MappingProxyType(table)


#: Province code (2 digits) -> upper-case name. All 38 Kemendagri provinces.
PROVINCES: Mapping[str, str] = _load("provinces.csv", 2)

#: Regency/city code (4 digits, ``PPRR``) -> upper-case name, e.g. ``"3505": "KABUPATEN BLITAR"``.
#: The current Kemendagri list (514 entries).
REGENCIES: Mapping[str, str] = _load("regencies.csv", 4)

#: Regency codes no longer in use but still found at the start of NIKs issued before the 2022
#: Papua split (the regencies moved to Papua Selatan, Papua Tengah, Papua Pegunungan and Papua
#: Barat Daya). None of these codes is reused in :data:`REGENCIES`.
FORMER_REGENCIES: Mapping[str, str] = MappingProxyType(
    {
        "9101": "KABUPATEN MERAUKE",
        "9102": "KABUPATEN JAYAWIJAYA",
        "9104": "KABUPATEN NABIRE",
        "9107": "KABUPATEN PUNCAK JAYA",
        "9108": "KABUPATEN PANIAI",
        "9109": "KABUPATEN MIMIKA",
        "9112": "KABUPATEN PEGUNUNGAN BINTANG",
        "9113": "KABUPATEN YAHUKIMO",
        "9114": "KABUPATEN TOLIKARA",
        "9116": "KABUPATEN BOVEN DIGOEL",
        "9117": "KABUPATEN MAPPI",
        "9118": "KABUPATEN ASMAT",
        "9121": "KABUPATEN MAMBERAMO TENGAH",
        "9122": "KABUPATEN YALIMO",
        "9123": "KABUPATEN LANNY JAYA",
        "9124": "KABUPATEN NDUGA",
        "9125": "KABUPATEN PUNCAK",
        "9126": "KABUPATEN DOGIYAI",
        "9127": "KABUPATEN INTAN JAYA",
        "9128": "KABUPATEN DEIYAI",
        "9201": "KABUPATEN SORONG",
        "9204": "KABUPATEN SORONG SELATAN",
        "9205": "KABUPATEN RAJA AMPAT",
        "9209": "KABUPATEN TAMBRAUW",
        "9210": "KABUPATEN MAYBRAT",
        "9271": "KOTA SORONG",
    }
)

_REGENCIES_BY_PROVINCE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        province: tuple(code for code in REGENCIES if code.startswith(province))
        for province in PROVINCES
    }
)


def province_name(code2: str) -> str | None:
    """Name of the province with this 2-digit Kemendagri code, or ``None`` if unknown."""
    return PROVINCES.get(code2)


def is_known_province(code2: str) -> bool:
    """Whether ``code2`` is one of the 38 Kemendagri province codes."""
    return code2 in PROVINCES


def regency_name(code4: str) -> str | None:
    """Name of the regency/city with this 4-digit code (current or pre-2022), or ``None``."""
    name = REGENCIES.get(code4)
    if name is None:
        name = FORMER_REGENCIES.get(code4)
    return name


def regencies_in(code2: str) -> tuple[str, ...]:
    """Current 4-digit regency/city codes of a province (empty for an unknown province).

    Meant for demo-data generators, which need a realistic ``PPRR`` prefix.
    """
    return _REGENCIES_BY_PROVINCE.get(code2, ())
