"""NIK rules and the region tables (pure Python, no database)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from kartu.registry import nik as nik_module
from kartu.registry.nik import InvalidNik, Nik, compact, is_valid, make_nik, mask, validate
from kartu.registry.regions import (
    FORMER_REGENCIES,
    PROVINCES,
    REGENCIES,
    province_name,
    regencies_in,
    regency_name,
)

TODAY = date(2026, 1, 15)
SAMPLES = Path("/work/shared/samples/messages.jsonl")

# A Jakarta Selatan (Kemendagri 3174) man born 17-08-1945, serial 0001.
JAKARTA_MAN = "3174011708450001"


def _with(province: str = "31", ddmmyy: str = "170845", serial: str = "0001") -> str:
    return f"{province}7401{ddmmyy}{serial}"


def _code(value: str) -> str:
    with pytest.raises(InvalidNik) as excinfo:
        validate(value, today=TODAY)
    return excinfo.value.code


# --- regions -----------------------------------------------------------------------------


def test_all_38_kemendagri_provinces_are_known() -> None:
    expected = {
        "11", "12", "13", "14", "15", "16", "17", "18", "19", "21",
        "31", "32", "33", "34", "35", "36", "51", "52", "53",
        "61", "62", "63", "64", "65", "71", "72", "73", "74", "75", "76",
        "81", "82", "91", "92", "93", "94", "95", "96",
    }  # fmt: skip
    assert set(PROVINCES) == expected
    assert province_name("65") == "KALIMANTAN UTARA"
    assert province_name("92") == "PAPUA BARAT"
    assert province_name("96") == "PAPUA BARAT DAYA"
    assert province_name("20") is None


def test_regency_table_is_the_kemendagri_list() -> None:
    assert len(REGENCIES) == 514
    assert all(code[:2] in PROVINCES for code in REGENCIES)
    assert all(
        name.startswith("KOTA ") == (int(code[2:]) >= 71) for code, name in REGENCIES.items()
    )
    assert regency_name("3505") == "KABUPATEN BLITAR"
    # Kemendagri numbering, not BPS: 3171 is Jakarta Pusat, 1111 is Bireuen.
    assert regency_name("3174") == "KOTA JAKARTA SELATAN"
    assert regency_name("3171") == "KOTA JAKARTA PUSAT"
    assert regency_name("1111") == "KABUPATEN BIREUEN"
    assert regency_name("9401") == "KABUPATEN NABIRE"
    assert regency_name("3199") is None


def test_pre_2022_papua_codes_still_name_their_regency() -> None:
    assert regency_name("9104") == "KABUPATEN NABIRE"
    assert regency_name("9271") == "KOTA SORONG"
    assert not set(FORMER_REGENCIES) & set(REGENCIES)
    assert "9104" not in regencies_in("91")


def test_regencies_in_province() -> None:
    assert len(regencies_in("34")) == 5
    assert "3404" in regencies_in("34")
    assert regencies_in("20") == ()


# --- compact and format --------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "3174011708450001",
        "3174 0117 0845 0001",
        "317401 170845 0001",
        "3174.0117.0845.0001",
        "3174-0117-0845-0001",
        "  3174011708450001\n",
        "3174\u00a00117\u20130845 0001",
    ],
)
def test_separators_are_ignored(written: str) -> None:
    assert compact(written) == JAKARTA_MAN
    assert validate(written, today=TODAY).value == JAKARTA_MAN


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("3174O11708450001", "format"),  # letter O instead of zero
        ("317401170845000a", "format"),
        ("", "format"),
        ("317401170845001", "length"),
        ("31740117084500011", "length"),
    ],
)
def test_format_and_length(value: str, code: str) -> None:
    assert _code(value) == code


# --- province ------------------------------------------------------------------------------


@pytest.mark.parametrize("province", ["65", "91", "92", "93", "94", "95", "96", "11", "21"])
def test_current_provinces_accepted(province: str) -> None:
    # stdnum.id.nik rejects 65, 92, 93, 95 and 96.
    assert validate(_with(province=province), today=TODAY).province == province


@pytest.mark.parametrize(
    "province", ["00", "10", "20", "22", "37", "50", "66", "77", "90", "97", "99"]
)
def test_unknown_provinces_rejected(province: str) -> None:
    assert _code(_with(province=province)) == "province"


# --- date of birth -------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["00", "32", "35", "40", "72", "80", "81", "85", "99"])
def test_illegal_day_fields_rejected(day: str) -> None:
    # stdnum accepts 81-99 (81 % 40 == 1); we do not.
    assert _code(_with(ddmmyy=f"{day}0190")) == "birth_date"


@pytest.mark.parametrize("month", ["00", "13", "30", "99"])
def test_illegal_months_rejected(month: str) -> None:
    assert _code(_with(ddmmyy=f"01{month}90")) == "birth_date"


@pytest.mark.parametrize("ddmmyy", ["310490", "300290", "290201", "290299", "710490", "690201"])
def test_days_that_do_not_exist_rejected(ddmmyy: str) -> None:
    assert _code(_with(ddmmyy=ddmmyy)) == "birth_date"


def test_men_and_women() -> None:
    man = validate(_with(ddmmyy="010190"), today=TODAY)
    assert (man.sex, man.birth_day) == ("L", 1)
    woman = validate(_with(ddmmyy="410190"), today=TODAY)
    assert (woman.sex, woman.birth_day) == ("P", 1)
    last_woman = validate(_with(ddmmyy="711290"), today=TODAY)
    assert (last_woman.sex, last_woman.birth_day, last_woman.birth_month) == ("P", 31, 12)
    assert last_woman.birth_date(TODAY) == date(1990, 12, 31)


def test_29_february_2000_exists() -> None:
    born = validate(_with(ddmmyy="290200"), today=TODAY)
    assert born.birth_date(TODAY) == date(2000, 2, 29)
    woman = validate(_with(ddmmyy="690200"), today=TODAY)
    assert woman.birth_date(TODAY) == date(2000, 2, 29)
    assert woman.sex == "P"
    assert validate(_with(ddmmyy="290296"), today=TODAY).birth_date(TODAY) == date(1996, 2, 29)


def test_century_is_the_most_recent_one_not_in_the_future() -> None:
    # stdnum says 1905; a worker born in 2005 is 20.
    assert validate(_with(ddmmyy="170105"), today=TODAY).birth_date(TODAY) == date(2005, 1, 17)
    assert validate(_with(ddmmyy="170845"), today=TODAY).birth_date(TODAY) == date(1945, 8, 17)
    assert validate(_with(ddmmyy="010126"), today=TODAY).birth_date(TODAY) == date(2026, 1, 1)
    # Later this year than today: cannot be 2026, so 1926.
    assert validate(_with(ddmmyy="010626"), today=TODAY).birth_date(TODAY) == date(1926, 6, 1)
    assert validate(_with(ddmmyy="150126"), today=TODAY).birth_date(TODAY) == date(2026, 1, 15)


def test_birth_date_defaults_to_today() -> None:
    assert validate(_with(ddmmyy="170845")).birth_date() == date(1945, 8, 17)


# --- serial --------------------------------------------------------------------------------


def test_serial_0000_rejected_and_0001_accepted() -> None:
    assert _code(_with(serial="0000")) == "serial"
    assert validate(_with(serial="0001"), today=TODAY).serial == 1
    assert validate(_with(serial="9999"), today=TODAY).serial == 9999


def test_error_messages_are_english_sentences() -> None:
    with pytest.raises(InvalidNik, match="41-71 for women"):
        validate(_with(ddmmyy="850190"), today=TODAY)
    with pytest.raises(ValueError, match="not an Indonesian province code"):
        validate(_with(province="20"), today=TODAY)


def test_is_valid() -> None:
    assert is_valid(JAKARTA_MAN, today=TODAY)
    assert not is_valid(_with(serial="0000"), today=TODAY)
    assert not is_valid("12345", today=TODAY)


# --- parts ---------------------------------------------------------------------------------


def test_parts() -> None:
    parsed = validate("3505124910770018", today=TODAY)
    assert parsed.value == "3505124910770018"
    assert (parsed.province, parsed.regency, parsed.district) == ("35", "3505", "350512")
    assert (parsed.birth_day, parsed.birth_month, parsed.birth_yy) == (9, 10, 77)
    assert parsed.sex == "P"
    assert parsed.serial == 18
    assert parsed.province_name == "JAWA TIMUR"
    assert parsed.regency_name == "KABUPATEN BLITAR"


def test_unknown_regency_is_accepted_but_has_no_name() -> None:
    parsed = validate("3199011708450001", today=TODAY)
    assert parsed.regency_name is None


def test_repr_does_not_leak_the_number() -> None:
    parsed = validate(JAKARTA_MAN, today=TODAY)
    assert JAKARTA_MAN not in repr(parsed)
    assert JAKARTA_MAN not in str(parsed)
    assert "0001" in repr(parsed)


# --- agrees_with ---------------------------------------------------------------------------


def test_agrees_with_recorded_date_and_sex() -> None:
    man = validate("3174011708450001", today=TODAY)
    assert man.agrees_with(date(1945, 8, 17), "L")
    assert man.agrees_with(date(1945, 8, 17), "l")
    assert not man.agrees_with(date(1945, 8, 17), "P")  # sex differs
    assert not man.agrees_with(date(1945, 8, 18), "L")  # day differs
    assert not man.agrees_with(date(1945, 7, 17), "L")  # month differs
    assert not man.agrees_with(date(1946, 8, 17), "L")  # year differs
    # The century comes from the record, so a record of 2045 would agree on DDMMYY.
    assert man.agrees_with(date(2045, 8, 17), "L")


def test_agrees_with_women_plus_40() -> None:
    woman = validate("3174015708450001", today=TODAY)
    assert woman.agrees_with(date(1945, 8, 17), "P")
    assert not woman.agrees_with(date(1945, 8, 17), "L")
    assert not woman.agrees_with(date(1945, 8, 18), "P")


def test_agrees_with_rejects_unknown_sex_codes() -> None:
    man = validate(JAKARTA_MAN, today=TODAY)
    with pytest.raises(ValueError, match="'L'"):
        man.agrees_with(date(1945, 8, 17), "M")


# --- mask and make_nik ---------------------------------------------------------------------


def test_mask() -> None:
    assert mask("3174011708451234") == "************1234"
    assert mask("3174 0117 0845 1234") == "************1234"
    assert mask(validate("3174011708451234", today=TODAY)) == "************1234"
    assert mask("123") == "***"


def test_make_nik_round_trip() -> None:
    value = make_nik("350512", date(1977, 10, 9), "P", 18)
    assert value == "3505124910770018"
    parsed = validate(value, today=TODAY)
    assert parsed.agrees_with(date(1977, 10, 9), "P")
    assert make_nik("650101", date(2005, 1, 17), "L", 1) == "6501011701050001"


def test_make_nik_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidNik) as excinfo:
        make_nik("200101", date(1990, 1, 1), "L", 1)
    assert excinfo.value.code == "province"
    with pytest.raises(ValueError, match="6 digits"):
        make_nik("31740", date(1990, 1, 1), "L", 1)
    with pytest.raises(ValueError, match="serial"):
        make_nik("317401", date(1990, 1, 1), "L", 0)
    with pytest.raises(ValueError, match="serial"):
        make_nik("317401", date(1990, 1, 1), "L", 10000)
    with pytest.raises(ValueError, match="sex"):
        make_nik("317401", date(1990, 1, 1), "X", 1)


def test_make_nik_property_over_many_dates() -> None:
    day = date(1950, 1, 1)
    while day < date(2025, 12, 31):
        for sex in ("L", "P"):
            parsed = validate(make_nik("330101", day, sex, 7), today=TODAY)
            assert parsed.birth_date(TODAY) == day
            assert parsed.agrees_with(day, sex)
        day = date.fromordinal(day.toordinal() + 97)


# --- the shared sample messages ------------------------------------------------------------

# The one expected NIK that breaks the NIK rules, on purpose: the sender swapped the month
# digits ("30" instead of "03") and the extractor must label the NIK as written. Validation
# must reject it, so that the person is asked to check the number.
KNOWN_BAD_SAMPLE_NIKS = {"s36": "birth_date"}


def _samples() -> list[dict[str, object]]:
    if not SAMPLES.exists():
        pytest.skip(f"{SAMPLES} not present")
    with SAMPLES.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_every_expected_sample_nik_validates() -> None:
    checked = 0
    for sample in _samples():
        expected = sample["expected"]
        assert isinstance(expected, dict)
        value = expected["nik"]
        if value is None:
            continue
        checked += 1
        if sample["id"] in KNOWN_BAD_SAMPLE_NIKS:
            assert _code(value) == KNOWN_BAD_SAMPLE_NIKS[str(sample["id"])]
            continue
        parsed = validate(value, today=TODAY)
        if expected["birth_date"] is not None:
            # The NIK's date, with our century rule, is the date the sender wrote.
            assert parsed.birth_date(TODAY) == date.fromisoformat(expected["birth_date"]), sample
    assert checked >= 30


def test_known_bad_sample_is_really_there() -> None:
    ids = {sample["id"] for sample in _samples()}
    assert set(KNOWN_BAD_SAMPLE_NIKS) <= ids


def test_nik_module_does_not_use_stdnum() -> None:
    source = Path(nik_module.__file__).read_text(encoding="utf-8")
    assert "import stdnum" not in source
    assert "from stdnum" not in source


def test_nik_is_frozen() -> None:
    parsed = validate(JAKARTA_MAN, today=TODAY)
    with pytest.raises(AttributeError):
        parsed.serial = 2  # type: ignore[misc]
    assert isinstance(parsed, Nik)
