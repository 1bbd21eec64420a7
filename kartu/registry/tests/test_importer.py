"""Registry import: idempotent upserts, every bad row rejected with its line and reason."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from kartu.registry import importer
from kartu.registry.importer import COLUMNS, ImportFileError, import_csv, rejects_path_for
from kartu.registry.models import Membership, Person

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backends]

HEADER = ",".join(COLUMNS)
GOOD = ("3174055708900003,SITI NURHALIZA,JAKARTA,1990-08-17,P,siti@contoh.id,081234567890,"
        "12345678901,PT MAJU,aktif,2015-03-01")
GOOD2 = "3505120910770018,MUHAMMAD RIZKI,BLITAR,1977-10-09,L,,,11122233344,,nonaktif,"


def write(tmp_path: Path, *lines: str, raw: bytes | None = None) -> Path:
    path = tmp_path / "members.csv"
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rejects(path: Path) -> list[dict[str, str]]:
    with open(rejects_path_for(path), encoding="utf-8", errors="surrogateescape",
              newline="") as fh:
        return list(csv.DictReader(fh))


def test_import_counts_people_and_memberships(registry_csv):
    summary = import_csv(registry_csv, progress=False)
    assert (summary.rows, summary.people_added, summary.memberships_added, summary.rejected) == \
        (3, 2, 3, 0)
    assert Person.objects.count() == 2
    assert sorted(Membership.objects.values_list("kpj", flat=True)) == [
        "10987654321", "11122233344", "12345678901"]
    siti = Membership.objects.get(kpj="12345678901").person
    assert (siti.nik, siti.email, siti.phone) == ("3174055708900003", "siti@contoh.id",
                                                  "+6281234567890")


def test_importing_the_same_file_twice_changes_nothing(registry_csv):
    import_csv(registry_csv, progress=False)
    before = list(Person.objects.values_list("pk", "updated_at", "nik_cipher"))
    before_m = list(Membership.objects.values_list("pk", "updated_at"))
    again = import_csv(registry_csv, progress=False)
    assert (again.people_added, again.people_updated, again.memberships_added,
            again.memberships_updated, again.unchanged) == (0, 0, 0, 0, 3)
    assert list(Person.objects.values_list("pk", "updated_at", "nik_cipher")) == before
    assert list(Membership.objects.values_list("pk", "updated_at")) == before_m


def test_a_changed_row_updates_its_record(tmp_path):
    import_csv(write(tmp_path, HEADER, GOOD, GOOD2), progress=False)
    changed = GOOD.replace("PT MAJU,aktif", "PT MAJU BARU,nonaktif").replace(
        "081234567890", "")
    summary = import_csv(write(tmp_path, HEADER, changed, GOOD2), progress=False)
    assert (summary.memberships_updated, summary.people_updated, summary.unchanged) == (1, 1, 1)
    m = Membership.objects.get(kpj="12345678901")
    assert (m.employer, m.status) == ("PT MAJU BARU", "nonaktif")
    assert m.person.phone == ""
    assert m.person.email == "siti@contoh.id"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (GOOD.replace("3174055708900003", "317405570890000"), "nik: must have 16 digits"),
        (GOOD.replace("3174055708900003", "3174053102900003"), "nik: its birth-date digits are"),
        (GOOD.replace("3174055708900003", "9974055708900003"), "nik: its first two digits"),
        (GOOD.replace("1990-08-17", "17-08-1990"), "birth_date: dates are written YYYY-MM-DD"),
        (GOOD.replace("1990-08-17", "1990-02-30"), "birth_date: not a real date"),
        (GOOD.replace("1990-08-17", "1991-08-17"), "nik: its birth-date digits do not agree"),
        (GOOD.replace(",P,", ",L,"), "nik: its birth-date digits do not agree"),
        (GOOD.replace(",P,", ",X,"), "sex: must be L or P"),
        (GOOD.replace("12345678901", "1234567890123"), "kpj: "),
        (GOOD.replace("aktif", "active"), "status: must be aktif or nonaktif"),
        (GOOD.replace("siti@contoh.id", "not-an-email"), "email: "),
        (GOOD.replace("081234567890", "12ab"), "phone: "),
        (GOOD + ",extra", "expected 11 fields, found 12"),
        (GOOD.replace("SITI NURHALIZA", ""), "full_name: required"),
    ],
)
def test_bad_rows_are_rejected_with_line_and_reason_and_good_rows_kept(tmp_path, line, reason):
    path = write(tmp_path, HEADER, GOOD2, line)
    summary = import_csv(path, progress=False)
    assert summary.rejected == 1 and summary.memberships_added == 1
    (rej,) = rejects(path)
    assert rej["line"] == "3"
    assert rej["reason"].startswith(reason), rej["reason"]
    assert rej["nik"] == line.split(",")[0]  # the original columns follow
    assert Membership.objects.filter(kpj="11122233344").exists()
    # The reason (also printed in the summary, to terminals and cron logs) repeats no value.
    assert not any(len(value) > 3 and value in rej["reason"] for value in line.split(","))


def test_a_kpj_that_belongs_to_another_nik_is_rejected_in_the_file_and_across_imports(tmp_path):
    other = GOOD2.replace("11122233344", "12345678901")
    path = write(tmp_path, HEADER, GOOD, other)
    summary = import_csv(path, progress=False)
    assert summary.rejected == 1
    assert rejects(path)[0]["reason"] == "kpj: this KPJ already belongs to another NIK"
    # and in a later import, against what the registry already holds
    path2 = write(tmp_path, HEADER, other)
    assert import_csv(path2, progress=False).rejected == 1
    assert Membership.objects.get(kpj="12345678901").person.nik == "3174055708900003"


def test_non_utf8_lines_and_malformed_csv_are_rejected_not_fatal(tmp_path):
    raw = (HEADER + "\n" + GOOD + "\n").encode() + \
        GOOD2.replace("MUHAMMAD", "MU\xc4AMMAD").encode("latin-1") + b"\n" + \
        b'3174055708900003,"SITI "NUR,JAKARTA\n' + GOOD2.replace(
            "11122233344", "11122233355").encode() + b"\n"
    path = write(tmp_path, raw=raw)
    summary = import_csv(path, progress=False)
    assert summary.memberships_added == 2
    reasons = {r["line"]: r["reason"] for r in rejects(path)}
    assert reasons["3"] == "the line is not valid UTF-8 text"
    assert reasons["4"].startswith("malformed CSV")
    assert summary.rows == 4 and summary.rejected == 2
    # the rejected bytes are written back exactly as they came
    assert b"MU\xc4AMMAD" in rejects_path_for(path).read_bytes()


def test_empty_file_and_bad_header_are_clear_errors(tmp_path):
    with pytest.raises(ImportFileError, match="empty"):
        import_csv(write(tmp_path, raw=b""), progress=False)
    with pytest.raises(ImportFileError, match=r"missing column.*kpj"):
        import_csv(write(tmp_path, "nik,full_name", GOOD), progress=False)
    with pytest.raises(ImportFileError, match="no such file"):
        import_csv(tmp_path / "absent.csv", progress=False)


def test_header_only_imports_nothing(tmp_path):
    assert import_csv(write(tmp_path, HEADER), progress=False).rows == 0


def test_chunks_smaller_than_the_file_give_the_same_result(tmp_path):
    from kartu.registry import demo

    path = tmp_path / "demo.csv"
    rows = demo.write_csv_file(path, 300)
    summary = import_csv(path, progress=False, chunk_size=37)
    assert summary.rows == rows and summary.rejected == 0
    assert Membership.objects.count() == rows
    again = import_csv(path, progress=False, chunk_size=53)
    assert again.unchanged == rows


def test_export_writes_the_import_format_back(registry_csv):
    import_csv(registry_csv, progress=False)
    out = io.StringIO()
    assert importer.export_csv(out) == 3
    exported = list(csv.DictReader(io.StringIO(out.getvalue())))
    with open(registry_csv, encoding="utf-8") as fh:
        original = list(csv.DictReader(fh))
    key = lambda r: r["kpj"]  # noqa: E731
    for got, want in zip(sorted(exported, key=key), sorted(original, key=key), strict=True):
        want = {k: want[k] for k in COLUMNS}
        want["phone"] = "+62" + want["phone"][1:] if want["phone"] else ""
        assert got == want


def test_import_cli_prints_a_summary_and_exits_zero(registry_csv, capsys):
    from django.core.management import call_command

    call_command("registry", "import", str(registry_csv), "--no-progress")
    out = capsys.readouterr().out
    assert "3 rows read" in out and "rejected:    0" in out


GOOD3 = "3201011505850001,BUDI SANTOSO,BANDUNG,1985-05-15,L,,,22233344455,PT BARU,aktif,"


@pytest.mark.parametrize(
    ("column", "value"),
    [("full_name", "SITI\x00NURHALIZA"), ("full_name", "SITI\tNURHALIZA"),
     ("employer", "PT\x1bMAJU"), ("sex", "P\x00"), ("nik", "3174055708900003\t"),
     ("email", "siti@contoh.id\x07"), ("registered_on", "2015-03-01\r"),
     ("birth_place", "JAKARTA\x00"), ("programmes", "JHT\x00")],
)
def test_control_characters_are_rejected_naming_the_field(tmp_path, column, value):
    """NUL would also make PostgreSQL's COPY refuse the whole chunk: one bad row, no import."""
    header = [*COLUMNS, "programmes"]
    rec = dict(zip(header, [*GOOD.split(","), "JHT"], strict=True))
    rec[column] = value
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)  # CR quoted too
    out.writerow(header)
    out.writerow([*GOOD2.split(","), ""])
    out.writerow(rec.values())
    path = write(tmp_path, raw=buf.getvalue().encode())
    summary = import_csv(path, progress=False)
    assert (summary.rows, summary.rejected, summary.memberships_added) == (2, 1, 1)
    (rej,) = rejects(path)
    assert rej["line"] == "3"
    assert rej["reason"].startswith(f"{column}: contains control characters")
    assert rej[column] == value


