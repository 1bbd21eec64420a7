"""``kartu smtp`` as ``kartu up`` runs it: a real process, a real data directory, SIGTERM."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kartu.channels.email.listener import parse_listen
from kartu.channels.email.tests.conftest import compose
from kartu.core.processes import listener_commands


def test_the_listener_is_registered_for_kartu_up():
    assert listener_commands()["smtp"] == ["smtp"]


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1:2525", ("127.0.0.1", 2525)), ("[::1]:25", ("::1", 25)),
    (":2525", ("", 2525)), ("2525", ("127.0.0.1", 2525)),
])
def test_parse_listen(value, expected):
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["host", "host:port", "1.2.3.4:70000"])
def test_parse_listen_rejects(value):
    with pytest.raises(ValueError, match=r"HOST:PORT|out of range"):
        parse_listen(value)


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KARTU_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update({"KARTU_DATA_DIR": str(data_dir), "KARTU_CARE_ADDRESS": "care@kartu.localhost",
                "KARTU_LOG_LEVEL": "WARNING"})
    return env


@pytest.mark.slow
def test_kartu_smtp_stores_mail_and_stops_on_sigterm(tmp_path):
    env = _env(tmp_path)
    migrate = subprocess.run([sys.executable, "-m", "kartu", "migrate", "-v0"], env=env,
                             capture_output=True, text=True, timeout=180)
    assert migrate.returncode == 0, migrate.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "kartu", "smtp", "--listen",
                             f"127.0.0.1:{port}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"listening on 127.0.0.1:{port} for care@kartu.localhost" in banner
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.ehlo()
            client.mail("budi@contoh.id")
            assert client.rcpt("someone@else.example")[0] == 550
            assert client.rcpt("care@kartu.localhost")[0] == 250
            code, _ = client.data(compose("Halo, saya lupa KPJ", sender="budi@contoh.id",
                                          message_id="<cmd-1@contoh.id>"))
            assert code == 250
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with sqlite3.connect(tmp_path / "kartu.sqlite3") as db:
        rows = db.execute("SELECT external_id FROM desk_message WHERE direction = 'in'").fetchall()
        queued = db.execute("SELECT count(*) FROM django_tasks_database_dbtaskresult").fetchone()
    assert rows == [("<cmd-1@contoh.id>",)]  # committed before the 250
    assert queued[0] == 1  # and its processing was enqueued for the worker
