"""Synthetic but valid registry data: Indonesian names, real region codes, consistent NIKs.

Deterministic for a seed, so ``make run`` always prints the same demo identities and benchmarks
always load the same rows. Every NIK agrees with its person's birth date and sex and starts with
a real regency code; every KPJ is unique and carries kartu's Damm check digit.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import IO

from kartu.registry import kpj as kpj_rules
from kartu.registry import regions
from kartu.registry.importer import COLUMNS, OPTIONAL_COLUMNS

MALE = (
    "AHMAD", "MUHAMMAD", "BUDI", "AGUS", "EKO", "ANDI", "RUDI", "HENDRA", "DEDI", "JOKO",
    "BAMBANG", "SUPRIYADI", "SLAMET", "WAHYU", "ARIF", "RIZKI", "FAJAR", "YUSUF", "IMAM",
    "HARYANTO", "SUGENG", "DODI", "IRFAN", "FIRMAN", "GUNAWAN", "TEGUH", "ASEP", "UJANG",
    "DADANG", "CECEP", "PUTU", "MADE", "KETUT", "WAYAN", "NYOMAN", "HOTMAN", "TUMPAL",
    "SAHAT", "BONAR", "ZULKIFLI", "SYAHRIL", "RAHMAT", "HIDAYAT", "ILHAM", "ANDIKA",
    "BAYU", "DIMAS", "GALIH", "YOGA", "REZA", "HABIB", "FAISAL", "MUNAWAR", "SUKIRNO",
)
FEMALE = (
    "SITI", "NUR", "SRI", "DEWI", "RATNA", "YULIANTI", "FITRI", "INDAH", "LESTARI", "WULAN",
    "RINA", "NOVI", "DIAN", "AYU", "PUTRI", "ANISA", "RAHMAWATI", "KARTIKA", "MEGA", "NINGSIH",
    "TRI", "ENDANG", "SUSI", "YANTI", "NENG", "EUIS", "IMAS", "LILIS", "NI LUH", "NI KADEK",
    "KOMANG", "MARIA", "MAGDALENA", "ROSDIANA", "ROSMAWATI", "HALIMAH", "AMINAH", "FATIMAH",
    "ZAHRA", "NABILA", "SALSABILA", "AULIA", "RISMA", "NURUL", "HASANAH", "UMI", "LAILA",
)
FAMILY = (
    "SANTOSO", "WIJAYA", "SETIAWAN", "HIDAYAT", "SAPUTRA", "PRATAMA", "KURNIAWAN", "NUGROHO",
    "SUSANTO", "HARAHAP", "SIREGAR", "NASUTION", "LUBIS", "SIMANJUNTAK", "SITUMORANG",
    "PANJAITAN", "HUTAPEA", "TAMBUNAN", "GINTING", "SEMBIRING", "TARIGAN", "SINAGA",
    "PURBA", "SARAGIH", "MANURUNG", "PANGARIBUAN", "RAHMAN", "HASIBUAN", "DAULAY",
    "PUTRA", "PUTRI", "LESTARI", "WATI", "SARI", "ANGGRAINI", "MAHARANI", "PERMATA",
    "SYAHPUTRA", "RAMADHAN", "FIRMANSYAH", "HAKIM", "SUDRAJAT", "SUPRIATNA", "KUSUMA",
    "WIBOWO", "PRASETYO", "HARTONO", "GUNAWAN", "SALIM", "TANJUNG", "PASARIBU", "MARPAUNG",
)
EMPLOYER_A = (
    "MAJU", "SINAR", "KARYA", "BUMI", "CAHAYA", "MITRA", "GEMILANG", "SENTOSA", "JAYA",
    "ABADI", "MANDIRI", "SEJAHTERA", "NUSANTARA", "INDAH", "BERKAH", "PRIMA", "GLOBAL",
)
EMPLOYER_B = (
    "TEKSTIL", "LOGISTIK", "KONSTRUKSI", "PANGAN", "PLASTIK", "ELEKTRONIK", "PERKASA",
    "MAKMUR", "UTAMA", "PERSADA", "LESTARI", "ANUGERAH", "SEJATI", "MULIA", "RAYA",
)
PROGRAMME_SETS = ("JHT JKK JKM JP JKP", "JHT JKK JKM JP", "JHT JKK JKM", "JKK JKM")


def _place_name(regency: str) -> str:
    for prefix in ("KABUPATEN ADMINISTRASI ", "KABUPATEN ", "KOTA ADMINISTRASI ", "KOTA "):
        if regency.startswith(prefix):
            return regency[len(prefix) :]
    return regency


def _kpj(n: int) -> str:
    # n ↦ n·7919 + c (mod 10¹⁰) is a bijection, so distinct counters give distinct KPJs.
    return kpj_rules.issue_number(f"{(n * 7919 + 1_900_000_000) % 10**10:010d}")


def generate(people: int, seed: int = 2024) -> Iterator[dict[str, str]]:
    """Yield registry rows (one per membership) for ``people`` synthetic participants."""
    rng = random.Random(seed)
    codes = sorted(regions.REGENCIES)
    seen: set[int] = set()
    membership_no = 0
    start = date(1960, 1, 1)
    span = (date(2006, 12, 31) - start).days
    for i in range(people):
        sex = "L" if rng.random() < 0.55 else "P"
        while True:
            regency = rng.choice(codes)
            born = start + timedelta(days=rng.randrange(span))
            district = rng.randrange(1, 40)
            serial = rng.randrange(1, 10000)
            day = born.day + (40 if sex == "P" else 0)
            nik = (f"{regency}{district:02d}{day:02d}{born.month:02d}{born.year % 100:02d}"
                   f"{serial:04d}")
            if int(nik) not in seen:
                seen.add(int(nik))
                break
        first = rng.choice(MALE if sex == "L" else FEMALE)
        parts = [first]
        if rng.random() < 0.35:
            parts.append(rng.choice(MALE if sex == "L" else FEMALE))
        if rng.random() < 0.85:
            parts.append(rng.choice(FAMILY))
        name = " ".join(dict.fromkeys(parts))
        birth_regency = regency if rng.random() < 0.8 else rng.choice(codes)
        place = _place_name(regions.REGENCIES[birth_regency])
        email = (f"{first.lower().replace(' ', '')}.{i}@contoh.id"
                 if rng.random() < 0.6 else "")
        phone = f"+628{rng.randrange(11, 99)}{rng.randrange(10**7):07d}" if rng.random() < 0.8 \
            else ""
        count = 1 if rng.random() < 0.7 else (2 if rng.random() < 0.85 else 3)
        first_job = max(born.year + 18, 1995)
        for k in range(count):
            membership_no += 1
            year = min(first_job + k * 3 + rng.randrange(3), 2025)
            yield {
                "nik": nik,
                "full_name": name,
                "birth_place": place,
                "birth_date": born.isoformat(),
                "sex": sex,
                "email": email,
                "phone": phone,
                "kpj": _kpj(membership_no),
                "employer": f"PT {rng.choice(EMPLOYER_A)} {rng.choice(EMPLOYER_B)}",
                "status": "aktif" if k == count - 1 and rng.random() < 0.8 else "nonaktif",
                "registered_on": date(year, rng.randrange(1, 13), rng.randrange(1, 29))
                .isoformat(),
                "programmes": rng.choice(PROGRAMME_SETS),
            }


def write_csv(out: IO[str], people: int, seed: int = 2024) -> int:
    writer = csv.DictWriter(out, fieldnames=[*COLUMNS, *OPTIONAL_COLUMNS], lineterminator="\n")
    writer.writeheader()
    rows = 0
    for row in generate(people, seed):
        writer.writerow(row)
        rows += 1
    return rows


def write_csv_file(path: Path, people: int, seed: int = 2024) -> int:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        return write_csv(fh, people, seed)


def sample_identities(count: int = 5, seed: int = 2024) -> list[dict[str, object]]:
    """The first ``count`` demo people with all their KPJs (what `make run` prints)."""
    people: dict[str, dict[str, object]] = {}
    for row in generate(count, seed):
        person = people.setdefault(row["nik"], {
            "full_name": row["full_name"], "birth_place": row["birth_place"],
            "birth_date": row["birth_date"], "nik": row["nik"], "kpj": [],
            "email": row["email"], "phone": row["phone"],
        })
        kpjs = person["kpj"]
        assert isinstance(kpjs, list)
        kpjs.append(row["kpj"])
    return list(people.values())
