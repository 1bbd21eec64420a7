"""Read full name, place and date of birth and NIK out of a free-text message.

Pure Python + stdlib regexes (and rapidfuzz for misspelt month names).  The
pipeline is:

1. clean the text (HTML, control characters, quoted replies, size cap);
2. find every date and every 16-digit reading of the numbers;
3. score the dates as *birth* dates (cues such as "lahir", "TTL", "DOB"
   before them, negative cues such as "keluar", "per", "sejak", agreement
   with a NIK) and pick one;
4. pick the NIK (label "NIK"/"KTP" beats structure; "KK", "KPJ", phone,
   bank labels exclude; agreement with the birth date breaks ties);
5. collect name candidates from form labels, "nama saya", relatives
   ("nama ibu saya ..."), "a.n.", self introductions ("saya/sy/kulo/abdi
   ..."), bare data lines, the subject and the signature, and keep the
   best scored one;
6. collect birth-place candidates from labels, "TTL" values and prose
   ("lahir di X", "born in X", "X, <birth date>") and keep the best.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from .dates import DateMatch, find_dates, plausible_birth
from .nik import find_nik_candidates, nik_matches_date, score_candidates
from .normalize import (
    AMBIGUOUS_NAMES,
    NAME_STOP,
    PARTICLES,
    PLACE_PREFIXES,
    PLACE_STOP,
    clean_name,
    clean_place,
    is_degree,
    is_title,
)
from .result import Extracted
from .text import clean_subject, clean_text

_L = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff"


def _alt(words: str) -> str:
    """``"a b c"`` -> ``"(?:a|b|c)"`` (words are regex fragments)."""
    return "(?:" + "|".join(words.split()) + ")"


# no letter before (the lookahead lets the regex engine skip non-letters fast)
_NB = r"(?=[A-Za-z])(?<![A-Za-z])"
_NA = r"(?![A-Za-z])"  # no letter after

# "born" in Indonesian, Javanese, Sundanese, Minang ... and the usual typos
_LAHIR = _alt(
    "lahir lhr lair lahia lahie lahri lhir lahr kelahiran kalahiran kelahiaran dilahirkan miyos"
)

# ---------------------------------------------------------------- cues -----

RE_BIRTH_CUE = re.compile(
    _NB + "(?:" + _LAHIR + r"(?:nya)?|born|birth(?:date|day)?|dob|d\.o\.b|ttl|t\.t\.l)" + _NA,
    re.I,
)
RE_NEG_CUE = re.compile(
    _NB
    + _alt(
        r"""per sejak since keluar resign berhenti phk masuk mulai bergabung join(?:ed)? kerja
        bekerja sampai hingga until s\.?d\.? sd surat pukul jam wrote menulis sent dikirim daftar
        mendaftar terdaftar expired? berlaku batas deadline webinar seminar acara event diskon
        promo klaim cair pencairan transfer bayar pembayaran kemarin besok berdiri before sebelum
        delivered kontrak cuti meninggal wafat tutup dibuat diterbitkan terbit issued menikah
        nikah hilang ilang kehilangan"""
    )
    + _NA,
    re.I,
)
RE_WEEKDAY_END = re.compile(
    _NB
    + _alt(
        r"""senin selasa rabu kamis jum'?at sabtu minggu ahad monday tuesday wednesday thursday
        friday saturday sunday (?:mon|tue|wed|thu|fri|sat|sun|sen|sel|rab|kam|jum|sab)\s*,"""
    )
    + r"\s*,?\s*$",
    re.I,
)
# words that show a message is about a member's identity (substring test)
IDENTITY_WORDS = (
    *("kpj", "bpjs", "jamsostek", "kepesertaan", "peserta", "kartu", "jht", "nik", "ktp"),
    *("lahir", "lhr", "born", "ttl", "dob"),
)
RE_SPAM = re.compile(
    _NB
    + _alt(
        r"""klik link promo diskon gratis hadiah pinjaman pinjol investasi webinar seminar lowongan
        menang won prize congratulations penawaran menawarkan premi asuransi kuota\s+terbatas
        daftar\s+sekarang bit\.ly https?:// www\. unsubscribe voucher cashback bonus slot judi
        togel"""
    )
    + _NA,
    re.I,
)
RE_THIRD_PARTY = re.compile(
    _NB
    + r"(?:(?:karyawan|pegawai|pekerja|anggota|staf|staff)\s+kami|atas\s+nama|a\.\s?n\.|"
    + _alt("mother father mom mum dad husband wife son daughter brother sister")
    + ")"
    + _NA,
    re.I,
)

# ---------------------------------------------------------------- names ----

_POSS = _alt(
    "saya sy aku ku kulo kula kaula abdi ane gue gw tiang ambo ulun aye beta ahu dalem kami"
)
_REL = _alt(
    r"""ibu ibunda bapak bpk ayah ayahanda mamak emak mama mamah mami papa papah papi abah umi
    ummi bunda suami istri isteri adik adek kakak kakek nenek paman bibi tante om mertua
    orang\s*tua ortu anak keponakan sepupu saudara almarhum almarhumah alm\.? almh\.? mbah
    simbah bapa mae biyung nyokap bokap beliau"""
)
_REL_EN = _alt("mother father mom mum dad husband wife son daughter brother sister parent")
RE_NAME_TOKEN = re.compile(rf"[ \t]*([{_L}][{_L}'\u2019`\-]*(?:\.[{_L}]+)*\.?)")
RE_DEGREE_AFTER = re.compile(
    r"[ \t]*,?[ \t]*([A-Za-z]{1,4}\.(?:[A-Za-z]{1,5}\.?){0,4}|[A-Za-z]{2,5}\b\.?)"
)
ABBREV_DOT = frozenset("moh muh mhd moch mochd ach abd md mu st sri nur ny".split())

RE_NAME_LABEL = re.compile(
    _NB + r"(?P<lbl>my\s+(?:full\s+)?name\s+is|my\s+name'?s|full\s*name|namaku|jenengku|namanya"
    r"|asmanipun|naminipun|jenenge"
    r"|"
    + _alt("nama nm nami jeneng asma wastan wasta namo ngaran nyama")
    + r"(?:\s*(?:lengkap(?:nya)?|lgkp|lkp))?"
    r"(?:\s*(?:sesuai|sesuai\s+dengan|spt\s+di|seperti\s+di)\s+(?:ktp|e-?ktp|identitas|kartu))?"
    r"(?:\s*\(\s*sesuai\s+(?:ktp|e-?ktp|identitas)\s*\))?"
    r"(?:\s+(?:peserta|pekerja|karyawan|tenaga\s+kerja))?"
    r"(?:\s+(?P<poss>" + _POSS + r"))?"
    r"|name)" + _NA + r"[ \t]*"
    r"(?P<sep>[:=;\-\u2013]+|(?:adalah|ialah|yaitu|yakni|is)" + _NA + r")?[ \t]*",
    re.I,
)
RE_LABEL_SKIP = re.compile(
    _alt(
        r"""ibu\s+kandung gadis perusahaan pt cv instansi kantor bank rekening pemilik panggilan
        alias akun pengguna user usaha toko sekolah kampus jalan jln? desa kota kab kecamatan file
        dokumen di pada yang yg sesuai"""
    )
    + _NA,
    re.I,
)
RE_REL_AFTER_LABEL = re.compile(
    rf"(?P<rel>{_REL}){_NA}(?:[ \t]*{_POSS}{_NA})?[ \t]*(?:[:=\-]|adalah|yaitu|ialah)?[ \t]*",
    re.I,
)
RE_REL = re.compile(
    rf"{_NB}{_REL}[ \t]*{_POSS}{_NA}[ \t]*(?:[,(:\-][ \t]*)?(?:(?:yang|yg)[ \t]+)?"
    r"(?:bernama|namanya|nama|atas\s+nama|a\.\s?n\.?)?[ \t]*[:,]?[ \t]*",
    re.I,
)
RE_REL_EN = re.compile(
    rf"{_NB}(?:my|our)\s+(?:late\s+)?{_REL_EN}"
    r"(?:'s\s+(?:full\s+)?name\s+is|\s+is|\s+named|\s*,|\s*\(|\s*:)?[ \t]*",
    re.I,
)
RE_CHILD_OF = re.compile(
    _NB + r"(?:anak|putra|putri|putera|puteri|son|daughter)\s+(?:dari|dr|of)\s+", re.I
)
RE_AN = re.compile(_NB + r"(?:atas\s+nama|a\s?\.\s?n\s?\.?|a/n)" + _NA + r"[ \t]*[:.]?[ \t]*", re.I)
RE_INTRO = re.compile(
    r"(?=[A-Za-z])(?<![A-Za-z'])"
    + _alt(
        r"""saya sy aku ak aq gue gw gua ane kulo kula dalem abdi sa beta ulun ambo aye tiang ahu
        i\s+am i'm this\s+is perkenalkan kenalkan"""
    )
    + r"(?![A-Za-z'])[ \t]*,?[ \t]*"
    r"(?:(?:adalah|ialah|ini|bernama|yang\s+bernama|yg\s+bernama)" + _NA + r"[ \t]*)?",
    re.I,
)
RE_HERE = re.compile(
    rf"((?:[A-Z][{_L}'\-]*\.?[ \t]+){{0,5}}[A-Z][{_L}'\-]*)[ \t]+(?:di[ \t]*sini|here){_NA}"
)
RE_FOLLOW = re.compile(
    r"[ \t]*[,(\-\u2013/]?[ \t]*(?:(?:dan|yang|yg|,)[ \t]+)?"
    + _alt(
        _LAHIR
        + r""" born ttl t\.t\.l tempat tmpt tgl tanggal dob pob nik ktp no\.?\s*ktp e-?ktp
        nomor\s+induk place\s+of date\s+of birth"""
    )
    + _NA,
    re.I,
)
RE_PLACE_BETWEEN = re.compile(rf"^[ \t,/\-]*(?:[A-Z][{_L}'\-]*\.?[ \t]*){{1,4}}[ \t,/\-]*$")
RE_CLOSING = re.compile(
    r"^[ \t]*"
    + _alt(
        r"""terima\s*kasih terimakasih makasih thanks?(?:\s+you)? thx tks trims
        salam(?:\s+hormat)? hormat\s+saya wassalam\w* regards best\s+regards kind\s+regards best
        cheers matur\s+(?:sembah\s+)?nuwun hatur\s+nuhun suksma tabik"""
    )
    + _NA
    + r"[^\n]{0,40}$",
    re.I | re.M,
)
RE_INLINE_SIGN = re.compile(
    _NB + r"(?:thx|thanks|tks|trims|salam|regards|cheers)[ \t]*,[ \t]*", re.I
)
RE_SUBJ_TAIL = re.compile(rf"[\-\u2013\u2014:|][ \t]*((?:[A-Z][{_L}'\-]*\.?[ \t]*){{1,5}})$")
_SEG_WORD = rf"(?:[A-Z]\.|(?:Moh|Muh|Mhd|Moch|Ach|Abd)\.|[A-Z][{_L}'\u2019\-]*|bin|binti|br|boru)"
RE_SEGMENT_NAME = re.compile(
    rf"(?:^|(?<=[\n.:;/|]))[ \t]*((?:{_SEG_WORD}[ \t]+){{0,5}}[A-Z][{_L}'\u2019\-]*)"
    r"[ \t]*(?=[\n.,;/|]|$)"
)
RE_DATA_LABEL = re.compile(
    _NB + r"(?:data|identitas)(?:[ \t]+(?:saya|sy|diri(?:[ \t]+saya)?|peserta|pekerja))?"
    r"[ \t]*:[ \t]*",
    re.I,
)
RE_KTP_NAME = re.compile(
    _NB
    + r"(?:di|dalam|sesuai|menurut)[ \t]+(?:ktp|e-?ktp|kartu[ \t]+keluarga|kk)"
    + _NA
    + r"[ \t]*(?:(?:saya|sy|aku)[ \t]*)?"
    r"(?:(?:tertulis|tertera|namanya|nama(?:nya)?|adalah|jadi)[ \t]*)*[:,]?[ \t]*",
    re.I,
)
RE_DENGAN = re.compile(r"(?:^|(?<=[,.!?\n]))[ \t]*(?:[Dd]engan|[Ii]ni)[ \t]+(?=[A-Z])")
RE_AGUNG = re.compile(r"[ \t]+agung" + _NA, re.I)
RE_NEXT_CAP = re.compile(rf"[ \t]+[A-Z][{_L}]")
RE_ONLY_SEP = re.compile(r"[ \t,/\-]*$")

