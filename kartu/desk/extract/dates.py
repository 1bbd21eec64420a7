"""Finding and parsing calendar dates in Indonesian / English free text."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from rapidfuzz import fuzz, process

# Month words (lower case, no dot) -> month number.  Indonesian, English,
# Javanese/Dutch spellings and the usual abbreviations.
MONTHS: dict[str, int] = {}
for _num, _words in enumerate(
    (
        "januari january jan janu janv djanuari",
        "februari pebruari febuari feburari februay february feb peb pebr febr",
        "maret march mar mrt",
        "april apr",
        "mei may",
        "juni june jun djuni",
        "juli july jul djuli",
        "agustus augustus august agu agt ags agst agus aug agts",
        "september sep sept spt",
        "oktober october okt oct",
        "november nopember nov nop novem",
        "desember december des dec desm",
    ),
    start=1,
):
    for _w in _words.split():
        MONTHS[_w] = _num

# Full month names used for fuzzy matching of typos ("Septmber", "Desemer").
_FUZZY_CHOICES = [w for w in MONTHS if len(w) >= 5]

ROMAN = {
    "i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6,
    "vii": 7, "viii": 8, "ix": 9, "x": 10, "xi": 11, "xii": 12,
}  # fmt: skip

_THIS_YEAR = _dt.datetime.now(_dt.UTC).year
# Birth years accepted as plausible for a worker / member.
MIN_BIRTH_YEAR = 1920
MAX_BIRTH_YEAR = _THIS_YEAR - 15


def month_from_word(word: str, fuzzy: bool = True) -> int | None:
    """Month number for a month word, abbreviation or (fuzzy) typo."""
    w = word.lower().strip(".")
    if w in MONTHS:
        return MONTHS[w]
    if w in ROMAN:
        return ROMAN[w]
    if w.isdigit():
        n = int(w)
        return n if 1 <= n <= 12 else None
    if fuzzy and 5 <= len(w) <= 11 and w.isalpha():
        best = process.extractOne(w, _FUZZY_CHOICES, scorer=fuzz.ratio, score_cutoff=84)
        if best is not None:
            return MONTHS[best[0]]
    return None


def expand_year(text: str) -> int | None:
    """Four-digit year; two-digit years pivot so that members are >= 15."""
    t = text.lstrip("'\u2019")
    if not t.isdigit():
        return None
    if len(t) == 4:
        return int(t)
    if len(t) == 2:
        yy = int(t)
        return 2000 + yy if 2000 + yy <= MAX_BIRTH_YEAR else 1900 + yy
    return None


def make_date(year: int | None, month: int | None, day: int | None) -> _dt.date | None:
    if year is None or month is None or day is None:
        return None
    try:
        return _dt.date(year, month, day)
    except ValueError:
        return None


def plausible_birth(d: _dt.date) -> bool:
    return MIN_BIRTH_YEAR <= d.year <= MAX_BIRTH_YEAR


@dataclass(slots=True)
class DateMatch:
    start: int
    end: int
    date: _dt.date
    kind: str
    # for numeric day/month dates where both readings are valid
    alt: _dt.date | None = None


_RE_DIGIT = re.compile(r"\d")
_DAY = r"(?P<d>[0-3]?\d)(?:st|nd|rd|th)?"
_SEP = r"[ \t.,/\-]*"
_YEAR = r"(?P<y>(?:19|20)\d{2}|['\u2019]?\d{2})"
_YEAR_WORD = r"(?:(?:tahun|thn|th|taun)\.?\s*)?"

RE_DMY_WORD = re.compile(
    rf"(?<!\d){_DAY}(?:\s+of)?{_SEP}(?P<m>[A-Za-z]{{3,11}})\.?{_SEP}{_YEAR_WORD}{_YEAR}(?![\d])",
    re.I,
)
RE_MDY_WORD = re.compile(
    r"(?<![A-Za-z])(?P<m>[A-Za-z]{3,9})\.?\s+(?P<d>[0-3]?\d)(?:st|nd|rd|th)?,?\s+(?P<y>(?:19|20)\d{2})(?!\d)",
    re.I,
)
RE_DMY_NUM = re.compile(
    r"(?<!\d)(?<!\d[./\-])(?P<d>\d{1,2})\s*(?P<s>[\-/.])\s*(?P<m>\d{1,2}|[IVXivx]{1,4})\s*(?P=s)\s*"
    r"(?P<y>\d{4}|['\u2019]?\d{2})(?!\d|[.,/\-]\d)"
)
RE_YMD_NUM = re.compile(
    r"(?<!\d)(?<!\d[.,/\-])(?P<y>(?:19|20)\d{2})\s*(?P<s>[\-/.])\s*(?P<m>\d{1,2})\s*(?P=s)\s*(?P<d>\d{1,2})(?!\d|[.,/\-]\d)"
)
RE_DMY_SPACE = re.compile(
    r"(?<!\d)(?<!\d[.,/\-])(?P<d>\d{1,2}) (?P<m>\d{1,2}) (?P<y>(?:19|20)\d{2})(?![\d])"
)
RE_COMPACT = re.compile(r"(?<!\d)(?<!\d[.,/\-])(?P<n>\d{8})(?![\d])")
RE_TBT = re.compile(
    r"\b(?:tgl|tanggal|tg|tang)\.?\s*(?P<d>\d{1,2})\s*[,.]?\s*(?:bln|bulan|bl|wulan|sasih)\.?\s*"
    r"(?P<m>\d{1,2}|[A-Za-z]{3,11})\s*[,.]?\s*(?:thn|tahun|th|taun)\.?\s*(?P<y>\d{4}|\d{2})(?!\d)",
    re.I,
)


def _numeric(d: str, m: str, y: str) -> tuple[_dt.date | None, _dt.date | None]:
    """Day-first reading of a numeric date, plus the month-first alternative."""
    year = expand_year(y)
    day = int(d)
    if not m.isdigit():
        return make_date(year, ROMAN.get(m.lower()), day), None
    month = int(m)
    first = make_date(year, month, day)
    swapped = make_date(year, day, month)
    if first is None:
        return swapped, None
    if swapped is not None and swapped != first:
        return first, swapped
    return first, None


def _search_all(
    rx: re.Pattern[str], text: str, ok: Callable[[re.Match[str]], bool]
) -> list[re.Match[str]]:
    """Like ``finditer`` but a rejected match does not hide later ones."""
    out: list[re.Match[str]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = rx.search(text, pos)
        if m is None:
            break
        if ok(m):
            out.append(m)
            pos = m.end()
        else:
            pos = m.start() + 1
    return out


def find_dates(text: str) -> list[DateMatch]:
    """All calendar dates written in ``text`` (any year), left to right.

    Overlapping readings are resolved in favour of the longer match.
    """
    found: list[DateMatch] = []
    if not _RE_DIGIT.search(text):
        return found
    for m in _search_all(RE_TBT, text, lambda m: month_from_word(m["m"]) is not None):
        d = make_date(expand_year(m["y"]), month_from_word(m["m"]), int(m["d"]))
        if d:
            found.append(DateMatch(m.start(), m.end(), d, "tbt"))
    for m in _search_all(RE_DMY_WORD, text, lambda m: month_from_word(m["m"]) is not None):
        d = make_date(expand_year(m["y"]), month_from_word(m["m"]), int(m["d"]))
        if d:
            found.append(DateMatch(m.start(), m.end(), d, "word"))
    for m in _search_all(RE_MDY_WORD, text, lambda m: m["m"].lower() in MONTHS):
        d = make_date(expand_year(m["y"]), MONTHS[m["m"].lower()], int(m["d"]))
        if d:
            found.append(DateMatch(m.start(), m.end(), d, "mdy"))
    for m in RE_YMD_NUM.finditer(text):
        d = make_date(int(m["y"]), int(m["m"]), int(m["d"]))
        if d:
            found.append(DateMatch(m.start(), m.end(), d, "iso"))
    for m in RE_DMY_NUM.finditer(text):
        d, alt = _numeric(m["d"], m["m"], m["y"])
        if d:
            found.append(DateMatch(m.start(), m.end(), d, "num", alt))
    for m in RE_DMY_SPACE.finditer(text):
        d, alt = _numeric(m["d"], m["m"], m["y"])
        if d:
            found.append(DateMatch(m.start(), m.end(), d, "space", alt))
    for m in RE_COMPACT.finditer(text):
        n = m["n"]
        d = make_date(int(n[4:]), int(n[2:4]), int(n[:2]))
        if d is None or not plausible_birth(d):
            d = make_date(int(n[:4]), int(n[4:6]), int(n[6:]))
        if d:
            found.append(DateMatch(m.start(), m.end(), d, "compact"))
    if len(found) < 2:
        return found
    found.sort(key=lambda x: (x.start, -(x.end - x.start)))
    kept: list[DateMatch] = []
    for dm in found:
        if kept and dm.start < kept[-1].end:
            if dm.end - dm.start > kept[-1].end - kept[-1].start:
                kept[-1] = dm
            continue
        kept.append(dm)
    return kept


def parse_date(text: str) -> str | None:
    """ISO date for the first date written in ``text`` (``None`` if none).

    >>> parse_date("17 agst 85")
    '1985-08-17'
    """
    dates = find_dates(text or "")
    return dates[0].date.isoformat() if dates else None
