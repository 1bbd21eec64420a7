"""Comparison of claimed identity fields (name, place of birth) with the recorded ones.

One rule for every channel (web form, e-mail, social-media message, desk): the verification
service calls :func:`names_match` and :func:`places_match` with what the person claimed and what
the registry holds. Both sides go through the *same* normalisation, so a rule can only make two
spellings equal if it rewrites them to the same string.

Names (:func:`normalize_name`)
------------------------------
1. Unicode NFKC, upper case, accents removed (``JOSÉ`` -> ``JOSE``).
2. Titles removed (:func:`remove_titles`, then :func:`strip_titles`):

   * academic degrees (*gelar*), e.g. ``S.Pd.``, ``S.Kom``, ``A.Md.``, ``M.Si``, written with or
     without dots and spaces (``S.Pd``, ``S. Pd``, ``SPd``) - see :data:`DEGREES`;
   * honorifics and religious titles anywhere in the name: ``Hj.`` (hajjah), ``Dr.``, ``Ir.``,
     ``Drs.``/``Dra.``, ``Prof.``, ``KH.`` (kyai haji), ``Bapak``/``Bpk``/``Pak``, ``Ibu``/``Bu``,
     ``Sdr``/``Sdri`` (saudara/i, Mr/Ms), ``Tn``/``Ny``/``Nn`` (tuan, nyonya, nona), ``Raden``,
     ``Rd.``, ``Rr.`` (raden roro), ``R.A.`` (raden ayu/ajeng)... - see :data:`HONORIFICS`;
   * ``H.`` (haji), ``Habib``, ``Tuan`` and ``Nona`` only at the *start* of the name
     (:data:`LEADING_HONORIFICS`): elsewhere ``H`` is far more likely a real initial (Budi H. =
     Budi Hartono) and Habib/Tuan/Nona can be given names.
   * **"R." is kept.** It is often Raden, but it is just as often a real initial, and Dukcapil
     records it as part of the name when it is on the KTP. Only the unambiguous forms (``Raden``,
     ``Rd.``, ``Rr.``, ``R.A.``, ``R.Aj.``, ``R.Ay.``) are removed.
3. Punctuation removed (apostrophes join: ``Ma'ruf`` -> ``MARUF``; anything else splits),
   single spaces.
4. Old (pre-1972) spellings rewritten on both sides: ``OE``->``U`` (Soekarno = Sukarno),
   ``DJ``->``J``, ``TJ``->``C``, ``SJ``->``SY``, and ``CH``->``KH`` (Choirul = Khoirul, Achmad =
   Akhmad). These letter pairs do not distinguish two different modern Indonesian names. The
   old ``J``->``Y`` rule is *not* applied: Joko and Yoko are different names today.
5. Whole-token variants of a few very common names are canonicalised (:data:`NAME_VARIANTS`):
   every spelling and abbreviation of Muhammad (``M.``, ``Moch.``, ``Moh.``, ``Muh.``, ``Mhd.``,
   ``Mochammad``, ``Mohamad``...) -> ``MUHAMMAD``; ``Achmad``/``Akhmad``/``Ahmed`` -> ``AHMAD``;
   ``Abd.`` -> ``ABDUL``; ``Noor``/``Noer`` -> ``NUR``. A lone ``M`` is always read as Muhammad,
   so "Budi M." (Budi Mulyono) equals "Budi Muhammad": accepted, because the name is never the
   only factor.

:func:`names_match` accepts equal normalised names, names that differ only in spacing
(``NOVITASARI`` = ``NOVITA SARI``), and **one typo** (one insertion, deletion, substitution or
swap of adjacent letters) provided that the recorded name has at least
:data:`NAME_TYPO_MIN_LETTERS` (10) letters, both names have the same number of words, and the typo
is inside a single word of at least :data:`NAME_TYPO_MIN_WORD_LETTERS` (5) letters and leaves
that word's first and last letters alone (they are what tells Budianto from Rudianto, Susanto
from Susanti, Putra from Putri, Hasan from Hasna, Dian from Diana) - except the Javanese A/O
ending of one name (Santosa = Santoso). So "Budi Santosa" matches "BUDI SANTOSO" and "Annisa
Rahmadani" matches "ANISA RAHMADANI", but "Dewi Kurniawan" does not match "DEDI KURNIAWAN" (a
different, shorter first name), "Susanti Wibowo" does not match "SUSANTO WIBOWO", "Siti Aminah"
does not match "SITI AMINAH PUTRI" (a missing word) and word order matters.

Places (:func:`normalize_place`)
--------------------------------
Same cleaning, plus the administrative prefixes ``Kota``, ``Kab.``/``Kabupaten``, ``Kotamadya``,
``Kodya``, ``Adm.``/``Administrasi``, ``DKI``, ``Prov.``/``Provinsi`` removed from the start
("Kab. Sleman" -> ``SLEMAN``; "Jakarta Selatan" stays), old spellings rewritten (not ``CH``,
which would turn Aceh into Akeh), and a few well-known colloquial names mapped to the official
one (:data:`PLACE_ALIASES`: Solo -> Surakarta, Jogja -> Yogyakarta, Ujung Pandang -> Makassar).
:func:`places_match` ignores spaces (``PEMATANG SIANTAR`` = ``PEMATANGSIANTAR``) and accepts one
typo when the recorded place has at least :data:`PLACE_TYPO_MIN_LETTERS` (5) letters (Pati is
not Pari). "Jakarta" does not match "Jakarta Selatan".

Speed: everything is precompiled at import; a comparison costs a few microseconds. Nothing is
cached, so no personal data stays in memory after a call.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

from rapidfuzz.distance import OSA

__all__ = [
    "DEGREES",
    "HONORIFICS",
    "LEADING_HONORIFICS",
    "MUHAMMAD_VARIANTS",
    "NAME_TYPO_MIN_LETTERS",
    "NAME_TYPO_MIN_WORD_LETTERS",
    "NAME_VARIANTS",
    "PLACE_ALIASES",
    "PLACE_PREFIXES",
    "PLACE_TYPO_MIN_LETTERS",
    "canonical_token",
    "is_title",
    "names_match",
    "normalize_name",
    "normalize_place",
    "places_match",
    "remove_titles",
    "strip_titles",
    "title_key",
]

#: Minimum letters in the normalised recorded name before one typo is forgiven.
NAME_TYPO_MIN_LETTERS: Final = 10
#: Minimum letters of the (recorded) word that contains the typo.
NAME_TYPO_MIN_WORD_LETTERS: Final = 5
#: Minimum letters in the normalised recorded place before one typo is forgiven.
PLACE_TYPO_MIN_LETTERS: Final = 5

#: Academic degrees (gelar akademik), as usually written. Dots separate the parts that may be
#: written with or without dots and spaces. Removed wherever they appear.
DEGREES: Final[tuple[str, ...]] = (
    # Bachelor (sarjana, S1)
    "S.Ag", "S.Ak", "S.Ars", "S.E", "S.E.I", "S.Farm", "S.Gz", "S.H", "S.H.I", "S.Hut",
    "S.I.Kom", "S.I.P", "S.IP", "S.Kep", "S.Ked", "S.Keb", "S.Kes", "S.K.M", "S.KG", "S.Kom",
    "S.P", "S.Pd", "S.Pd.I", "S.Pd.SD", "S.Pi", "S.Psi", "S.Pt", "S.S", "S.Si", "S.Sn",
    "S.Sos", "S.Sos.I", "S.ST", "S.STP", "S.T", "S.Th", "S.TP", "S.Tr", "S.Tr.Keb", "Lc",
    # Diploma (ahli madya, D3)
    "A.Md", "A.Md.Keb", "A.Md.Kep", "A.Md.Kes", "A.Md.Kom", "A.Md.Farm", "A.Md.Ak", "A.Md.T",
    # Master and doctorate
    "M.Ag", "M.Ak", "M.Hum", "M.H", "M.Kes", "M.Kn", "M.Kom", "M.M", "M.Pd", "M.Pd.I",
    "M.Psi", "M.Si", "M.Sc", "M.Sn", "M.T", "M.Eng", "MBA", "Ph.D",
    # Profession
    "Ns", "Apt",
)  # fmt: skip

#: Honorifics and religious/noble titles removed wherever they appear as a token.
HONORIFICS: Final[tuple[str, ...]] = (
    "Hj", "Haji", "Hajah", "Hajjah", "K.H", "Kyai", "Kiai", "Ust", "Ustad", "Ustadz",
    "Ustadzah", "Syekh",
    "Dr", "Drs", "Dra", "Drg", "Drh", "Ir", "Prof",
    "Bapak", "Bpk", "Pak", "Ibu", "Bu", "Sdr", "Sdri", "Saudara", "Saudari", "Tn", "Ny",
    "Nyonya", "Nn",
    "Raden", "Rd", "Rr", "R.A", "R.Aj", "R.Ay",
)  # fmt: skip

#: Titles that are also initials or given names: removed only from the start of a name.
LEADING_HONORIFICS: Final[tuple[str, ...]] = ("H", "Habib", "Tuan", "Nona")

#: Every whole-token spelling or abbreviation of Muhammad (upper case, without dots).
MUHAMMAD_VARIANTS: Final[frozenset[str]] = frozenset(
    {
        "MUHAMMAD", "MUHAMAD", "MUHAMMMAD", "MUHAMMED", "MUHAMED", "MUCHAMMAD", "MUCHAMAD",
        "MUKHAMMAD", "MUKHAMAD", "MOHAMMAD", "MOHAMAD", "MOHAMMED", "MOHAMED", "MOCHAMMAD",
        "MOCHAMAD", "MOCHAMAT", "MOKHAMMAD", "MOKHAMAD", "MOCH", "MOH", "MOHD", "MUH", "MUHD",
        "MHD", "MHMD", "MUHAMMADD", "M",
    }
)  # fmt: skip

_VARIANT_GROUPS: Final[Mapping[str, Iterable[str]]] = {
    "MUHAMMAD": MUHAMMAD_VARIANTS,
    "AHMAD": ("AHMAD", "ACHMAD", "AKHMAD", "AHMED"),
    "ABDUL": ("ABDUL", "ABD", "ABDOEL"),
    "NUR": ("NUR", "NOOR", "NOER"),
}

#: Colloquial or former place names -> official name (keys without spaces, after respelling).
_PLACE_ALIAS_GROUPS: Final[Mapping[str, Iterable[str]]] = {
    "SURAKARTA": ("SOLO",),
    "YOGYAKARTA": (
        "JOGJA", "JOGJAKARTA", "JOGYA", "JOGYAKARTA", "JOKJA", "JOKJAKARTA", "YOGYA",
        "YOGJAKARTA", "DJOKJAKARTA", "DJOGJAKARTA",
    ),
    "MAKASSAR": ("UJUNGPANDANG",),
}  # fmt: skip

#: Administrative words removed from the start of a place name.
PLACE_PREFIXES: Final[frozenset[str]] = frozenset(
    {"KOTA", "KAB", "KABUPATEN", "KOTAMADYA", "KODYA", "ADM", "ADMINISTRASI", "KOTAADM", "DKI",
     "PROV", "PROVINSI"}
)

_NAME_RESPELLINGS: Final = (("OE", "U"), ("DJ", "J"), ("TJ", "C"), ("SJ", "SY"), ("CH", "KH"))
_PLACE_RESPELLINGS: Final = (("OE", "U"), ("DJ", "J"), ("TJ", "C"), ("SJ", "SY"))

_LETTER = r"[^\W\d_]"
_APOSTROPHES = re.compile(r"['`´‘’ʼ]")
_NON_LETTERS = re.compile(r"[\W\d_]+")


def title_key(token: str) -> str:
    """A title or token reduced to its upper-case letters: ``"S.Pd."`` -> ``"SPD"``."""
    return "".join(ch for ch in token.upper() if ch.isalpha())


def _respell(text: str, rules: Sequence[tuple[str, str]]) -> str:
    for old, new in rules:
        if old in text:
            text = text.replace(old, new)
    return text


def _title_pattern(titles: Iterable[str], flags: int = 0) -> re.Pattern[str]:
    alternatives = []
    for title in titles:
        parts = [re.escape(part) for part in title.upper().split(".") if part]
        alternatives.append(r"\.?\s*".join(parts))
    # Longest first, so that S.Pd.I wins over S.Pd when both fit.
    alternatives.sort(key=len, reverse=True)
    return re.compile(rf"(?<!{_LETTER})(?:{'|'.join(alternatives)})(?:\.|(?!{_LETTER}))", flags)


_TITLE_RE: Final = _title_pattern(DEGREES + HONORIFICS, re.IGNORECASE)
# Case-sensitive twin for text that is already upper case: about three times faster.
_UPPER_TITLE_RE: Final = _title_pattern(DEGREES + HONORIFICS)
_TITLE_KEYS: Final = frozenset(title_key(t) for t in DEGREES + HONORIFICS)
_LEADING_TITLE_KEYS: Final = frozenset(title_key(t) for t in LEADING_HONORIFICS)
_SPLIT_TITLE_FIRST_PARTS: Final = frozenset(title_key(t.split(".")[0]) for t in DEGREES)


def _build_variants() -> Mapping[str, str]:
    table: dict[str, str] = {}
    for canonical, variants in _VARIANT_GROUPS.items():
        for variant in variants:
            key = _respell(variant, _NAME_RESPELLINGS)
            if table.get(key, canonical) != canonical:
                raise ValueError(f"name variant {variant} is in two groups")
            table[key] = canonical
    return MappingProxyType(table)


#: Whole-token name variant (respelled, see the module docstring) -> canonical token.
NAME_VARIANTS: Final[Mapping[str, str]] = _build_variants()

#: Place name without spaces (respelled) -> official name.
PLACE_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        _respell(alias, _PLACE_RESPELLINGS): official
        for official, aliases in _PLACE_ALIAS_GROUPS.items()
        for alias in aliases
    }
)


def is_title(token: str) -> bool:
    """Whether ``token`` (any case, dots allowed) is a degree or an honorific, leading or not."""
    key = title_key(token)
    return key in _TITLE_KEYS or key in _LEADING_TITLE_KEYS


def remove_titles(text: str) -> str:
    """Blank out degrees and honorifics (:data:`DEGREES`, :data:`HONORIFICS`) in free text.

    Works on raw text in any case, with or without dots: ``"Hj. Umi Kalsum, S.Pd."`` ->
    ``"  Umi Kalsum,  "``. Leading-only titles such as ``H.`` are left to :func:`strip_titles`.
    """
    return _TITLE_RE.sub(" ", text)


def strip_titles(tokens: Sequence[str]) -> list[str]:
    """Drop title tokens from a tokenised name, keeping real initials.

    A token is dropped if its letters (:func:`title_key`) are a degree or honorific, if it and
    the next token together spell a degree (``"S."`` + ``"Pd"``), or if it is a leading-only
    title (``H``, ``Habib``...) and only titles precede it. A name is never stripped to nothing
    by leading-only titles: ``["Habib"]`` stays.
    """
    kept: list[str] = []
    leading = True
    i = 0
    count = len(tokens)
    while i < count:
        key = title_key(tokens[i])
        if key in _TITLE_KEYS:
            i += 1
            continue
        if (
            i + 1 < count
            and key in _SPLIT_TITLE_FIRST_PARTS
            and len(next_key := title_key(tokens[i + 1])) >= 2
            and key + next_key in _TITLE_KEYS
        ):
            i += 2
            continue
        if leading and key in _LEADING_TITLE_KEYS and i + 1 < count:
            i += 1
            continue
        if key:
            leading = False
            kept.append(tokens[i])
        i += 1
    return kept


def canonical_token(token: str) -> str:
    """Respell one upper-case name token and map it to its canonical variant (``MOCH`` ->
    ``MUHAMMAD``, ``SOEKARNO`` -> ``SUKARNO``)."""
    token = _respell(token, _NAME_RESPELLINGS)
    return NAME_VARIANTS.get(token, token)


def _clean(text: str) -> str:
    """NFKC, upper case, no accents."""
    text = unicodedata.normalize("NFKC", text).upper()
    if not text.isascii():
        text = "".join(
            ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
        )
    return text


def _letters_only(text: str) -> str:
    return _NON_LETTERS.sub(" ", _APOSTROPHES.sub("", text))


def normalize_name(name: str) -> str:
    """Normalise a person's name for comparison (see the module docstring)."""
    text = _letters_only(_UPPER_TITLE_RE.sub(" ", _clean(name)))
    tokens = strip_titles(text.split())
    return " ".join([canonical_token(token) for token in tokens])