# --------------------------------------------------------------- places ----

RE_PLACE_TOKEN = re.compile(rf"[ \t]*([{_L}][{_L}'\u2019\-]*\.?)")
_TEMPAT = r"(?:tempat|tmpt|tmp|tpt|t4)\.?"
RE_PLACE_LABEL = re.compile(
    _NB
    + r"(?:"
    + _TEMPAT
    + r"[ \t]*"
    + _LAHIR
    + r"|kota[ \t]+(?:lahir|kelahiran)|place[ \t]+of[ \t]+birth|birth[ \t]*place|pob|p\.o\.b\.?"
    r"|tempat(?=[ \t]*:))" + _NA + r"[ \t]*(?:[:=;\-\u2013][ \t]*)?",
    re.I,
)
RE_TTL_LABEL = re.compile(
    _NB + r"(?:(?P<ttl>t\.?[ \t]?t\.?[ \t]?l\.?|ttl)"
    r"|(?P<tt>"
    + _TEMPAT
    + r"[ \t]*(?:[/,&]|dan)?[ \t]*(?:tanggal|tgl|tg|tang)\.?[ \t]*"
    + _LAHIR
    + r"|place[ \t]*(?:/|,|&|and)[ \t]*date[ \t]+of[ \t]+birth)"
    r"|(?P<weak>" + _LAHIR + r"|born|birth))" + _NA + r"[ \t]*(?P<sep>[:=;\-\u2013]+)?[ \t]*",
    re.I,
)
RE_PLACE_PROSE = re.compile(
    _NB + r"(?:" + _LAHIR + r"(?:nya)?|born)" + _NA + r"[ \t]*(?:(?:&|dan)[ \t]+besar[ \t]+)?"
    r"(?:(?P<prep>di|ing|wonten|teng|ning|neng|nang|in|at|ti|e)" + _NA + r"[ \t]*)?",
    re.I,
)
RE_AFTER_DATE_PLACE = re.compile(
    r"[ \t]*,?[ \t]*(?:di|in|at|ing|wonten|bertempat[ \t]+di)" + _NA + r"[ \t]*", re.I
)
RE_BARE_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
RE_PLACE_BEFORE_DATE = re.compile(
    rf"(?:^|[\n,.:;/|(]|(?<=\s)-)[ \t]*((?:(?:Kab|Kec|Kel|Ds|Kp)\.?[ \t]*)?"
    rf"(?:[A-Z][{_L}'\-]*[ \t]+){{0,3}}[A-Z][{_L}'\-]*)[ \t]*[,/\-]?[ \t]*$"
)
RE_COMMA = re.compile(r"[ \t]*,[ \t]*")
RE_PLACE_END = re.compile(r"[ \t]*(?:[,;.\n]|$)")


