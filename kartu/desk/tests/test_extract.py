"""Tests for the message extractor (plain pytest, no database).

* every one of the 40 labelled samples, field by field (held out: the rules
  were not fitted to them);
* every one of our own labelled examples (kartu/desk/extract/tests/examples.jsonl);
* unit tests for dates, NIK picking and normalisation;
* robustness (empty, huge, binary, HTML/script) and the CLI jsonl contract.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kartu.desk.extract import (
    FIELDS,
    Extracted,
    clean_name,
    clean_place,
    extract,
    find_dates,
    nik_birth_date,
    nik_structure_ok,
    parse_date,
    pick_nik,
)
from kartu.desk.extract.cli import main, process_line, run_jsonl, run_single

DATA = Path(__file__).resolve().parents[1] / "extract" / "tests"
SAMPLES_PATH = DATA / "samples.jsonl"
EXAMPLES_PATH = DATA / "examples.jsonl"


def _load(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


SAMPLES = _load(SAMPLES_PATH)
EXAMPLES = _load(EXAMPLES_PATH)


def test_data_files_are_complete() -> None:
    assert len(SAMPLES) == 40
    assert len(EXAMPLES) >= 150
    ids = [r["id"] for r in EXAMPLES]
    assert len(ids) == len(set(ids))
    for rec in SAMPLES + EXAMPLES:
        assert set(rec["expected"]) == set(FIELDS)
        nik = rec["expected"]["nik"]
        assert nik is None or (len(nik) == 16 and nik.isdigit())


# --- labelled data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rec", "field"),
    [pytest.param(r, f, id=f"{r['id']}-{f}") for r in SAMPLES for f in FIELDS],
)
def test_sample_field(rec: dict, field: str) -> None:
    got = extract(rec["text"], rec.get("subject"))
    assert getattr(got, field) == rec["expected"][field], rec["text"]


@pytest.mark.parametrize("rec", [pytest.param(r, id=r["id"]) for r in EXAMPLES])
def test_own_example(rec: dict) -> None:
    got = extract(rec["text"], rec.get("subject")).as_dict()
    assert got == rec["expected"], rec["notes"]


def test_result_type() -> None:
    got = extract("Nama: Budi Santoso\nTTL: Bandung, 17-08-1985\nNIK: 3273011708850003")
    assert isinstance(got, Extracted)
    assert got.as_dict() == {
        "full_name": "BUDI SANTOSO",
        "birth_place": "BANDUNG",
        "birth_date": "1985-08-17",
        "nik": "3273011708850003",
    }
    assert not got.is_empty()
    assert Extracted().is_empty()


# --- dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("17 Agustus 1985", "1985-08-17"),
        ("17 agst 85", "1985-08-17"),
        ("17-08-1985", "1985-08-17"),
        ("17/8/1985", "1985-08-17"),
        ("1985-08-17", "1985-08-17"),
        ("1985/08/17", "1985-08-17"),
        ("August 17, 1985", "1985-08-17"),
        ("Aug 17th 1985", "1985-08-17"),
        ("17th of August 1985", "1985-08-17"),
        ("tgl 9 bln 10 thn 1977", "1977-10-09"),
        ("tanggal 5 wulan 6 taun 1991", "1991-06-05"),
        ("4 Nop 69", "1969-11-04"),
        ("13.09.1991", "1991-09-13"),
        ("17-VIII-1985", "1985-08-17"),
        ("2-Sep-1990", "1990-09-02"),
        ("5 Mei '89", "1989-05-05"),
        ("05/08/01", "2001-08-05"),
        ("25 Febuari 1987", "1987-02-25"),
        ("4 Septmber 1993", "1993-09-04"),
        ("3 Djuli 1958", "1958-07-03"),
        ("17 - 04 - 1984", "1984-04-17"),
        ("07/25/1996", "1996-07-25"),
        ("12 Oktober tahun 1981", "1981-10-12"),
    ],
)
def test_parse_date(text: str, iso: str) -> None:
    assert parse_date(text) == iso


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tidak ada tanggal",
        "29 Februari 1990",
        "31-04-1990",
        "pukul 09.00",
        "Rp 1.250.000",
        "0812-3377-2150",
        "12 kali 2020",
        "lahir tahun 1985",
        "Maret 1990",
        "192.168.1.1",
    ],
)
def test_parse_date_none(text: str) -> None:
    assert parse_date(text) is None


def test_find_dates_resolves_overlaps_and_keeps_order() -> None:
    got = find_dates("keluar 15 Desember 2023, lahir 2 April 1989 (2/4/1989)")
    assert [d.date.isoformat() for d in got] == ["2023-12-15", "1989-04-02", "1989-04-02"]


def test_rejected_month_word_does_not_hide_next_date() -> None:
    assert parse_date("12 Rabiul... 12 Oktober 1981") == "1981-10-12"


def test_birth_date_prefers_cue_over_other_dates() -> None:
    text = (
        "Min, sy keluar dr PT Maju per 15 Desember 2010. Nama Dedi, lahir Pekalongan 2 April 1989"
    )
    assert extract(text).birth_date == "1989-04-02"
    assert (
        extract("Saya menikah 12-12-2008. Nama saya Lestari, lahir 1-4-1992").birth_date
        == "1992-04-01"
    )


def test_ambiguous_numeric_date_uses_nik() -> None:
    # 05/09 is 5 September (day first) unless the NIK says 9 May
    assert extract("Sri, lahir 05/09/1973, NIK 3310024509730011").birth_date == "1973-09-05"
    assert extract("Sri, lahir 05/09/1973, NIK 3310024905730011").birth_date == "1973-05-09"


def test_date_is_never_taken_from_nik() -> None:
    got = extract("Nama: Wayan Sudiarta\nTempat lahir: Bangli\nNIK: 5106010808750021")
    assert got.birth_date is None


def test_implausible_birth_years_are_ignored() -> None:
    assert extract("Saya Budi, lahir 1 Januari 2024").birth_date is None
    assert extract("Saya Budi, lahir 1 Januari 1850").birth_date is None


# --- NIK ----------------------------------------------------------------------------------


def test_nik_structure() -> None:
    assert nik_structure_ok("3514092711840055")
    assert nik_birth_date("3327126303900019") == (23, 3, 90)  # female: 63 - 40
    assert not nik_structure_ok("9914092711840055")  # no province 99
    assert not nik_structure_ok("3514099911840055")  # day 99
    assert not nik_structure_ok("351409271184005")  # 15 digits


@pytest.mark.parametrize(
    ("text", "nik"),
    [
        ("NIK 1473 0303 0390 0012", "1473030303900012"),
        ("NIK 3303.0544.1169.0007", "3303054411690007"),
        ("NIK 3372-0568-1098-0404", "3372056810980404"),
        ("NIK 127115 110570 0008", "1271151105700008"),
        ("NIK saya 3318 0501\n0581 0003. Mohon dicek", "3318050105810003"),
        ("No. KK: 3514092308120003\nNIK: 3514092711840055", "3514092711840055"),
        ("NIK: 3514092711840055\nNo. KK: 3514092308120003", "3514092711840055"),
        ("kartu lama 15047723190, NIK 3520082008910093", "3520082008910093"),
        ("NIK 3273011708850003 HP 081234567890", "3273011708850003"),
        ("NIK 5310121212880013 eh salah, yang benar NIK 5310011212880013", "5310011212880013"),
        # labelled but the month field is a typo: keep it as written
        ("NIK 7371020730930044", "7371020730930044"),
        # unlabelled but well formed
        ("data saya 3573040901940650 ya", "3573040901940650"),
    ],
)
def test_pick_nik(text: str, nik: str) -> None:
    assert pick_nik(text) == nik


@pytest.mark.parametrize(
    "text",
    [
        "",
        "No KK 3201234501180009",
        "NIK: 1275011405830",  # too short
        "NIK: 53100109098900121",  # too long
        "tracking number 1234567890123456",  # unlabelled, not a valid NIK
        "kartu kredit 4556 7375 8689 9855",
        "no rek 1234 5678 9012 3456",
        "1 2 3 4 5 6 7 8 9 1 2 3 4 5 6 7",
    ],
)
def test_pick_nik_none(text: str) -> None:
    assert pick_nik(text) is None


def test_nik_birth_date_breaks_ties() -> None:
    text = "3273011708850003 / 3273012005150008 itu NIK sama KK. Lahir Bandung 17 Agustus 1985"
    assert extract(text).nik == "3273011708850003"


# --- normalisation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Hj. Umi Kalsum, S.Pd.", "UMI KALSUM"),
        ("Prof. Dr. Ir. Bambang Wijanarko, M.Sc.", "BAMBANG WIJANARKO"),
        ("Dra. Endang  Sri Rahayu M.Pd", "ENDANG SRI RAHAYU"),
        ("Bapak Sutopo", "SUTOPO"),
        ("Ibu Hj. Nurhasanah", "NURHASANAH"),
        ("Mochammad Rifai S.Pd", "MOCHAMMAD RIFAI"),
        ("Muhammad Ma\u2019ruf", "MUHAMMAD MA'RUF"),
        ("M. Rizky Pratama", "M. RIZKY PRATAMA"),
        ("Rosintan Br Tambunan", "ROSINTAN BR TAMBUNAN"),
        ("Nur Aisyah binti H. Abdullah", "NUR AISYAH BINTI ABDULLAH"),
        ("Anak Agung Gede Putra", "ANAK AGUNG GEDE PUTRA"),
        ("Sdr. Ahmad Fauzi SE", "AHMAD FAUZI"),
    ],
)
def test_clean_name(raw: str, name: str) -> None:
    assert clean_name(raw) == name


@pytest.mark.parametrize("raw", ["", "PT Mega Tekstil", "saya", "Bapak"])
def test_clean_name_rejects(raw: str) -> None:
    assert clean_name(raw) is None


@pytest.mark.parametrize(
    ("raw", "place"),
    [
        ("Kab. Jepara", "JEPARA"),
        ("Kota Bandung", "BANDUNG"),
        ("KABUPATEN BANDUNG BARAT", "BANDUNG BARAT"),
        ("Pematang  Siantar", "PEMATANG SIANTAR"),
        ("Kota Baru", "KOTA BARU"),
        ("Soe, NTT", "SOE"),
        ("Medan Sumatera Utara", "MEDAN"),
        ("Bandar Lampung", "BANDAR LAMPUNG"),
        ("DKI Jakarta", "JAKARTA"),
    ],
)
def test_clean_place(raw: str, place: str) -> None:
    assert clean_place(raw) == place


# --- who is the subject of the message ------------------------------------------------------


def test_relative_is_the_identity() -> None:
    text = (
        "Min saya Dimas, mau tanya no KPJ bapak saya. Nama bapak saya Suwarno, lahir di "
        "Klaten 12 Januari 1963, NIK 3310151201630012."
    )
    assert extract(text).full_name == "SUWARNO"


def test_hr_signer_is_not_the_identity() -> None:
    text = (
        "Mohon cek KPJ karyawan kami:\nNama: Sumarni\nTTL: Tangerang, 09-09-1990\n\n"
        "Salam,\nDewi Anggraini\nHRD PT Maju"
    )
    got = extract(text)
    assert (got.full_name, got.birth_place) == ("SUMARNI", "TANGERANG")


def test_quoted_reply_is_ignored() -> None:
    text = (
        "Nama: Rudy Salim\nTTL: Bogor, 12-03-1987\n\nOn Mon, 4 Mar 2024 at 10:00 BPJS "
        "<care@bpjs.go.id> wrote:\n> Contoh: Nama: Budi, TTL: Jakarta, 1 Januari 1990, "
        "NIK: 3171010101900001"
    )
    assert extract(text).as_dict() == {
        "full_name": "RUDY SALIM",
        "birth_place": "BOGOR",
        "birth_date": "1987-03-12",
        "nik": None,
    }


def test_subject_gives_the_name_when_the_body_does_not() -> None:
    got = extract("Mohon dicek NIK 3204112507960015", subject="Cek KPJ a.n. Gilang Permana")
    assert got.full_name == "GILANG PERMANA"
    assert extract("NIK 3204112507960015", subject="Re: Pengecekan Nomor KPJ").full_name is None


@pytest.mark.parametrize(
    "text",
    [
        "Butuh dana cepat? Pinjaman tanpa jaminan, cair 15 menit. Klik link di bio",
        "Webinar GRATIS pada Sabtu, 20 April 2024 pukul 09.00 WIB. Daftar sekarang!",
        "Makasih banyak min, no KPJ udah saya terima.",
        "kak nomor kepesertaan aku berapa ya?",
        "Sudah seminggu saya telpon call center 175 tidak pernah diangkat.",
    ],
)
def test_nothing_to_extract(text: str) -> None:
    assert extract(text).is_empty()


# --- robustness ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "   \n\t  ",
        "\x00\x01\x02" * 1000,
        "\ud800 lone surrogate \udfff",
        "🙏" * 5000,
        "<" * 100_000,
        "<script>" * 20_000,
        "1 " * 100_000,
        "NIK " + "1234 " * 50_000,
        "Nama: " * 50_000,
        "lahir di " * 30_000,
        "17 Agustus " * 30_000,
        "> quoted\n" * 50_000,
        "On " * 100_000,
        "a.n. " * 50_000,
    ],
)
def test_never_crashes(text: str | None) -> None:
    # Speed is measured by bench/extract.py, not asserted here (a catastrophic regex would
    # still show up as a hung test).
    got = extract(text)  # type: ignore[arg-type]
    assert isinstance(got, Extracted)


def test_binary_garbage() -> None:
    import random

    rnd = random.Random(7)
    blob = bytes(rnd.randrange(256) for _ in range(200_000))
    assert extract(blob.decode("latin-1")).is_empty()
    assert extract(blob.decode("utf-8", "replace")).is_empty()


def test_one_megabyte_message_is_capped() -> None:
    head = "Nama: Budi Santoso\nTTL: Bandung, 17-08-1985\nNIK: 3273011708850003\n"
    filler = "bla bla lorem ipsum 12-12-2012 0812345678 " * 25_000  # ~1 MB
    got = extract(head + filler)
    assert got.as_dict() == {
        "full_name": "BUDI SANTOSO",
        "birth_place": "BANDUNG",
        "birth_date": "1985-08-17",
        "nik": "3273011708850003",
    }
    # data beyond the scan window is not read
    assert extract(filler + head).nik is None


def test_html_and_script() -> None:
    text = (
        "<html><head><style>p{color:red}</style><title>x</title></head><body>"
        "<p>Nama:&nbsp;Teguh Prakoso</p><p>TTL: Temanggung, 12-12-1985</p>"
        "<script>var d='17 Agustus 1945'; alert('NIK 3173010101450001')</script>"
        "<p>NIK: 3323031212850012</p></body></html>"
    )
    assert extract(text).as_dict() == {
        "full_name": "TEGUH PRAKOSO",
        "birth_place": "TEMANGGUNG",
        "birth_date": "1985-12-12",
        "nik": "3323031212850012",
    }
    assert extract("<script>" + "x" * 50_000).is_empty()


# --- CLI ----------------------------------------------------------------------------------


def test_cli_single() -> None:
    out = io.StringIO()
    run_single("Kulo Sukirno, lair ing Blitar tgl 9 bln 10 thn 1977, NIK 3505120910770018", out)
    assert json.loads(out.getvalue()) == {
        "full_name": "SUKIRNO",
        "birth_place": "BLITAR",
        "birth_date": "1977-10-09",
        "nik": "3505120910770018",
    }
    assert out.getvalue().endswith("\n") and out.getvalue().count("\n") == 1


def test_cli_jsonl_contract() -> None:
    lines = [
        json.dumps(
            {
                "id": "a",
                "subject": None,
                "text": "Nama: Tri Wulandari\nNIK: 3516135309910074",
                "channel": "email",
            }
        ),
        "",
        "this is not json",
        json.dumps([1, 2, 3]),
        json.dumps({"id": 7, "text": 12}),
        json.dumps({"text": "saya Budi lahir di Bandung 17-8-1985"}),
        "   ",
        json.dumps(
            {"id": "c", "subject": "Cek KPJ a.n. Gilang Permana", "text": "NIK 3204112507960015"}
        ),
        '{"id": "broken", "text": ',
    ]
    out = io.StringIO()
    written, errors = run_jsonl(io.StringIO("\n".join(lines) + "\n"), out)
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert (written, errors) == (7, 4)
    assert len(rows) == 7
    assert rows[0] == {
        "id": "a",
        "full_name": "TRI WULANDARI",
        "birth_place": None,
        "birth_date": None,
        "nik": "3516135309910074",
    }
    assert rows[1]["id"] is None and "error" in rows[1]
    assert rows[2] == {"id": None, "error": "not a JSON object"}
    assert rows[3]["id"] == 7 and "error" in rows[3]
    assert rows[4] == {
        "id": None,
        "full_name": "BUDI",
        "birth_place": "BANDUNG",
        "birth_date": "1985-08-17",
        "nik": None,
    }
    assert rows[5]["full_name"] == "GILANG PERMANA"
    assert rows[6]["id"] is None and rows[6]["error"].startswith("invalid JSON")
    for row in rows:
        assert next(iter(row)) == "id"
        assert set(row) in ({"id", "error"}, {"id", *FIELDS})


def test_cli_process_line_blank() -> None:
    assert process_line("\n") is None


def test_cli_main_reads_streams() -> None:
    out = io.StringIO()
    assert main(["--subject", "a.n. Gilang Permana"], io.StringIO("NIK 3204112507960015"), out) == 0
    assert json.loads(out.getvalue())["full_name"] == "GILANG PERMANA"
    out = io.StringIO()
    main(["--jsonl"], io.StringIO('{"id": 1, "text": ""}\n'), out)
    assert json.loads(out.getvalue()) == {
        "id": 1,
        "full_name": None,
        "birth_place": None,
        "birth_date": None,
        "nik": None,
    }


def test_management_command() -> None:
    pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        pytest.skip("Django settings are not configured")
    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "extract",
        "--jsonl",
        stdin=io.StringIO('{"id": 1, "text": "NIK 3204112507960015"}\noops\n'),
        stdout=out,
    )
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert rows[0]["nik"] == "3204112507960015"
    assert rows[1] == {"id": None, "error": rows[1]["error"]}
    out = io.StringIO()
    call_command("extract", stdin=io.StringIO("Nama: Budi\nTTL: Bandung, 1-1-1990"), stdout=out)
    assert json.loads(out.getvalue())["birth_place"] == "BANDUNG"