def _place_tokens(place: str) -> list[str]:
    return _respell(_letters_only(_clean(place)), _PLACE_RESPELLINGS).split()


def _strip_place_prefixes(tokens: list[str]) -> list[str]:
    start = 0
    while start < len(tokens) - 1 and tokens[start] in PLACE_PREFIXES:
        start += 1
    return tokens[start:]


def _place_alias(tokens: list[str]) -> str:
    joined = " ".join(tokens)
    return PLACE_ALIASES.get(joined.replace(" ", ""), joined)


def normalize_place(place: str) -> str:
    """Normalise a place of birth: ``"Kab. Sleman"`` -> ``"SLEMAN"``, ``"Solo"`` ->
    ``"SURAKARTA"``, ``"Jakarta Selatan"`` -> ``"JAKARTA SELATAN"``."""
    return _place_alias(_strip_place_prefixes(_place_tokens(place)))


# Forms of address that are also given names on KTPs ("NENG SITI", "MAS AGUS", "UNI ASNI"): the
# free-text extractor drops them as honorifics, a registry may hold them as part of the name.
# A name that differs from the other only by one of these leading words still matches.
SPOKEN_HONORIFICS = frozenset(
    "MAS MBAK NENG NING KANG AKANG AA CAK UDA UNI MPOK TEH BANG ABANG GUS KAK DEK NYAI "
    "EYANG MBAH OM KOH CIK".split()
)


