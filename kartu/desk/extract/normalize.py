"""Word lists and normalisers for names and places.

Kept inside the extractor on purpose: the registry matcher has its own
normaliser and the two must not depend on each other.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --- titles, honorifics and academic degrees --------------------------------

# Leading titles / honorifics, lower case, without dots.
TITLES = _words(
    """
    bapak bpk bp pak ibu ibuk bu sdr sdri sdra saudara saudari tuan tn nyonya ny nona nn
    h hj hj hajjah hajah haji dr drs dra ir prof kh kyai kiai nyai gus ust ustadz ustad
    ustadzah ustazah mr mrs ms miss mas mbak mba mbok kak kakak bang abang om tante teh
    aa akang kang cak ning neng uda uni mpok mpo ns apt alm almarhum almh almarhumah pdt
    romo bro sis dek adik mak mamak emak eyang mbah pakde bude bulik paklik ko koh cik
    cici engkoh syekh sir madam dra drg
    """
)

# Titles that may also be removed inside a name when written with a dot
# ("Nur Aisyah binti H. Abdullah").
INNER_DOT_TITLES = _words(
    """
    h hj dr drs dra ir prof drg
    """
)

# Degrees written without dots that are stripped at the end of a name.
DEGREES = _words(
    """
    se sh st mm mt mh mba phd spd spdi skom ssos sag sip skm msi mpd mkom msc amd amk lc
    bsc skep sfarm spsi sked ssi shum sikom ak cpa ssn
    """
)

# "S.Pd.", "M.M", "A.Md.Kep", "Sp.PD", "Ph.D" ... at least two dotted parts.
RE_DOTTED_DEGREE = re.compile(r"^(?:[A-Za-z]{1,4}\.){1,4}[A-Za-z]{0,5}\.?$")

# Name particles that are written in lower case inside a name.
PARTICLES = _words(
    """
    bin binti br boru van der den de da al el la von ibn bt
    """
)

# First tokens of organisations, never a person's name.
ORG_WORDS = _words(
    """
    pt cv ud tbk tim team kantor bank dinas yayasan koperasi rs rsud hotel bpjs admin
    customer cs sobat
    """
)

# Pronouns ("I") that are also given names (Abdi, Ambo, Beta ...): a name
# when capitalised and followed by another capitalised word.
PRONOUN_NAMES = _words("abdi ambo beta dalem tiang aye ulun awak kula")
# Greeting words that are also given names (Sugeng, Slamet/Selamat, Salam ...).
AMBIGUOUS_NAMES = PRONOUN_NAMES | _words("sugeng selamat salam kasih lalu")

# Words that end (or forbid) a person's name.  Lower case.
NAME_STOP = _words(
    """
    lahri lhir lahr lahie alias als aq saking seking soko seko asli
    saya sy aku ak gue gw gua ane kulo kula dalem abdi sa
    beta ulun ambo aye tiang ahu
    awak kami kita dia beliau me my we our you your he she his her mau mo mw ingin
    pengen pingin pengin hendak akan arep bade badhe ajeng tanya nanya menanyakan
    tanyakan nanyain bertanya minta meminta mohon memohon tolong nyuwun nyuhunkeun nunas
    mintak njaluk tulung bantu bantuan cek check ngecek mengecek lahir lahirnya lhr lair
    lahia kelahiran kalahiran dilahirkan born ttl tgl tanggal tempat tmpt tmp nik ktp
    dob pob dari dr di ke pada pd utk untuk buat bagi yang yg ini itu tsb nih tuh adalah
    ialah yaitu yakni bernama namanya nama name asal umur usia alamat domisili tinggal
    kerja bekerja karyawan pegawai staff staf buruh pekerja peserta anggota warga dengan
    dgn sebagai selaku dan and serta atau or with from at in on was is are am the here
    there sini disini situ ya yah kak min admin gan sis bro dong deh sih kah pun juga jg
    lho kok ko lupa kehilangan hilang ilang ical kartu kartunya kpj bpjs bpjstk jht jkm
    jp nomor no nmr nomer number data sudah udah udh sdh telah belum blm lagi lg sedang
    tidak tdk gak ga nggak enggak engga ora mboten henteu teu not no anak anaknya istri
    istrinya isteri suami suaminya adik adiknya adek kakak kakaknya ayah ayahnya ibunya
    bapaknya mama mamah papa papah orang ortu tua mertua rumah tangga selamat terima
    kasih makasih terimakasih thanks thank thx tq trims tks salam hormat regards
    wassalam matur nuwun hatur nuhun suksma punten permisi assalamualaikum halo hallo
    hai hi hello hey dear pagi siang sore malam mlm enjang sugeng wilujeng horas good
    morning afternoon evening please pls tlg mhn jika kalau kalo klo karena krn soalnya
    sebab tapi tetapi namun terus lalu kemudian sekarang skrg masih cuma hanya sendiri
    just only also lost need want would like can could help send to for of by via
    mengajukan ajukan permohonan informasi info berikut sbb dibawah bawah bertanda
    tangan atas kepada yth perihal lampiran hp wa telp telepon email sesuai
    """
)

# Words that end a place name.  Lower case.
PLACE_STOP = NAME_STOP | _words(
    """
    tahun thn th taun bulan bln wulan sasih hari jam pukul provinsi prov propinsi
    kecamatan kec sekitar kira kurang lebih tapi namun tp januari februari pebruari
    maret april mei juni juli agustus september oktober november nopember desember
    january february march may june july august october december jan feb peb mar apr jun
    jul agu agt ags agst aug sep sept okt oct nov nop des dec
    """
)

# Administrative prefixes removed from a place.
PLACE_PREFIXES = _words(
    """
    kota kab kabupaten kec kecamatan kel kelurahan desa ds dusun dsn dki kodya kotamadya
    """
)

# "Kota X" where "Kota" is part of the name.
KOTA_KEEP = _words(
    """
    baru agung bumi mobagu jantho pinang waringin raja tinggi
    """
)

# Provinces and their abbreviations, removed from the end of a longer place.
TRAILING_PROVINCES = (
    "sumatera utara",
    "sumatra utara",
    "sumatera barat",
    "sumatra barat",
    "sumatera selatan",
    "sumatra selatan",
    "jawa barat",
    "jawa tengah",
    "jawa timur",
    "kalimantan barat",
    "kalimantan tengah",
    "kalimantan selatan",
    "kalimantan timur",
    "kalimantan utara",
    "sulawesi utara",
    "sulawesi tengah",
    "sulawesi selatan",
    "sulawesi tenggara",
    "sulawesi barat",
    "nusa tenggara barat",
    "nusa tenggara timur",
    "bangka belitung",
    "kepulauan riau",
    "maluku utara",
    "papua barat",
    "di yogyakarta",
    "d.i. yogyakarta",
    "daerah istimewa yogyakarta",
    "sumut",
    "sumbar",
    "sumsel",
    "jabar",
    "jateng",
    "jatim",
    "kalbar",
    "kalteng",
    "kalsel",
    "kaltim",
    "kaltara",
    "sulut",
    "sulteng",
    "sulsel",
    "sultra",
    "sulbar",
    "ntb",
    "ntt",
    "diy",
    "babel",
    "kepri",
    "malut",
    "indonesia",
)

_RE_SPACES = re.compile(r"\s+")
_RE_EDGE_PUNCT = re.compile(r"^[\s.,;:\-/'\"()]+|[\s,;:\-/'\"()]+$")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})


def _bare(token: str) -> str:
    """Lower case token without dots and surrounding punctuation."""
    return token.strip(".,;:()").replace(".", "").lower()


def is_title(token: str) -> bool:
    return _bare(token) in TITLES


def is_degree(token: str) -> bool:
    t = token.strip(",;()")
    if not t:
        return False
    if _bare(t) in DEGREES:
        return True
    return "." in t.rstrip(".") and bool(RE_DOTTED_DEGREE.match(t))


# Abbreviations that keep their dot inside a name ("M. Rizky", "Moh. Ali").
KEEP_DOT = frozenset(["moh", "muh", "mhd", "moch", "mochd", "ach", "abd", "md", "mu", "st", "ny"])


def _strip_token(tok: str) -> str:
    core = _RE_EDGE_PUNCT.sub("", tok).rstrip(".")
    if tok.endswith(".") and core and (len(core) == 1 or core.lower() in KEEP_DOT):
        return core + "."
    return core


def clean_name(raw: str | None) -> str | None:
    """Upper-case a captured name and remove titles and degrees."""
    if not raw:
        return None
    text = raw.translate(_APOSTROPHES)
    # degrees usually follow a comma: "Umi Kalsum, S.Pd."
    text = text.split(",")[0]
    tokens = [t for t in _RE_SPACES.split(text) if t]
    while tokens and (is_title(tokens[0]) or _bare(tokens[0]) in ("min", "admin", "kak")):
        tokens.pop(0)
    while len(tokens) > 1 and is_degree(tokens[-1]):
        tokens.pop()
    if len(tokens) > 2:
        kept = [tokens[0]]
        for i in range(1, len(tokens)):
            tok = tokens[i]
            if i < len(tokens) - 1 and tok.endswith(".") and _bare(tok) in INNER_DOT_TITLES:
                continue
            kept.append(tok)
        tokens = kept
    tokens = [_strip_token(t) for t in tokens]
    tokens = [t for t in tokens if t]
    if not tokens or len(tokens) > 8:
        return None
    first = _bare(tokens[0])
    if first in ORG_WORDS:
        return None
    if first in NAME_STOP and not (
        len(tokens) > 1
        and ((first == "anak" and _bare(tokens[1]) == "agung") or first in AMBIGUOUS_NAMES)
    ):
        return None
    letters = sum(ch.isalpha() for t in tokens for ch in t)
    if letters < 2:
        return None
    name = " ".join(tokens).upper()
    return name if len(name) <= 80 else None


def clean_place(raw: str | None) -> str | None:
    """Upper-case a captured place and remove Kota/Kab./province parts."""
    if not raw:
        return None
    text = raw.translate(_APOSTROPHES)
    text = text.split(",")[0].split("(")[0].split("/")[0]
    tokens = [t for t in _RE_SPACES.split(text) if t]
    while len(tokens) > 1 and _bare(tokens[0]) in PLACE_PREFIXES:
        if _bare(tokens[0]) == "kota" and _bare(tokens[1]) in KOTA_KEEP:
            break
        tokens.pop(0)
    if len(tokens) > 1:
        low = " ".join(t.lower() for t in tokens)
        for prov in TRAILING_PROVINCES:
            if low.endswith(" " + prov):
                n = len(prov.split())
                if len(tokens) > n:
                    tokens = tokens[:-n]
                break
    tokens = [_RE_EDGE_PUNCT.sub("", t).rstrip(".") for t in tokens]
    tokens = [t for t in tokens if t]
    if not tokens or len(tokens) > 5:
        return None
    if any(_bare(t) in NAME_STOP for t in tokens[:1]):
        return None
    if sum(ch.isalpha() for t in tokens for ch in t) < 3:
        return None
    place = " ".join(tokens).upper()
    return place if len(place) <= 60 else None
