"""NIK (Nomor Induk Kependudukan) candidates and structural checks.

A NIK is 16 digits: province (2), regency (2), district (2), birth date
DDMMYY (day + 40 for women) and a 4-digit serial.  People write it with
spaces, dots or dashes, sometimes split over two lines, and often next to
other long numbers (family card "KK", old KPJ, phone, bank account ...).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from itertools import pairwise

# Kemendagri province codes (incl. the 2022 Papua provinces).
PROVINCES = frozenset(
    [
        *(11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53),
        *(61, 62, 63, 64, 65, 71, 72, 73, 74, 75, 76, 81, 82, 91, 92, 93, 94, 95, 96),
    ]
)

# A chain of digit groups joined by single separators (space, dot, dash or
# one line break).
RE_CHAIN = re.compile(r"\d+(?:(?:[ \t]*[.\-][ \t]*|[ \t]{1,3}|[ \t]*\r?\n[ \t]*)\d+)*")
RE_DIGITS = re.compile(r"\d+")

# Labels.  The label nearest before a number decides what it is.
RE_NIK_LABEL = re.compile(
    r"(?:\bnik|\bn\s?\.\s?i\s?\.\s?k\b|nomor\s+induk\s+kependudukan|\bno\.?\s*induk|\be-?ktp|\bktp"
    r"|\bnomor\s+identitas|\bno\.?\s*identitas|\bid\s+(?:card\s+)?(?:number|no)|\bidentity\s+(?:card\s+)?number"
    r"|\bnational\s+id|\bnik-?nya|\bnikku)",
    re.I,
)
RE_OTHER_LABEL = re.compile(
    r"(?:\bkk\b|\bkartu\s+keluarga|\bkpj|\bkepesertaan|\bno\.?\s*peserta|\bnomor\s+peserta|\brek\b|\brek\."
    r"|\brekening|\bacc(?:ount)?\b|\bnpwp|\bhp\b|\bwa\b|\bwhatsapp|\btelp?\b|\btelepon|\btlp|\bphone"
    r"|\bponsel|\bkartu\s+kredit|\bcredit\s+card|\bcc\b|\bbpjs\s+kesehatan|\bkis\b|\bjkn\b|\bva\b"
    r"|\bvirtual|\bresi|\btracking|\border\b|\binvoice|\bno\.?\s*kartu|\bnomor\s+kartu|\bkartu\s+lama"
    r"|\bnomor\s+lama|\bsim\b|\bpaspor|\bpassport)",
    re.I,
)
RE_CORRECTION = re.compile(
    r"\b(?:salah|ralat|koreksi|maksud\s*(?:saya|sy|nya)?|yang\s+benar|yg\s+bener|yg\s+benar|sorry|typo|keliru)\b",
    re.I,
)

LABEL_WINDOW = 48


@dataclass(slots=True)
class NikCandidate:
    nik: str
    start: int
    end: int
    label: int  # +1 NIK label, -1 other label, 0 none
    valid: bool  # province and birth date fields are plausible
    score: float = 0.0


def nik_birth_date(nik: str) -> tuple[int, int, int] | None:
    """(day, month, yy) encoded in a NIK, women's +40 removed; None if invalid."""
    if len(nik) != 16 or not nik.isdigit():
        return None
    day = int(nik[6:8])
    if day > 40:
        day -= 40
    month = int(nik[8:10])
    yy = int(nik[10:12])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    for century in (1900, 2000):
        try:
            _dt.date(century + yy, month, day)
            return day, month, yy
        except ValueError:
            continue
    return None


def nik_is_female(nik: str) -> bool:
    return len(nik) == 16 and nik[6:8].isdigit() and int(nik[6:8]) > 40


def nik_structure_ok(nik: str) -> bool:
    """Province code known, regency/district non-zero, birth date valid."""
    if len(nik) != 16 or not nik.isdigit():
        return False
    if int(nik[:2]) not in PROVINCES or nik[2:4] == "00" or nik[4:6] == "00":
        return False
    if nik[12:] == "0000":
        return False
    return nik_birth_date(nik) is not None


def nik_matches_date(nik: str, d: _dt.date) -> bool:
    enc = nik_birth_date(nik)
    return enc is not None and enc == (d.day, d.month, d.year % 100)


def find_nik_candidates(text: str, limit: int = 40) -> list[NikCandidate]:
    """Every way of reading exactly 16 digits out of a chain of digit groups."""
    out: list[NikCandidate] = []
    prev_end = 0
    for chain in RE_CHAIN.finditer(text):
        groups = list(RE_DIGITS.finditer(text, chain.start(), chain.end()))
        if sum(len(g.group()) for g in groups) < 16:
            prev_end = chain.end()
            continue
        before_chain = text[max(prev_end, chain.start() - LABEL_WINDOW) : chain.start()]
        n = len(groups)
        for i in range(n):
            total = 0
            for j in range(i, n):
                total += len(groups[j].group())
                if total > 16:
                    break
                if total == 16:
                    parts = groups[i : j + 1]
                    digits = "".join(g.group() for g in parts)
                    start, end = groups[i].start(), groups[j].end()
                    if i == 0:
                        before = before_chain
                    else:
                        before = text[max(groups[i - 1].end(), start - LABEL_WINDOW) : start]
                    label = _label(before)
                    # "1 2 3 4 ..." or "12-12-2012 0812..." is not how anyone writes a NIK
                    if label > 0 or _plausible_grouping(text, parts):
                        out.append(
                            NikCandidate(digits, start, end, label, nik_structure_ok(digits))
                        )
                    break
            if len(out) >= limit:
                return out
        prev_end = chain.end()
    return out


def _plausible_grouping(text: str, parts: list[re.Match[str]]) -> bool:
    if len(parts) == 1:
        return True
    if len(parts) > 6 or min(len(g.group()) for g in parts) < 2:
        return False
    seps = {text[a.end() : b.start()].strip(" \t") or " " for a, b in pairwise(parts)}
    return len(seps) == 1


def _label(before: str) -> int:
    """+1 if the nearest label before a number names a NIK, -1 if another number."""
    best_pos, kind = -1, 0
    for m in RE_NIK_LABEL.finditer(before):
        if m.start() >= best_pos:
            best_pos, kind = m.start(), 1
    for m in RE_OTHER_LABEL.finditer(before):
        if m.start() > best_pos:
            best_pos, kind = m.start(), -1
    return kind


def score_candidates(text: str, cands: list[NikCandidate], birth: _dt.date | None = None) -> None:
    """Give each candidate a score; >= 5 means acceptable as the NIK."""
    for i, c in enumerate(cands):
        s = 0.0
        if c.label > 0:
            s += 10
        elif c.label < 0:
            s -= 10
        if c.valid:
            s += 6
        elif int(c.nik[:2]) in PROVINCES:
            s += 1
        else:
            s -= 3
        if birth is not None and nik_matches_date(c.nik, birth):
            s += 4
        if i > 0 and c.label >= 0 and RE_CORRECTION.search(text, cands[i - 1].end, c.start):
            s += 2
            cands[i - 1].score -= 2
        c.score += s


def pick_nik(text: str, birth: _dt.date | None = None) -> str | None:
    """Choose the NIK written in ``text`` (``None`` if there is none)."""
    cands = find_nik_candidates(text)
    if not cands:
        return None
    score_candidates(text, cands, birth)
    best = max(cands, key=lambda c: c.score)
    return best.nik if best.score >= 5 else None