@dataclass(slots=True)
class _Cand:
    value: str
    score: float
    start: int
    end: int
    kind: str


# ============================================================= helpers =====


# Each pattern yields at most this many candidates (keeps odd input linear).
MAX_MATCHES = 60


def _first(rx: re.Pattern[str], text: str, pos: int = 0) -> Iterator[re.Match[str]]:
    return islice(rx.finditer(text, pos), MAX_MATCHES)


def _bare(tok: str) -> str:
    return tok.strip(".,;:()").replace(".", "").lower()


def _walk_name(text: str, pos: int, lenient: bool) -> tuple[int, int, str, bool] | None:
    """Capture a person's name starting at ``pos``.

    Returns (start, end, raw, has_lower_case_words) or None.
    """
    toks: list[str] = []
    real = 0
    has_lower = False
    start = end = -1
    i = pos
    n = len(text)
    while len(toks) < 10 and i < n:
        m = RE_NAME_TOKEN.match(text, i)
        if not m:
            break
        tok = m.group(1)
        core = tok.rstrip(".")
        low = _bare(tok)
        if (real == 0 and is_title(tok)) or (real > 0 and is_degree(tok)):
            pass
        elif low in NAME_STOP and not (
            (low == "anak" and RE_AGUNG.match(text, m.end()))
            or (
                low in AMBIGUOUS_NAMES
                and core[:1].isupper()
                and (real > 0 or RE_NEXT_CAP.match(text, m.end()))
            )
        ):
            break
        elif not core[:1].isupper():
            if low in PARTICLES and real > 0:
                pass
            elif lenient:
                has_lower = True
                real += 1
            else:
                break
        else:
            real += 1
        toks.append(tok)
        if start < 0:
            start = m.start(1)
        end = m.end(1)
        i = m.end()
        if tok.endswith(".") and not (
            is_title(tok) or is_degree(tok) or len(core) == 1 or low in ABBREV_DOT
        ):
            break
        if i < n and text[i] not in " \t":
            break
    if real == 0:
        return None
    # drop trailing particles ("... bin")
    while toks and _bare(toks[-1]) in PARTICLES:
        toks.pop()
    raw = " ".join(toks)
    # "Umi Kalsum, S.Pd." -> extend the span over the degrees
    for _ in range(4):
        m = RE_DEGREE_AFTER.match(text, end)
        if not m or not is_degree(m.group(1)):
            break
        end = m.end(1)
    return start, end, raw, has_lower


