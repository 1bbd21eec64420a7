"""Name and place comparison used by the verification service."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from kartu.registry.matching import (
    MUHAMMAD_VARIANTS,
    NAME_VARIANTS,
    canonical_token,
    is_title,
    names_match,
    normalize_name,
    normalize_place,
    places_match,
    remove_titles,
    strip_titles,
)
from kartu.registry.regions import regency_name

SAMPLES = Path("/work/shared/samples/messages.jsonl")

# --- normalize_name ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Siti Khodijah", "SITI KHODIJAH"),
        ("  siti   khodijah ", "SITI KHODIJAH"),
        ("Hj. Umi Kalsum, S.Pd.", "UMI KALSUM"),
        ("Mochammad Rifai, S.Pd.", "MUHAMMAD RIFAI"),
        ("Drs. H. Ahmad Dahlan, M.Si", "AHMAD DAHLAN"),
        ("Prof. Dr. Ir. H. Budi Santoso, M.T.", "BUDI SANTOSO"),
        ("dr. Ayu Lestari, S.Ked", "AYU LESTARI"),
        ("Budi Santoso S. Pd", "BUDI SANTOSO"),
        ("Budi Santoso SPd", "BUDI SANTOSO"),
        ("Rina Amelia, A.Md.Keb", "RINA AMELIA"),
        ("Rina Amelia Amd.", "RINA AMELIA"),
        ("Ns. Dewi Sartika, S.Kep", "DEWI SARTIKA"),
        ("Ir. Joko Widodo", "JOKO WIDODO"),
        ("Dra. Sri Mulyani, S.E., M.M.", "SRI MULYANI"),
        ("Dra Sepriani", "SEPRIANI"),
        ("Agus S.H., M.H.", "AGUS"),
        ("Joko S.T.", "JOKO"),
        ("Dedi S.Sos", "DEDI"),
        ("Lukman S.Ag", "LUKMAN"),
        ("Andi S.Kom., M.Kom.", "ANDI"),
        ("Hendra M.Pd", "HENDRA"),
        ("KH. Maimun Zubair", "MAIMUN ZUBAIR"),
        ("K.H. Maimun Zubair", "MAIMUN ZUBAIR"),
        ("Habib Luthfi", "LUTHFI"),
        ("Bapak Haryanto", "HARYANTO"),
        ("Bpk. Haryanto", "HARYANTO"),
        ("Pak Haryanto", "HARYANTO"),
        ("Ibu Painem", "PAINEM"),
        ("Bu Painem", "PAINEM"),
        ("Sdr. Fikri Ramadhan", "FIKRI RAMADHAN"),
        ("Sdri. Novita Sari", "NOVITA SARI"),
        ("Tn. Lim", "LIM"),
        ("Ny. Siti Aminah", "SITI AMINAH"),
        ("Nn. Clarissa Wongso", "CLARISSA WONGSO"),
        ("Raden Mas Said", "MAS SAID"),
        ("Rr. Sri Wahyuni", "SRI WAHYUNI"),
        ("R.A. Kartini", "KARTINI"),
        ("Dr.Ir.H.Ahmad", "AHMAD"),
        ("Siti Nur'aini", "SITI NURAINI"),
        ("Ma’ruf Amin", "MARUF AMIN"),
        ("José Ramos-Horta", "JOSE RAMOS HORTA"),
        ("Ｂｕｄｉ", "BUDI"),  # full-width letters (NFKC)
        ("Rosintan Br Tambunan", "ROSINTAN BR TAMBUNAN"),
        ("Bapak/Ibu", ""),
    ],
)
def test_normalize_name(raw: str, normalized: str) -> None:
    assert normalize_name(raw) == normalized


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        # Real single-letter initials stay.
        ("Budi H.", "BUDI H"),
        ("Wahyu R. Saputra", "WAHYU R SAPUTRA"),
        ("R. Soeprapto", "R SUPRAPTO"),  # "R." may be Raden or an initial: kept
        ("S. Parman", "S PARMAN"),
        ("A. Yani", "A YANI"),
        # Leading-only titles are names when they are not leading, or the only word.
        ("Muhammad Habib", "MUHAMMAD HABIB"),
        ("Habib", "HABIB"),
        ("H. Habib", "HABIB"),
        # Words that merely start like a title are not titles.
        ("Irwan Drajat", "IRWAN DRAJAT"),
        ("Setiawan", "SETIAWAN"),
        ("Bunga Sari", "BUNGA SARI"),
        ("Stefanus", "STEFANUS"),
        ("Pakpahan", "PAKPAHAN"),
    ],
)
def test_initials_and_lookalikes_are_kept(raw: str, normalized: str) -> None:
    assert normalize_name(raw) == normalized


@pytest.mark.parametrize(
    "variant",
    [
        "Muhammad", "Muhamad", "Mohammad", "Mohamad", "Mochammad", "Mochamad", "Muhammmad",
        "Moch.", "Moh.", "Muh.", "Mhd.", "M.", "M", "Mohd", "Muchammad", "Mukhammad",
    ],
)  # fmt: skip
def test_muhammad_variants(variant: str) -> None:
    assert normalize_name(f"{variant} Rizki") == "MUHAMMAD RIZKI"


def test_variants_are_whole_tokens_only() -> None:
    assert normalize_name("Mochtar Lubis") == "MOKHTAR LUBIS"
    assert normalize_name("Mohammadi") == "MOHAMMADI"
    assert normalize_name("Muhammadiyah") == "MUHAMMADIYAH"
    assert normalize_name("Ahmadi") == "AHMADI"
    assert normalize_name("Nurul Huda") == "NURUL HUDA"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Achmad Yani", "Ahmad Yani"),
        ("Akhmad Yani", "Ahmad Yani"),
        ("Abd. Rahman", "Abdul Rahman"),
        ("Abdoel Rahman", "Abdul Rahman"),
        ("Noor Hidayat", "Nur Hidayat"),
        ("Noer Hidayat", "Nur Hidayat"),
        ("Soekarno", "Sukarno"),
        ("Soeharto", "Suharto"),
        ("Djoko Santoso", "Joko Santoso"),
        ("Tjahjono", "Cahjono"),
        ("Sjahrir", "Syahrir"),
        ("Choirul Anam", "Khoirul Anam"),
    ],
)
def test_spelling_variants(a: str, b: str) -> None:
    assert normalize_name(a) == normalize_name(b)


def test_canonical_token_and_variant_table() -> None:
    assert canonical_token("MOCH") == "MUHAMMAD"
    assert canonical_token("SOEKARNO") == "SUKARNO"
    assert canonical_token("BUDI") == "BUDI"
    assert "M" in MUHAMMAD_VARIANTS
    assert set(NAME_VARIANTS.values()) == {"MUHAMMAD", "AHMAD", "ABDUL", "NUR"}


# --- title helpers for other modules -------------------------------------------------------


def test_strip_titles_on_tokens() -> None:
    assert strip_titles(["Hj.", "Umi", "Kalsum,", "S.Pd."]) == ["Umi", "Kalsum,"]
    assert strip_titles(["Umi", "Kalsum", "S.", "Pd"]) == ["Umi", "Kalsum"]
    assert strip_titles(["H.", "Ahmad"]) == ["Ahmad"]
    assert strip_titles(["Drs.", "H.", "Ahmad"]) == ["Ahmad"]
    assert strip_titles(["Ahmad", "H."]) == ["Ahmad", "H."]
    assert strip_titles(["Habib"]) == ["Habib"]
    assert strip_titles(["M.", "Rizki"]) == ["M.", "Rizki"]
    assert strip_titles(["S.", "Parman"]) == ["S.", "Parman"]


def test_is_title() -> None:
    for title in ("S.Pd.", "spd", "Hj.", "A.Md.", "Amd", "M.Si", "Prof.", "Bpk", "Sdri", "H."):
        assert is_title(title), title
    for word in ("Siti", "M.", "R.", "Rizki", "Budi", "S."):
        assert not is_title(word), word


def test_remove_titles_keeps_the_rest_of_the_text() -> None:
    cleaned = remove_titles("Saya Hj. Umi Kalsum, S.Pd., lahir di Bojonegoro")
    assert "Hj" not in cleaned
    assert "S.Pd" not in cleaned
    assert "Umi Kalsum" in cleaned
    assert "Bojonegoro" in cleaned


# --- names_match ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claimed", "recorded"),
    [
        ("Siti Khodijah", "SITI KHODIJAH"),
        ("M. Rizki", "MUHAMMAD RIZKI"),
        ("Mhmd Rizki", "MUHAMMAD RIZKI"),
        ("Moch. Rizki", "MUHAMAD RIZKI"),
        ("Mochammad Rifai, S.Pd.", "MOCHAMMAD RIFAI"),
        ("Hj. Umi Kalsum, S.Pd.", "UMI KALSUM"),
        ("Ir. Soekarno", "SUKARNO"),
        ("Novitasari", "NOVITA SARI"),
        ("Budi Santosa", "BUDI SANTOSO"),  # one typo in a long name
        ("Annisa Rahmadani", "ANISA RAHMADANI"),  # one extra letter
        ("Ilham Akabr", "ILHAM AKBAR"),  # adjacent letters swapped inside the word
        ("Sutrisna Wibowo", "SUTRISNO WIBOWO"),  # the Javanese A/O ending of one name
        ("Daniel Pardamean Simatupang", "DANIEL PARDAMEAN SIMATUPNAG"),
        ("Kristian Nalle", "KRISTIAN NALLE"),
    ],
)
def test_names_that_match(claimed: str, recorded: str) -> None:
    assert names_match(claimed, recorded)


@pytest.mark.parametrize(
    ("claimed", "recorded"),
    [
        ("Siti Aminah", "SITI AMINAH PUTRI"),  # a missing word is a different name
        ("Siti Aminah Putri", "SITI AMINAH"),
        ("Siti", "SITI AMINAH"),
        ("Ratna Sari", "RATNA SARI DEWI"),
        ("Dewi Kurniawan", "DEDI KURNIAWAN"),  # typo in a short word: a different name
        ("Budi Santosa", "BUDI SANTOSO PUTRA"),
        ("Budi", "BUDA"),  # short names get no typo allowance
        ("Joko", "YOKO"),
        ("Santoso Budi", "BUDI SANTOSO"),  # order matters
        ("Budi Santosa", "BUDI SANTOSAAA"),  # two edits
        ("Mulyadi", "MULYONO"),
        ("Sukirno", "SUKARNO"),
        ("Ahmad Mustofa", "MUHAMMAD MUSTOFA"),  # Ahmad is not Muhammad
        # One letter apart, but different names: the first and the last letter of a word are
        # never forgiven (apart from the A/O ending).
        ("Susanti Wibowo", "SUSANTO WIBOWO"),
        ("Yanti Kusumawati", "YANTO KUSUMAWATI"),
        ("Hendri Saputra", "HENDRA SAPUTRA"),
        ("Hasna Abdullah", "HASAN ABDULLAH"),
        ("Diana Kusumawati", "DIAN KUSUMAWATI"),
        ("Rahman Hidayat", "RAHMAT HIDAYAT"),
        ("Budianto Saputra", "RUDIANTO SAPUTRA"),
        ("Fitria Handayani", "FITRI HANDAYANI"),
        ("Ilham Akbra", "ILHAM AKBAR"),  # a swap at the end: refused like Hasan / Hasna
        ("", "BUDI"),
        ("Bapak", "BAPAK"),  # nothing left after removing titles
        ("Budi", ""),
    ],
)
def test_names_that_do_not_match(claimed: str, recorded: str) -> None:
    assert not names_match(claimed, recorded)


# --- places --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Kota Bandung", "BANDUNG"),
        ("Kab. Sleman", "SLEMAN"),
        ("Kab Sleman", "SLEMAN"),
        ("Kab.Jepara", "JEPARA"),
        ("Kabupaten Blitar", "BLITAR"),
        ("Kotamadya Malang", "MALANG"),
        ("Kodya Surabaya", "SURABAYA"),
        ("Kota Adm. Jakarta Selatan", "JAKARTA SELATAN"),
        ("KOTA ADMINISTRASI JAKARTA SELATAN", "JAKARTA SELATAN"),
        ("Jakarta Selatan", "JAKARTA SELATAN"),
        ("  pematang-siantar ", "PEMATANG SIANTAR"),
        ("Kota", "KOTA"),
        ("Kotabaru", "KOTABARU"),
        ("Solo", "SURAKARTA"),
        ("Jogja", "YOGYAKARTA"),
        ("Djokjakarta", "YOGYAKARTA"),
        ("Ujung Pandang", "MAKASSAR"),
        ("Djakarta", "JAKARTA"),
        ("Tjirebon", "CIREBON"),
        ("Banda Aceh", "BANDA ACEH"),
    ],
)
def test_normalize_place(raw: str, normalized: str) -> None:
    assert normalize_place(raw) == normalized


@pytest.mark.parametrize(
    ("claimed", "recorded"),
    [
        ("Kota Bandung", "BANDUNG"),
        ("Kab. Jepara", "JEPARA"),
        ("Kab. Sleman", "KABUPATEN SLEMAN"),
        ("Pematang Siantar", "KOTA PEMATANGSIANTAR"),
        ("Solo", "SURAKARTA"),
        ("Kota Baru", "KOTABARU"),
        ("Purbalinga", "PURBALINGGA"),  # one typo
        ("Blitra", "BLITAR"),  # adjacent swap
        ("Soerabaja", "SURABAYA"),  # old spelling + one letter
        ("Sumedamg", "SUMEDANG"),  # 8 letters: one typo allowed
        ("DKI Jakarta", "JAKARTA"),
        ("Prov. DKI Jakarta", "JAKARTA"),
    ],
)
def test_places_that_match(claimed: str, recorded: str) -> None:
    assert places_match(claimed, recorded)


@pytest.mark.parametrize(
    ("claimed", "recorded"),
    [
        ("Jakarta", "JAKARTA SELATAN"),
        ("Jakarta Utara", "JAKARTA SELATAN"),
        ("Solok", "SOLO"),  # Solo is Surakarta, Solok is in West Sumatra
        ("Batu", "BATAM"),
        ("Pati", "PALU"),
        ("Malang", "BLITAR"),
        ("Ende", "ENDEH KOTA"),
        ("Aru", "ARO"),  # under 5 letters: no typo allowance
        ("Pari", "PATI"),
        ("Bima", "BIMO"),
        ("", "BLITAR"),
        ("Kota", ""),
    ],
)
def test_places_that_do_not_match(claimed: str, recorded: str) -> None:
    assert not places_match(claimed, recorded)


# --- the shared sample messages ------------------------------------------------------------


def _samples() -> list[dict[str, object]]:
    if not SAMPLES.exists():
        pytest.skip(f"{SAMPLES} not present")
    with SAMPLES.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Hj. Umi Kalsum, S.Pd.", "UMI KALSUM"),
        ("Mochammad Rifai, S.Pd.", "MOCHAMMAD RIFAI"),
        ("Rosintan Br Tambunan", "ROSINTAN BR TAMBUNAN"),
        ("Budiman Lim", "BUDIMAN LIM"),
    ],
)
def test_names_as_written_in_samples(written: str, expected: str) -> None:
    assert names_match(written, expected)


def test_sample_places_match_their_regency_names() -> None:
    assert places_match("Kab. Jepara", "JEPARA")
    assert places_match("Pematang Siantar", regency_name("1272") or "")
    assert places_match("Blitar", regency_name("3505") or "")
    assert places_match("Surakarta", regency_name("3372") or "")


def test_different_sample_people_never_match() -> None:
    names = sorted(
        {
            str(sample["expected"]["full_name"])  # type: ignore[index]
            for sample in _samples()
            if sample["expected"]["full_name"]  # type: ignore[index]
        }
    )
    assert len(names) >= 30
    for name in names:
        assert names_match(name.title(), name), name
    for a, b in itertools.permutations(names, 2):
        assert not names_match(a, b), (a, b)


def test_different_sample_places_never_match() -> None:
    places = sorted(
        {
            str(sample["expected"]["birth_place"])  # type: ignore[index]
            for sample in _samples()
            if sample["expected"]["birth_place"]  # type: ignore[index]
        }
    )
    assert len(places) >= 25
    for a, b in itertools.permutations(places, 2):
        assert not places_match(a, b), (a, b)


@pytest.mark.parametrize(
    ("claimed", "recorded"),
    [("Yanti", "NENG YANTI"), ("Neng Yanti", "YANTI"), ("Agus Salim", "MAS AGUS SALIM"),
     ("Asni", "UNI ASNI")],
)
def test_a_leading_form_of_address_that_is_also_a_name_may_be_left_out(claimed, recorded):
    assert names_match(claimed, recorded)


def test_leaving_out_a_real_first_name_still_fails():
    assert not names_match("Yanti", "SITI YANTI")
    assert not names_match("Neng", "NENG YANTI")