def names_match(claimed: str, recorded: str) -> bool:
    """Whether a claimed name is the recorded name (see the module docstring for the rule)."""
    a = normalize_name(claimed)
    b = normalize_name(recorded)
    if not a or not b:
        return False
    if _normalized_names_match(a, b):
        return True
    a_first, _, a_rest = a.partition(" ")
    b_first, _, b_rest = b.partition(" ")
    if b_rest and b_first in SPOKEN_HONORIFICS and _normalized_names_match(a, b_rest):
        return True
    return bool(a_rest and a_first in SPOKEN_HONORIFICS and _normalized_names_match(a_rest, b))


def _normalized_names_match(a: str, b: str) -> bool:
    if a == b:
        return True
    b_letters = b.replace(" ", "")
    if a.replace(" ", "") == b_letters:
        return True
    if len(b_letters) < NAME_TYPO_MIN_LETTERS:
        return False
    a_words, b_words = a.split(), b.split()
    if len(a_words) != len(b_words):
        return False
    different = [(x, y) for x, y in zip(a_words, b_words, strict=True) if x != y]
    if len(different) != 1:
        return False
    claimed_word, recorded_word = different[0]
    return len(recorded_word) >= NAME_TYPO_MIN_WORD_LETTERS and _is_typo(claimed_word,
                                                                          recorded_word)