def _walk_place(
    text: str, pos: int, lenient: bool, limit: int | None = None
) -> tuple[int, int, str, bool] | None:
    toks: list[str] = []
    words = 0
    has_lower = False
    start = end = -1
    i = pos
    n = len(text) if limit is None else min(limit, len(text))
    while words < 4 and i < n:
        m = RE_PLACE_TOKEN.match(text, i, n)
        if not m:
            break
        tok = m.group(1)
        core = tok.rstrip(".")
        low = _bare(tok)
        prefix = low in PLACE_PREFIXES
        if not prefix and low in PLACE_STOP:
            break
        if not core[:1].isupper():
            if lenient:
                has_lower = True
            else:
                break
        toks.append(tok)
        if not prefix:
            words += 1
        if start < 0:
            start = m.start(1)
        end = m.end(1)
        i = m.end()
        if tok.endswith(".") and not prefix:
            break
        if i < n and text[i] not in " \t":
            break
    if words == 0:
        return None
    return start, end, " ".join(toks), has_lower


def _date_within(dates: list[DateMatch], lo: int, hi: int) -> DateMatch | None:
    for d in dates:
        if lo <= d.start <= hi:
            return d
        if d.start > hi:
            break
    return None


def _followed_by_birth(text: str, end: int, dates: list[DateMatch]) -> bool:
    if RE_FOLLOW.match(text, end):
        return True
    d = _date_within(dates, end, end + 45)
    if d is not None:
        between = text[end : d.start]
        if not between.strip(" \t,/-") or RE_PLACE_BETWEEN.match(between):
            return True
    return False