def test_a_malformed_record_keeps_its_text_in_the_rejects_and_counts_as_read(tmp_path):
    bad = '3174055708900003,"SITI "NUR,JAKARTA'
    path = write(tmp_path, HEADER, GOOD2, bad, GOOD)
    summary = import_csv(path, progress=False)
    assert (summary.rows, summary.rejected, summary.memberships_added) == (3, 1, 2)
    (rej,) = rejects(path)
    assert rej["line"] == "3" and rej["reason"].startswith("malformed CSV")
    assert rej["nik"] == bad


def test_an_unterminated_quote_says_which_lines_it_swallowed_and_rejects_each(tmp_path):
    opened = GOOD.replace("SITI NURHALIZA", '"SITI NURHALIZA')
    more = GOOD3.replace("PT BARU", '"PT BARU, TBK"')  # its quote ends the swallowed field
    last = GOOD3.replace("22233344455", "22233344466")
    path = write(tmp_path, HEADER, GOOD2, opened, GOOD2.replace("44,", "55,"), "", more, last)
    summary = import_csv(path, progress=False)
    by_line = {r["line"]: r for r in rejects(path)}
    assert list(by_line) == ["3", "4", "6"]
    assert by_line["3"]["reason"].startswith(
        "unterminated quoted field starting at line 3: lines 3\u20136 were read as one field")
    assert by_line["3"]["nik"] == opened
    for line in ("4", "6"):
        assert by_line[line]["reason"] == \
            "not imported: inside the quoted field left open at line 3"
    # a line that reads as a record by itself keeps its fields, for mending
    assert by_line["4"]["kpj"] == "11122233355"
    assert by_line["6"]["employer"] == "PT BARU, TBK"
    assert (summary.rows, summary.rejected, summary.memberships_added) == (5, 3, 2)
    assert set(Membership.objects.values_list("kpj", flat=True)) == {"11122233344",
                                                                     "22233344466"}
    # to the end of the file
    path = write(tmp_path, HEADER, GOOD2, opened, GOOD3)
    summary = import_csv(path, progress=False)
    assert [r["line"] for r in rejects(path)] == ["3", "4"]
    assert summary.first_rejects[0].startswith(
        "line 3: unterminated quoted field starting at line 3: lines 3\u20134")


