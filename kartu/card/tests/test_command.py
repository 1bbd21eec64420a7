"""``kartu card verify`` (text, stdin, PNG; in-process and as a real subprocess) and ``issue``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from kartu.card import keys, render, services

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]


def _verify(*args: str) -> dict:  # type: ignore[type-arg]
    out = io.StringIO()
    call_command("card", "verify", *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])  # type: ignore[no-any-return]


def test_verify_text(qr_text, card):  # type: ignore[no-untyped-def]
    result = _verify(qr_text)
    assert result["valid"] is True and result["status"] == "valid" and result["reason"]
    assert set(result["card"]) == {"kpj", "n", "dob", "nik4", "iss", "iat", "exp", "cti"}
    assert result["card"]["cti"] == card.cti


def test_verify_garbage_prints_json_with_null_card(db):  # type: ignore[no-untyped-def]
    for text in ("hello", "KPJ1:%%%", "KPJ1:" + "A" * 3000):
        result = _verify(text)
        assert result == {"valid": False, "status": "not_genuine", "reason": result["reason"],
                          "card": None}


def test_verify_stdin(qr_text, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((qr_text + "\n").encode())))
    assert _verify()["status"] == "valid"


def test_verify_png(card, qr_text, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    path = tmp_path / "card.png"
    path.write_bytes(render.render_png(card))
    assert _verify("--png", str(path))["status"] == "valid"
    assert _verify(str(path))["status"] == "valid"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    assert _verify()["status"] == "valid"


def test_verify_image_without_qr_or_broken(tmp_path, db):  # type: ignore[no-untyped-def]
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("L", (200, 100), 255).save(blank)
    result = _verify("--png", str(blank))
    assert result["status"] == "not_genuine" and "no QR" in result["reason"]
    assert result["card"] is None
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    assert _verify("--png", str(broken))["reason"] == "the image could not be read"
    with pytest.raises(CommandError):
        _verify("--png", str(tmp_path / "missing.png"))


def test_verify_with_key_files(qr_text, card, membership, tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "keys.json").write_text(json.dumps(keys.jwks()))
    (tmp_path / "revoked.json").write_text(json.dumps({"updated": 1, "revoked": [card.cti]}))
    assert _verify(qr_text, "--keys", str(tmp_path / "keys.json"))["status"] == "valid"
    assert _verify(qr_text, "--keys", str(tmp_path / "keys.json"), "--revoked",
                   str(tmp_path / "revoked.json"))["status"] == "revoked"


@pytest.mark.parametrize("length", [255, 256, 300, 4095, 4096, 5000])
def test_a_long_argument_is_text_not_a_file_name(db, length):  # type: ignore[no-untyped-def]
    """A name longer than the system allows (ENAMETOOLONG) is simply not a file."""
    result = _verify("A" * length)
    assert result == {"valid": False, "status": "not_genuine", "reason": result["reason"],
                      "card": None}
    assert _verify("A" * 200 + "/" + "B" * 300)["status"] == "not_genuine"


def test_a_forged_far_future_expiry_prints_one_json_object(card, other_signer):  # type: ignore[no-untyped-def]
    from kartu.card.tests.conftest import _payload, _signed_with

    for exp in (2**39, 2**60):
        result = _verify(_signed_with(other_signer, _payload({4: exp})))
        assert result["status"] == "not_genuine" and result["card"] is None


@pytest.mark.parametrize(
    "content",
    [
        '{"revoked": 5}',
        '{"revoked": "abc"}',
        '{"revoked": ["ok", 5]}',
        '{"revoked": [null]}',
        '{"updated": 1}',
        '["abc"]',
        "5",
        "not json",
        "{",
        b"\xff\xfe",
    ],
)
def test_a_malformed_revocation_list_is_a_clear_error(qr_text, tmp_path, content):  # type: ignore[no-untyped-def]
    (tmp_path / "keys.json").write_text(json.dumps(keys.jwks()))
    revoked = tmp_path / "revoked.json"
    if isinstance(content, bytes):
        revoked.write_bytes(content)
    else:
        revoked.write_text(content)
    with pytest.raises(CommandError, match="--revoked"):
        _verify(qr_text, "--keys", str(tmp_path / "keys.json"), "--revoked", str(revoked))


@pytest.mark.parametrize("fmt", ["png", "pdf", "qr"])
def test_issue(membership, tmp_path, fmt):  # type: ignore[no-untyped-def]
    out = tmp_path / f"card.{fmt}"
    call_command("card", "issue", "--kpj", "10987654321", "--format", fmt, "--out", str(out),
                 stderr=io.StringIO())
    data = out.read_bytes()
    magic = {"png": b"\x89PNG", "pdf": b"%PDF", "qr": b"KPJ1:"}[fmt]
    assert data.startswith(magic)
    card = services.current_card(membership)
    if fmt == "qr":
        assert data.decode().strip() == services.qr_text(card)


def test_issue_reissue_and_unknown_kpj(membership, card, tmp_path):  # type: ignore[no-untyped-def]
    call_command("card", "issue", "--kpj", "10987654321", "--format", "qr", "--reissue",
                 "--out", str(tmp_path / "q"), stderr=io.StringIO())
    card.refresh_from_db()
    assert card.revoked_at is not None
    with pytest.raises(CommandError, match="no membership"):
        call_command("card", "issue", "--kpj", "99999999999", "--format", "qr",
                     "--out", str(tmp_path / "x"))


def test_real_subprocess(qr_text, card, tmp_path):  # type: ignore[no-untyped-def]
    """``python -m kartu card verify`` in its own process, data dir and (empty) database,
    verifying against the published key set and revocation list given as files."""
    (tmp_path / "keys.json").write_text(json.dumps(keys.jwks()))
    (tmp_path / "revoked.json").write_text(json.dumps(keys.revoked_list()))
    env = {**os.environ, "KARTU_DATA_DIR": str(tmp_path / "data"),
           "KARTU_PUBLIC_URL": django_settings.PUBLIC_URL, "DJANGO_SETTINGS_MODULE": ""}
    env.pop("DJANGO_SETTINGS_MODULE")
    base = [sys.executable, "-m", "kartu", "card", "verify", "--keys",
            str(tmp_path / "keys.json"), "--revoked", str(tmp_path / "revoked.json")]
    proc = subprocess.run(base, input=qr_text.encode(), capture_output=True, cwd=ROOT, env=env,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    result = json.loads(proc.stdout)
    assert result["valid"] is True and result["card"]["kpj"] == "10987654321"
    proc = subprocess.run([*base, "KPJ1:NOT-A-CARD"], capture_output=True, cwd=ROOT, env=env,
                          timeout=120, check=False)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["status"] == "not_genuine"