# ============================================================ the steps ====


def _score_dates(text: str, dates: list[DateMatch], nik_dates: list[str]) -> list[float]:
    scores: list[float] = []
    prev_end = 0
    for dm in dates:
        lo = max(prev_end, dm.start - 70)
        window = text[lo : dm.start]
        s = 0.0
        birth_pos = max((m.end() for m in RE_BIRTH_CUE.finditer(window)), default=-1)
        neg_pos = max((m.end() for m in RE_NEG_CUE.finditer(window)), default=-1)
        if birth_pos >= 0 and birth_pos >= neg_pos:
            s += 6 if len(window) - birth_pos <= 45 else 4
        elif neg_pos >= 0 and len(window) - neg_pos <= 35:
            s -= 6
        elif RE_BIRTH_CUE.search(text, dm.end, min(len(text), dm.end + 20)):
            s += 3
        if RE_WEEKDAY_END.search(text, max(0, dm.start - 16), dm.start):
            s -= 4
        matched = False
        for nk in nik_dates:
            if nik_matches_date(nk, dm.date):
                matched = True
            elif dm.alt is not None and nik_matches_date(nk, dm.alt):
                dm.date, dm.alt = dm.alt, dm.date
                matched = True
            if matched:
                break
        if matched:
            s += 5
        if dm.kind in ("compact", "space") and s < 5:
            s = -99
        if not plausible_birth(dm.date):
            s = -99
        scores.append(s)
        prev_end = dm.end
    return scores


def _pick_date(
    text: str, dates: list[DateMatch], scores: list[float], identity: bool
) -> DateMatch | None:
    best_i = -1
    for i, s in enumerate(scores):
        if s <= -99:
            continue
        if best_i < 0 or s > scores[best_i]:
            best_i = i
    if best_i < 0:
        return None
    s = scores[best_i]
    if s >= 3 or (s >= 0 and identity):
        return dates[best_i]
    return None