def _is_typo(claimed: str, recorded: str) -> bool:
    """One typo inside the word, never at its first or last letter: those letters tell
    different names apart (Budianto / Rudianto; Susanto / Susanti, Putra / Putri, Hasan / Hasna,
    Dian / Diana). The one exception is the Javanese A/O ending of the same name (Santosa /
    Santoso, Sutrisna / Sutrisno)."""
    if claimed[0] != recorded[0]:
        return False
    if claimed[-1] != recorded[-1]:
        return claimed[:-1] == recorded[:-1] and {claimed[-1], recorded[-1]} == {"A", "O"}
    return OSA.distance(claimed[:-1], recorded[:-1], score_cutoff=1) <= 1


def places_match(claimed: str, recorded: str) -> bool:
    """Whether a claimed place of birth is the recorded one (spaces ignored, one typo allowed
    when the recorded place has at least :data:`PLACE_TYPO_MIN_LETTERS` letters)."""
    claimed_tokens = _place_tokens(claimed)
    recorded_tokens = _place_tokens(recorded)
    a = _place_alias(_strip_place_prefixes(claimed_tokens)).replace(" ", "")
    b = _place_alias(_strip_place_prefixes(recorded_tokens)).replace(" ", "")
    if not a or not b:
        return False
    if a == b or "".join(claimed_tokens) == "".join(recorded_tokens):
        # The second test catches a prefix word that is part of the name: Kotabaru = Kota Baru.
        return True
    return len(b) >= PLACE_TYPO_MIN_LETTERS and OSA.distance(a, b, score_cutoff=1) <= 1
