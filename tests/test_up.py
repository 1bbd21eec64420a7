"""`kartu up` runs the web server, a worker and the listeners; Ctrl-C stops them all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_up_serves_and_stops_cleanly_on_ctrl_c(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KARTU_") and k != "DJANGO_SETTINGS_MODULE"}
    env.update(KARTU_DATA_DIR=str(tmp_path), KARTU_SMTP_LISTEN=f"127.0.0.1:{free_port()}")
    kartu = [sys.executable, "-m", "kartu"]
    subprocess.run([*kartu, "migrate", "-v0"], env=env, check=True, timeout=120)
    port = free_port()
    proc = subprocess.Popen([*kartu, "up", "--bind", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.3)
        assert body == {"ok": True}
        home = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        assert "nomor KPJ" in home
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "stopped" in out
    # nothing is left listening
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
