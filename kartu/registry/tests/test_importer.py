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
        (GOOD.replace("3174055708900003", "317405570890000"), "nik: "),
        (GOOD.replace("1990-08-17", "17-08-1990"), "birth_date: dates are written YYYY-MM-DD"),
        (GOOD.replace("1990-08-17", "1990-02-30"), "birth_date: "),
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