def _name_candidates(
    text: str, low: str, dates: list[DateMatch], birth: DateMatch | None, nik_pos: int | None
) -> list[_Cand]:
    cands: list[_Cand] = []

    def add(
        pos: int, lenient: bool, score: float, kind: str, need_follow_for_lower: bool = True
    ) -> None:
        got = _walk_name(text, pos, lenient)
        if got is None:
            return
        start, end, raw, has_lower = got
        follow = _followed_by_birth(text, end, dates)
        if has_lower and need_follow_for_lower and not follow:
            got = _walk_name(text, pos, False)
            if got is None:
                return
            start, end, raw, has_lower = got
            follow = _followed_by_birth(text, end, dates)
        value = clean_name(raw)
        if value is None:
            return
        cands.append(_Cand(value, score + (15 if follow else 0), start, end, kind))

    # labels: "Nama: X", "Nama saya X", "nama ibu saya X", "My name is X"
    for m in _first(RE_NAME_LABEL, text):
        after = m.end()
        lbl = m.group("lbl").lower()
        sep = m.group("sep")
        if RE_LABEL_SKIP.match(text, after) and not sep:
            continue
        if sep is None or sep.strip() not in (":", "=", ";"):
            rel = RE_REL_AFTER_LABEL.match(text, after)
            if rel and not lbl.startswith(("my", "full", "name")):
                add(rel.end(), True, 85, "rel")
                continue
        if RE_LABEL_SKIP.match(text, after) and sep and sep.strip() in ("-",):
            continue
        line_start = text.rfind("\n", 0, m.start()) + 1
        at_line_start = not text[line_start : m.start()].strip(" \t-*\u2022>0123456789.)")
        if lbl.startswith("my") or m.group("poss") or lbl in ("namaku", "jenengku"):
            add(after, True, 95, "label")
        elif lbl in ("namanya", "asmanipun", "naminipun", "jenenge"):
            add(after, True, 85, "label")
        elif sep:
            add(after, True, 100 if at_line_start else 92, "label", need_follow_for_lower=False)
        else:
            add(after, True, 80 if lbl.startswith(("nama", "full")) else 72, "label")

    def has(*words: str) -> bool:
        return any(w in low for w in words)

    for m in _first(RE_REL, text):
        # "saya istrinya" / "I am his daughter" are the writer, handled by RE_INTRO
        add(m.end(), True, 85, "rel")
    for m in _first(RE_REL_EN, text) if has("my ", "our ") else ():
        add(m.end(), False, 85, "rel")
    for m in _first(RE_CHILD_OF, text) if has("dari", "dr ", " of ") else ():
        add(m.end(), False, 80, "rel")
    for m in _first(RE_AN, text) if has("nama", "a.", "a/n", "a .") else ():
        add(m.end(), True, 80, "an")
    for m in _first(RE_INTRO, text):
        add(m.end(), True, 60, "intro")
    for m in _first(RE_DATA_LABEL, text) if has("data", "identitas") else ():
        add(m.end(), False, 70, "label")
    for m in _first(RE_HERE, text) if has("sini", "here") else ():
        add(m.start(1), False, 55, "intro")
    for m in _first(RE_DENGAN, text) if has("dengan", "ini") else ():
        add(m.end(), False, 55, "intro")
    for m in _first(RE_KTP_NAME, text) if has("ktp", "kk", "kartu") else ():
        add(m.end(), False, 97, "label")

    anchor = birth.start if birth is not None else nik_pos
    if anchor is not None:
        for m in _first(RE_SEGMENT_NAME, text, max(0, anchor - 90)):
            if m.end(1) > anchor:
                break
            if birth is not None and RE_ONLY_SEP.match(text, m.end(1), birth.start):
                continue  # "Serang, <date>": that is the place
            add(m.start(1), False, 45, "bare")

    # signature after a closing line, or "Thx, Kris"
    for m in _first(RE_CLOSING, text):
        nl = text.find("\n", m.end())
        if nl < 0:
            continue
        j = nl + 1
        while j < len(text) and text[j] in "\n \t":
            j += 1
        got = _walk_name(text, j, False)
        if got is None:
            continue
        line_end = text.find("\n", j)
        line_end = len(text) if line_end < 0 else line_end
        if text[got[1] : line_end].strip(" \t.,"):
            continue
        value = clean_name(got[2])
        if value:
            cands.append(_Cand(value, 20, got[0], got[1], "sign"))
    inline = has("thx", "thanks", "tks", "trims", "salam", "regards", "cheers")
    for m in _first(RE_INLINE_SIGN, text) if inline else ():
        got = _walk_name(text, m.end(), False)
        if got is None:
            continue
        tail = text[got[1] : got[1] + 3]
        if tail.strip(" \t.!") and not tail.startswith("\n"):
            continue
        value = clean_name(got[2])
        if value:
            cands.append(_Cand(value, 18, got[0], got[1], "sign"))
    return cands