def test_a_file_that_cannot_be_imported_leaves_the_earlier_rejects_file(tmp_path):
    path = write(tmp_path, HEADER, GOOD.replace(",P,", ",X,"))
    import_csv(path, progress=False)
    before = rejects_path_for(path).read_bytes()
    assert b"sex: must be L or P" in before
    for raw in (b"", b"nik,full_name\n"):
        path.write_bytes(raw)
        with pytest.raises(ImportFileError):
            import_csv(path, progress=False)
        assert rejects_path_for(path).read_bytes() == before
    absent = tmp_path / "new.csv"
    absent.write_bytes(b"")
    with pytest.raises(ImportFileError):
        import_csv(absent, progress=False)
    assert not rejects_path_for(absent).exists()


def test_a_file_without_a_header_is_refused_without_quoting_the_row(tmp_path):
    with pytest.raises(ImportFileError) as err:
        import_csv(write(tmp_path, GOOD, GOOD2), progress=False)
    message = str(err.value)
    assert "the first line is not a header" in message
    for secret in ("3174055708900003", "SITI", "1990-08-17", "siti@contoh.id", "12345678901"):
        assert secret not in message


def test_a_file_separated_by_semicolons_is_refused_with_the_reason(tmp_path):
    path = write(tmp_path, HEADER.replace(",", ";"), GOOD.replace(",", ";"))
    with pytest.raises(ImportFileError, match="separated by semicolons") as err:
        import_csv(path, progress=False)
    assert "3174055708900003" not in str(err.value)
    assert not rejects_path_for(path).exists()


