"""The `kartu` command as an operator runs it: a real process, a real data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NIKS = ["3174055708900003", "3505120910770018"]


def kartu(data_dir: Path, *args: str, stdin: str | None = None,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("KARTU_") and k != "DJANGO_SETTINGS_MODULE"}
    full_env.update({"KARTU_DATA_DIR": str(data_dir), **(env or {})})
    return subprocess.run([sys.executable, "-m", "kartu", *args], input=stdin,
                          capture_output=True, text=True, env=full_env, timeout=120)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    from kartu.registry.importer import iter_csv_rows

    d = tmp_path_factory.mktemp("kartu-data")
    assert kartu(d, "migrate", "-v0").returncode == 0
    rows = [
        {"nik": NIKS[0], "full_name": "SITI NURHALIZA", "birth_place": "JAKARTA",
         "birth_date": "1990-08-17", "sex": "P", "email": "siti@contoh.id",
         "phone": "081234567890", "kpj": "12345678901", "employer": "PT MAJU JAYA",
         "status": "nonaktif", "registered_on": "2015-03-01"},
        {"nik": NIKS[0], "full_name": "SITI NURHALIZA", "birth_place": "JAKARTA",
         "birth_date": "1990-08-17", "sex": "P", "email": "siti@contoh.id",
         "phone": "081234567890", "kpj": "10987654321", "employer": "PT SINAR ABADI",
         "status": "aktif", "registered_on": "2019-01-01"},
        {"nik": NIKS[1], "full_name": "MUHAMMAD RIZKI", "birth_place": "BLITAR",
         "birth_date": "1977-10-09", "sex": "L", "email": "", "phone": "0813 1111 2222",
         "kpj": "11122233344", "employer": "", "status": "aktif", "registered_on": ""},
    ]
    with open(d / "members.csv", "w", encoding="utf-8", newline="") as fh:
        iter_csv_rows(rows, fh)
    result = kartu(d, "registry", "import", str(d / "members.csv"))
    assert result.returncode == 0, result.stderr
    assert "rejected:    0" in result.stdout
    return d


def test_verify_prints_one_json_object(data_dir):
    result = kartu(data_dir, "registry", "verify", "--nik", "3174 0557 0890 0003",
                   "--name", "Hj. Siti Nurhaliza", "--place", "Kota Jakarta",
                   "--dob", "1990-08-17")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "verified": True,
        "kpj": ["10987654321", "12345678901"],
        "memberships": [
            {"kpj": "10987654321", "employer": "PT SINAR ABADI", "status": "aktif"},
            {"kpj": "12345678901", "employer": "PT MAJU JAYA", "status": "nonaktif"},
        ],
        "limited": False,
    }


def test_wrong_guesses_get_the_same_answer(data_dir):
    base = ["registry", "verify", "--name", "Muhammad Rizki", "--place", "Blitar",
            "--requester", "email:guesser@x.id"]
    unknown = kartu(data_dir, *base, "--nik", "3505120910770019", "--dob", "1977-10-09")
    wrong_dob = kartu(data_dir, *base, "--nik", NIKS[1], "--dob", "1977-10-10")
    assert unknown.returncode == wrong_dob.returncode == 0
    assert json.loads(unknown.stdout) == json.loads(wrong_dob.stdout) == {
        "verified": False, "kpj": [], "memberships": [], "limited": False}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--nik", "317405570890000", "--dob", "1990-08-17"], "nik"),
        (["--nik", NIKS[0], "--dob", "17/08/1990"], "birth_date"),
    ],
)
def test_malformed_arguments_exit_2_with_an_error(data_dir, args, field):
    result = kartu(data_dir, "registry", "verify", "--name", "X", "--place", "Y", *args)
    assert result.returncode == 2
    out = json.loads(result.stdout)
    assert out["field"] == field and out["error"]


@pytest.mark.parametrize(
    "args",
    [
        ["--dob", "1990-08-17"],  # no --nik
        ["--nik", NIKS[0]],  # no --dob
        ["--nik", NIKS[0], "--dob", "1990-08-17", "--factors", "sms"],
        ["--nik", NIKS[0], "--dob", "1990-08-17", "--colour", "red"],
    ],
)
def test_arguments_argparse_refuses_also_answer_one_json_object(data_dir, args):
    result = kartu(data_dir, "registry", "verify", "--name", "X", "--place", "Y", *args)
    assert result.returncode == 2
    out = json.loads(result.stdout)
    assert out["error"].startswith("arguments: ")
    assert "usage:" not in result.stderr


def test_limited_is_reported(data_dir):
    args = ["registry", "verify", "--name", "Muhammad Rizki", "--place", "Blitar",
            "--dob", "1977-10-09", "--requester", "messenger:limited-sender"]
    outs = [json.loads(kartu(data_dir, *args, "--nik", f"35051209107700{20 + i}").stdout)
            for i in range(6)]
    assert [o["limited"] for o in outs] == [False] * 5 + [True]


def test_audit_verify_and_export(data_dir):
    result = kartu(data_dir, "audit", "verify")
    assert result.returncode == 0 and "intact" in result.stdout
    export = kartu(data_dir, "registry", "export")
    assert export.returncode == 0
    assert export.stdout.splitlines()[0].startswith("nik,full_name,birth_place")
    assert len(export.stdout.splitlines()) == 4


def test_no_nik_in_clear_anywhere_in_the_data_directory(data_dir):
    """A raw dump of the database (and its WAL) must not contain a NIK in any common form."""
    assert kartu(data_dir, "registry", "verify", "--nik", NIKS[0], "--name", "Siti Nurhaliza",
                 "--place", "Jakarta", "--dob", "1990-08-17").returncode == 0
    # and a help-desk conversation that carries both NIKs, processed and answered
    script = (
        "from kartu.desk import services\n"
        f"for i, nik in enumerate({NIKS!r}):\n"
        "    m = services.receive(services.Inbound('webchat', f'dump-{i}', f'dump-{i}',\n"
        "        f'Nama Siti Nurhaliza lahir di Jakarta 17 Agustus 1990 NIK {nik}'),\n"
        "        enqueue=False)\n"
        "    services.process_inbound(m.pk)\n"
        "    for o in services.due_outbox_ids(): services.deliver(o)\n"
        "from kartu.desk.models import Outbox\n"
        "print(Outbox.objects.filter(status='sent').count())\n"
    )
    shell = kartu(data_dir, "shell", "-c", script)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.strip().splitlines()[-1] == "2"  # both were answered
    # keep the WAL: do not checkpoint; read every file as it is on disk
    files = [p for p in data_dir.rglob("*") if p.is_file() and p.suffix != ".csv"
             and not p.name.endswith(".rejects.csv")]
    assert any(p.name.startswith("kartu.sqlite3") for p in files)
    for nik in NIKS:
        forms = {nik, f"{nik[:4]} {nik[4:8]} {nik[8:12]} {nik[12:]}", nik[::-1]}
        needles = [f.encode() for f in forms] + [f.encode("utf-16-le") for f in forms]
        needles.append(int(nik).to_bytes(8, "big"))
        needles.append(int(nik).to_bytes(8, "little"))
        for path in files:
            blob = path.read_bytes()
            for needle in needles:
                assert needle not in blob, f"NIK found in clear in {path.name}"
    # and the phone and email on file are encrypted too
    for path in files:
        blob = path.read_bytes()
        assert b"siti@contoh.id" not in blob and b"6281234567890" not in blob


def test_import_rejects_bad_file_clearly(data_dir, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"")
    result = kartu(data_dir, "registry", "import", str(bad))
    assert result.returncode != 0
    assert "empty" in result.stderr


@pytest.mark.django_db
def test_verify_argument_errors_are_a_command_error_in_process():
    """Only the command line gets the JSON answer and exit status 2; ``call_command`` keeps
    Django's CommandError (no SystemExit inside the calling process)."""
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--nik"):
        call_command("registry", "verify", "--dob", "1990-08-17")