def _choose_name(text: str, cands: list[_Cand]) -> _Cand | None:
    if not cands:
        return None
    third = any(c.kind == "rel" for c in cands) or bool(RE_THIRD_PARTY.search(text))
    best: _Cand | None = None
    for c in cands:
        s = c.score
        if third and c.kind in ("intro", "bare", "sign") and s < 70:
            s -= 25
        c.score = s
        if best is None or s > best.score or (s == best.score and c.start < best.start):
            best = c
    # a signature under a letter written for someone else is not the identity
    return best if best is not None and best.score >= 15 else None


def _subject_name(subject: str) -> str | None:
    if not subject:
        return None
    for rx in (RE_AN, RE_NAME_LABEL):
        for m in rx.finditer(subject):
            got = _walk_name(subject, m.end(), False)
            if got:
                v = clean_name(got[2])
                if v:
                    return v
    tail = RE_SUBJ_TAIL.search(subject)
    if tail:
        got = _walk_name(subject, tail.start(1), False)
        if got and got[1] >= len(subject.rstrip()) - 1:
            return clean_name(got[2])
    return None


def _place_candidates(
    text: str,
    dates: list[DateMatch],
    date_scores: list[float],
    birth: DateMatch | None,
    name_span: tuple[int, int] | None,
) -> list[_Cand]:
    cands: list[_Cand] = []

    def add(got: tuple[int, int, str, bool] | None, score: float, kind: str) -> None:
        if got is None:
            return
        value = clean_place(got[2])
        if value is None:
            return
        if name_span and got[0] < name_span[1] and got[1] > name_span[0]:
            return
        if birth is not None and abs(got[0] - birth.start) <= 80:
            score += 2
        cands.append(_Cand(value, score, got[0], got[1], kind))

    def line_end(pos: int) -> int:
        nl = text.find("\n", pos)
        return min(len(text), pos + 120) if nl < 0 else min(nl, pos + 120)

    for m in _first(RE_PLACE_LABEL, text):
        if m.group().strip(" \t:").lower() == "tempat":
            # a bare "Tempat:" line is a birth place only inside a birth-data form
            line_start = text.rfind("\n", 0, m.start()) + 1
            if text[line_start : m.start()].strip(" \t-*\u2022") or not RE_BIRTH_CUE.search(
                text, max(0, m.start() - 120), m.end() + 120
            ):
                continue
        add(_walk_place(text, m.end(), True, line_end(m.end())), 10, "label")

    for m in _first(RE_TTL_LABEL, text):
        weak = m.group("weak") is not None
        if weak and not m.group("sep"):
            continue
        v0, v1 = m.end(), line_end(m.end())
        d = _date_within(dates, v0, v1)
        if d is not None and d.start < v1:
            pre = text[v0 : d.start]
            if any(ch.isalpha() for ch in pre):
                add(_walk_place(text, v0, True, d.start), 10, "ttl")
            else:
                after = d.end
                mm = RE_AFTER_DATE_PLACE.match(text, after)
                if mm:
                    after = mm.end()
                else:
                    while after < v1 and text[after] in " \t,/-":
                        after += 1
                add(_walk_place(text, after, True, v1), 9, "ttl")
        else:
            add(_walk_place(text, v0, True, v1), 9 if not weak else 6, "ttl")

    for m in _first(RE_PLACE_PROSE, text):
        if m.group("prep"):
            add(_walk_place(text, m.end(), True), 8, "prose")
            continue
        got = _walk_place(text, m.end(), False)
        if got is None or got[3]:
            got = _walk_place(text, m.end(), True)
            if got is None:
                continue
            # lower-case words after "lahir" only when a date follows
            if _date_within(dates, got[1], got[1] + 25) is None:
                continue
        add(got, 7, "prose")

    # "<birth date> di X" / "born <date> in X" / "lahir 1995 di X"
    for dm, s in zip(dates, date_scores, strict=True):
        if s < 3 and dm is not birth:
            continue
        mm = RE_AFTER_DATE_PLACE.match(text, dm.end)
        if mm:
            add(_walk_place(text, mm.end(), True), 7, "after-date")
    if birth is not None:
        # "Budi Santoso, 17-8-1985, Bandung, 3273..."
        mm = RE_COMMA.match(text, birth.end)
        if mm:
            got = _walk_place(text, mm.end(), False)
            if got is not None and RE_PLACE_END.match(text, got[1]):
                add(got, 3, "after-date-comma")
    for ym in _first(RE_BARE_YEAR, text):
        if not RE_BIRTH_CUE.search(text, max(0, ym.start() - 25), ym.start()):
            continue
        mm = RE_AFTER_DATE_PLACE.match(text, ym.end())
        if mm:
            add(_walk_place(text, mm.end(), True), 6, "after-year")

    # "X, <birth date>" / "X <birth date>" right after a boundary
    if birth is not None:
        seg_start = max(0, birth.start - 50)
        seg = text[seg_start : birth.start]
        pm = RE_PLACE_BEFORE_DATE.search(seg)
        if pm:
            pos = seg_start + pm.start(1)
            got = _walk_place(text, pos, False, birth.start)
            if got is not None and got[1] >= seg_start + pm.end(1) - 1:
                add(got, 4, "before-date")
    return cands