def test_rejects_found_while_writing_are_in_line_order(tmp_path):
    other = GOOD2.replace("11122233344", "12345678901")  # the KPJ of line 2, another NIK
    path = write(tmp_path, HEADER, GOOD, other, GOOD.replace(",P,", ",X,"))
    summary = import_csv(path, progress=False)
    assert [r["line"] for r in rejects(path)] == ["3", "4"]
    assert [r.split(":")[0] for r in summary.first_rejects] == ["line 3", "line 4"]


def test_a_file_without_the_programmes_column_keeps_the_stored_programmes(tmp_path):
    """The default export has no programmes column: exporting and importing back loses none."""
    header = HEADER + ",programmes"
    import_csv(write(tmp_path, header, GOOD + ",JHT JKK", GOOD2 + ",JP"), progress=False)
    out = io.StringIO()
    importer.export_csv(out)  # without programmes
    path = tmp_path / "export.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    again = import_csv(path, progress=False)
    assert (again.memberships_updated, again.unchanged) == (0, 2)
    # a changed row updates its other values and still keeps the programmes; a new
    # membership gets the default
    changed = GOOD.replace("PT MAJU", "PT MAJU BARU")
    summary = import_csv(write(tmp_path, HEADER, changed, GOOD2, GOOD3), progress=False)
    assert (summary.memberships_updated, summary.unchanged, summary.memberships_added) == \
        (1, 1, 1)
    assert dict(Membership.objects.values_list("kpj", "programmes")) == {
        "12345678901": "JHT JKK", "11122233344": "JP", "22233344455": ""}
    assert Membership.objects.get(kpj="12345678901").employer == "PT MAJU BARU"
    # and a file with the column still sets them, to empty as well
    import_csv(write(tmp_path, header, GOOD + ",", GOOD2 + ",JHT"), progress=False)
    assert dict(Membership.objects.values_list("kpj", "programmes"))["12345678901"] == ""
    assert dict(Membership.objects.values_list("kpj", "programmes"))["11122233344"] == "JHT"


def test_the_people_whose_data_changed_are_announced_after_each_chunk(tmp_path):
    from django.db import transaction

    from kartu.registry.signals import persons_changed

    sent: list[frozenset[int]] = []

    def receiver(sender, person_ids, **kwargs):  # type: ignore[no-untyped-def]
        assert sender == "registry.importer"
        assert not transaction.get_connection().in_atomic_block  # after the commit
        sent.append(person_ids)

    persons_changed.connect(receiver)
    try:
        import_csv(write(tmp_path, HEADER, GOOD, GOOD2), progress=False)
        assert sent == []  # new people have no card yet
        siti = Person.objects.get(memberships__kpj="12345678901").pk
        rizki = Person.objects.get(memberships__kpj="11122233344").pk
        import_csv(write(tmp_path, HEADER, GOOD, GOOD2), progress=False)
        assert sent == []  # nothing changed
        # only a new membership of a known person (and a new person): no KPJ known yet
        new_kpj = GOOD2.replace("11122233344", "11122233300")
        import_csv(write(tmp_path, HEADER, new_kpj, GOOD3), progress=False)
        assert sent == [frozenset({rizki})]
        sent.clear()
        # a changed person, a changed membership, one unchanged; chunks of one row
        renamed = GOOD.replace("SITI NURHALIZA", "SITI NURHALIZA PUTRI")
        moved = GOOD2.replace(",,nonaktif", ",PT LAIN,nonaktif")
        budi = Person.objects.get(memberships__kpj="22233344455").pk
        import_csv(write(tmp_path, HEADER, renamed, GOOD3, moved), progress=False,
                   chunk_size=1)
        assert sent == [frozenset({siti}), frozenset({rizki})]
        sent.clear()
        # a changed phone (the contact digest), in one chunk with a changed membership
        import_csv(write(tmp_path, HEADER, renamed.replace("081234567890", "081299999999"),
                         GOOD3.replace("PT BARU", "PT BARU JAYA")), progress=False)
        assert sent == [frozenset({siti, budi})]
    finally:
        persons_changed.disconnect(receiver)


# --- the fast path gives exactly what the reference rules give --------------------------------

_MUTATIONS = {
    "nik": ["", " 3174055708900003 ", "3174055708900000", "9974055708900003", "3174053208900003",
            "3174057308900003", "3174053102900003", "3174052902010003", "3174052902000003",
            "3174050101300003", "317405570890000٣", "3174.0557.0890.0003", "31740557089000031",
            "3174051708900003", "3174055708900003\t", "abc"],
    "full_name": ["", "  ", "A" * 201, " siti  nur\thaliza ", "SITI\u00a0NUR", "É"],
    "birth_place": ["", "B" * 101, " JAKARTA ", "JAKARTA\tPUSAT"],
    "birth_date": ["", "1990-8-17", "17-08-1990", "1990-02-30", "1899-12-31", "2999-01-01",
                   " 1990-08-17", "1990-08-17 ", "19900817", "1990-08-1٧", "1991-08-17",
                   "1990-08-18"],
    "sex": ["", "l", "p", " P ", "X", "LP", "\tP"],
    "email": ["", " ", "A@B.CO", "not-an-email", "a b@c.de", "a@b", "@b.c", "a@b.c\t",
              " siti@contoh.id ", "x" * 250 + "@a.id"],
    "phone": ["", " ", "0812", "081234567890", "+6281234567890", "6281234567890", "0081234",
              "0081234567890", "(0812) 345-678", "+1 202 555 0100", "08123456789012345",
              "12ab", "0812345678901\t", "+62812345678", "00", "0", "+62", "+620812345678"],
    "kpj": ["", "1234567890", "1234567890123", "1234.5678.901", " 12345678901 ", "12345678901x",
            "１2345678901"],
    "employer": ["", "E" * 201, "  PT   MAJU ", "PT\tMAJU"],
    "status": ["", "AKTIF", " nonaktif ", "active", "Aktif"],
    "registered_on": ["", " ", "2015-3-01", "2015-02-29", "2999-12-31", " 2015-03-01 "],
    "programmes": ["", "jht jkk", "JHT,JKK;JKM", "JHT XYZ", "  ", "JP JHT JHT"],
}