# ============================================================== public =====


def extract(text: str | None, subject: str | None = None) -> Extracted:
    """Read full name, birth place, birth date and NIK from one message.

    Fields not written in the message are ``None``; nothing is derived from
    the NIK.  Never raises on any input.
    """
    try:
        return _extract(text, subject)
    except RecursionError:  # pragma: no cover - defensive
        return Extracted()


RE_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")


def _looks_binary(raw: object) -> bool:
    """Bytes that are not text (control characters, decoding errors)."""
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw[:4000]).decode("utf-8", "replace")
    if not isinstance(raw, str) or len(raw) < 40:
        return False
    sample = raw[:4000]
    return len(RE_BINARY.findall(sample)) > 0.05 * len(sample)


def _extract(text: str | None, subject: str | None) -> Extracted:
    body = clean_text(text)
    subj = clean_subject(subject)
    if not body and not subj:
        return Extracted()
    if _looks_binary(text):
        return Extracted()

    low = body.lower()
    dates = find_dates(body)
    niks = [
        c
        for c in find_nik_candidates(body)
        if c.label > 0 or not any(d.start < c.end and c.start < d.end for d in dates)
    ]
    score_candidates(body, niks)
    ok_niks = [c.nik for c in niks if c.score >= 5]

    date_scores = _score_dates(body, dates, ok_niks)
    identity = bool(ok_niks) or any(w in low for w in IDENTITY_WORDS)
    birth = _pick_date(body, dates, date_scores, identity)
    birth_date: _dt.date | None = birth.date if birth else None

    nik: str | None = None
    nik_pos: int | None = None
    if niks:
        for c in niks:
            if birth_date is not None and nik_matches_date(c.nik, birth_date):
                c.score += 4
        best = max(niks, key=lambda c: c.score)
        if best.score >= 5:
            nik, nik_pos = best.nik, best.start
    if nik is None and subj:
        sc = find_nik_candidates(subj)
        score_candidates(subj, sc, birth_date)
        good = [c for c in sc if c.label > 0 and c.score >= 5]
        if good:
            nik = good[0].nik

    if nik is None and birth is None and RE_SPAM.search(body):
        return Extracted()

    cands = _name_candidates(body, low, dates, birth, nik_pos)
    chosen = _choose_name(body, cands)
    name = chosen.value if chosen else None
    if name is None:
        name = _subject_name(subj)

    places = _place_candidates(
        body, dates, date_scores, birth, (chosen.start, chosen.end) if chosen else None
    )
    place = None
    if places:
        bp = max(places, key=lambda c: (c.score, -c.start))
        place = bp.value
        after = [c for c in places if c.kind == "after-date-comma"]
        if name is None and chosen is None and bp.kind == "before-date" and after:
            # "Budi Santoso, 17-8-1985, Bandung": name, date, place
            name = clean_name(body[bp.start : bp.end])
            place = after[0].value

    # a lone date needs a close "lahir"/"DOB" cue or it is just a date
    alone = name is None and nik is None and place is None
    if alone and birth is not None and date_scores[dates.index(birth)] < 6:
        birth_date = None

    return Extracted(
        full_name=name,
        birth_place=place,
        birth_date=birth_date.isoformat() if birth_date else None,
        nik=nik,
    )