def outcome(parse, rec):  # type: ignore[no-untyped-def]
    """What ``parse`` makes of ``rec``: its result, or the text of its RowError."""
    try:
        return parse(list(rec))
    except importer.RowError as exc:
        return str(exc)


def test_a_failing_listener_does_not_stop_the_import(tmp_path, caplog):
    from kartu.registry.signals import persons_changed

    def broken(sender, person_ids, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("card service down")

    import_csv(write(tmp_path, HEADER, GOOD), progress=False)
    persons_changed.connect(broken)
    try:
        renamed = GOOD.replace("SITI NURHALIZA", "SITI NURHALIZA PUTRI")
        summary = import_csv(write(tmp_path, HEADER, renamed, GOOD2), progress=False,
                             chunk_size=1)
    finally:
        persons_changed.disconnect(broken)
    assert (summary.people_updated, summary.people_added) == (1, 1)
    assert Person.objects.filter(full_name="SITI NURHALIZA PUTRI").exists()
    assert any("failed for 1 changed people" in r.getMessage() for r in caplog.records)


def test_the_fast_parser_agrees_with_the_reference_rules_on_mutated_rows():
    """Randomised: ``RowParser.parse_fast`` returns what ``parse`` returns, or the same error."""
    import random

    from kartu.core import crypto
    from kartu.registry import demo

    header = [*COLUMNS, "programmes"]
    parser = importer.RowParser(header, crypto.keyring())
    rng = random.Random(20261125)
    base = [[row[c] for c in header] for row in demo.generate(300, seed=7)]
    checked = rejected = 0
    for i in range(6000):
        rec = list(base[i % len(base)])
        for _ in range(rng.choice((0, 1, 1, 2))):
            col = rng.randrange(len(header))
            rec[col] = rng.choice(_MUTATIONS[header[col]])
        if rng.random() < 0.02:
            rec.append("extra")
        if rng.random() < 0.02:
            rec[rng.randrange(len(header))] += "\udcc4"  # an undecodable byte
        assert outcome(parser.parse, rec) == outcome(parser.parse_fast, rec), rec
        rejected += isinstance(outcome(parser.parse, rec), str)
        checked += 1
    assert rejected > 1000 and checked - rejected > 1000
    # and clean rows never need the reference path; the blind index is crypto.blind_index's
    parser.parse = None  # type: ignore[method-assign,assignment]
    for rec in base:
        person, membership = parser.parse_fast(rec)
        assert person.nik_index == membership.nik_index == crypto.blind_index(rec[0])


# --- the worker process ----------------------------------------------------------------------


def tricky_files(tmp_path: Path) -> tuple[Path, Path]:
    """A clean base file, and a file with every kind of trouble for after it (chunks of 7)."""
    from kartu.registry import demo

    rows = [[r[c] for c in (*COLUMNS, "programmes")] for r in demo.generate(60, seed=11)]
    base = tmp_path / "base.csv"
    with open(base, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow([*COLUMNS, "programmes"])
        out.writerows(rows[:30])
    other = rows[40]
    lines: list[bytes] = [(",".join([*COLUMNS, "programmes"]) + "\n").encode()]

    def add(rec: list[str]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(rec)
        lines.append(buf.getvalue().encode())

    for i, rec in enumerate(rows[25:]):
        rec = list(rec)
        if i % 9 == 3:
            rec[4] = rec[4].lower()  # accepted through the reference path
            rec[1] = f"  {rec[1]}  "
        if i % 11 == 5:
            rec[8] = rec[8].replace(" ", "\n", 1)  # a quoted field over two lines (a reject)
        add(rec)
        if i % 7 == 2:
            add([*rec[:7], rec[7], "PT LAIN", "nonaktif", *rec[10:]])  # same KPJ, changed
        if i % 8 == 4:
            add([*other[:7], rec[7], *other[8:]])  # the KPJ belongs to another NIK (in the file)
        if i % 10 == 1:
            add([*rec[:1], rec[1] + " BARU", *rec[2:7], rec[7][:-1] + "9", *rec[8:]])
        if i % 6 == 0:
            bad = list(rec)
            bad[(i // 6) % 11] = "??"
            add(bad)
        if i % 13 == 6:
            lines.append(b"\n")
        if i % 12 == 7:
            lines.append(b'3174055708900003,"SITI "NUR,JAKARTA\n')
        if i % 14 == 8:
            lines.append(",".join(rec).replace(rec[1], rec[1][:2] + "\xc4").encode("latin-1")
                         + b"\n")
        if i == 28:
            lines.append(b'3174055708900003,"SITI NUR,JAKARTA\n')  # swallows the next lines
    add([*rows[45][:7], rows[3][7], *rows[45][8:]])  # a KPJ the database gives another NIK
    tricky = tmp_path / "tricky.csv"
    tricky.write_bytes(b"".join(lines))
    return base, tricky


def registry_state() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    people = [(p.nik_index, p.nik_index_kid, p.nik, p.full_name, p.birth_place, p.birth_date,
               p.sex, p.email, p.phone, p.contact_digest)
              for p in Person.objects.order_by("pk")]
    members = list(Membership.objects.order_by("pk").values_list(
        "person__nik_index", "kpj", "employer", "status", "registered_on", "programmes"))
    return people, members


def run_tricky(tmp_path: Path, parallel: bool) -> tuple[object, ...]:
    Membership.objects.all().delete()
    Person.objects.all().delete()
    base, tricky = tricky_files(tmp_path)
    first = import_csv(base, progress=False, parallel=parallel, chunk_size=7)
    second = import_csv(tricky, progress=False, parallel=parallel, chunk_size=7)
    third = import_csv(tricky, progress=False, parallel=parallel, chunk_size=5)
    summaries = [{k: v for k, v in vars(s).items() if k != "seconds"}
                 for s in (first, second, third)]
    return summaries, rejects_path_for(tricky).read_bytes(), registry_state()


def test_the_worker_process_gives_exactly_the_serial_result(tmp_path):
    serial = run_tricky(tmp_path, parallel=False)
    summaries = serial[0]
    assert summaries[1]["rejected"] > 20 and summaries[1]["memberships_updated"] > 0  # type: ignore[index]
    assert b"kpj: this KPJ already belongs to another NIK" in serial[1]  # type: ignore[operator]
    assert b"malformed CSV" in serial[1] and b"\xc4" in serial[1]  # type: ignore[operator]
    assert b"unterminated quoted field" in serial[1]  # type: ignore[operator]
    for s in summaries[1:]:  # type: ignore[index]
        # every record read is accounted for, and the rejects file is in line order
        assert s["rows"] == (s["memberships_added"] + s["memberships_updated"] + s["unchanged"]
                             + s["rejected"])
    text = bytes(serial[1]).decode("utf-8", "surrogateescape")  # type: ignore[call-overload]
    lines = [int(r[0]) for r in list(csv.reader(io.StringIO(text, newline="")))[1:]]
    assert lines == sorted(lines)
    assert run_tricky(tmp_path, parallel=True) == serial


def test_imported_rows_use_the_crypto_module_formats(tmp_path):
    from kartu.core import crypto
    from kartu.registry import demo

    path = tmp_path / "demo.csv"
    demo.write_csv_file(path, 200)
    import_csv(path, progress=False, parallel=True, chunk_size=50)
    nonces = []
    for p in Person.objects.all():
        assert p.nik_index == crypto.blind_index(p.nik)
        for blob in (p.nik_cipher, p.email_cipher, p.phone_cipher):
            if blob:
                blob = bytes(blob)
                assert crypto.key_id_of(blob) == crypto.keyring().active_field
                nonces.append(blob[2 + blob[1] : 14 + blob[1]])
    assert len(nonces) > 300 and len(set(nonces)) == len(nonces)


def test_an_error_in_the_worker_is_raised_and_the_worker_is_gone(tmp_path, monkeypatch):
    import multiprocessing

    from kartu.registry import demo

    path = tmp_path / "demo.csv"
    demo.write_csv_file(path, 100)
    real = importer._parse_chunks

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        chunks = real(*args, **kwargs)
        yield next(chunks)
        raise OSError("disk on fire")

    monkeypatch.setattr(importer, "_parse_chunks", failing)
    with pytest.raises(OSError, match="disk on fire"):
        import_csv(path, progress=False, parallel=True, chunk_size=20)
    assert multiprocessing.active_children() == []
    assert Membership.objects.count() == 20  # the chunk before the error is kept


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_error_while_writing_stops_the_worker(tmp_path, monkeypatch, error):
    import multiprocessing

    from kartu.registry import demo

    path = tmp_path / "demo.csv"
    demo.write_csv_file(path, 400)
    real = importer._apply_chunk
    calls = []

    def apply(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise error()
        return real(*args, **kwargs)

    monkeypatch.setattr(importer, "_apply_chunk", apply)
    with pytest.raises(error):
        import_csv(path, progress=False, parallel=True, chunk_size=10)
    assert multiprocessing.active_children() == []
    assert Membership.objects.count() == 10


def test_a_late_reject_reads_the_row_again_and_notices_a_changed_file(tmp_path):
    from kartu.core import crypto

    path = write(tmp_path, HEADER, GOOD2, "", '"' + GOOD.replace(",", '","', 1) + '"x', GOOD)
    parser = importer.RowParser(COLUMNS_LIST, crypto.keyring())
    person, membership = parser.parse(GOOD.split(","))
    sources = importer._SourceRecords(path, parser)
    assert sources.get(5, person.nik_index, membership.kpj) == GOOD.split(",")
    sources.close()
    sources = importer._SourceRecords(path, parser)
    with pytest.raises(ImportFileError, match="line 4 changed"):
        sources.get(4, person.nik_index, membership.kpj)
    sources.close()


COLUMNS_LIST = list(COLUMNS)


def test_progress_bar_with_the_worker(tmp_path, capsys):
    from kartu.registry import demo

    path = tmp_path / "demo.csv"
    rows = demo.write_csv_file(path, 300)
    summary = import_csv(path, progress=True, parallel=True, chunk_size=100)
    assert summary.memberships_added == rows
    err = capsys.readouterr().err
    assert "import" in err and "100%" in err


def test_the_connection_settings_are_restored_after_an_import(tmp_path):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite connection settings")
    connection.ensure_connection()

    def settings():  # type: ignore[no-untyped-def]
        return [connection.connection.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("cache_size", "wal_autocheckpoint")]

    before = settings()
    import_csv(write(tmp_path, HEADER, GOOD, GOOD2), progress=False)
    assert settings() == before
