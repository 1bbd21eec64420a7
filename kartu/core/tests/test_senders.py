"""The SMS sender against a local fake of Twilio's Messages API (its documented wire format:
form-encoded POST to /2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP Basic auth,
201 with a JSON body carrying the message "sid"; errors as JSON with "code" and "message")."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from kartu.core import otp, senders

SID, TOKEN = "AC" + "0" * 32, "secret-token"


class FakeTwilio(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    fail_with: int | None = None

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._json(401, {"code": 20003, "message": "Authenticate"})
        if self.path != f"/2010-04-01/Accounts/{SID}/Messages.json":
            return self._json(404, {"code": 20404, "message": "not found"})
        if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
            return self._json(400, {"code": 21601, "message": "bad content type"})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if FakeTwilio.fail_with:
            return self._json(FakeTwilio.fail_with, {"code": 21211,
                                                     "message": f"Invalid 'To' {form['To']}"})
        FakeTwilio.received.append(form)
        return self._json(201, {"sid": "SM" + "1" * 32, "status": "queued", "to": form["To"]})

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def twilio(settings: Any) -> Iterator[type[FakeTwilio]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilio)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeTwilio.received, FakeTwilio.fail_with = [], None
    settings.KARTU_SMS_BACKEND = "twilio"
    settings.KARTU_TWILIO_BASE_URL = f"http://127.0.0.1:{server.server_port}"
    settings.KARTU_TWILIO_ACCOUNT_SID, settings.KARTU_TWILIO_AUTH_TOKEN = SID, TOKEN
    settings.KARTU_TWILIO_FROM = "+15005550006"
    yield FakeTwilio
    server.shutdown()


def test_sms_goes_to_the_twilio_compatible_api(twilio):
    sid = senders.send_sms("+6281234567890", "Kode: 123456")
    assert sid == "SM" + "1" * 32
    assert twilio.received == [{"To": "+6281234567890", "From": "+15005550006",
                                "Body": "Kode: 123456"}]


def test_an_api_error_is_a_clear_send_error_without_the_number(twilio):
    twilio.fail_with = 400
    with pytest.raises(senders.SendError) as exc:
        senders.send_sms("+6281234567890", "x")
    assert "400" in str(exc.value) and "81234567890" not in str(exc.value)


def test_wrong_credentials_are_refused(twilio, settings):
    settings.KARTU_TWILIO_AUTH_TOKEN = "wrong"
    with pytest.raises(senders.SendError, match="401"):
        senders.send_sms("+6281234567890", "x")


def test_an_unreachable_api_is_a_send_error(settings):
    settings.KARTU_SMS_BACKEND = "twilio"
    settings.KARTU_TWILIO_BASE_URL = "http://127.0.0.1:9"
    settings.KARTU_TWILIO_ACCOUNT_SID, settings.KARTU_TWILIO_AUTH_TOKEN = SID, TOKEN
    settings.KARTU_TWILIO_FROM = "+15005550006"
    with pytest.raises(senders.SendError, match="unreachable"):
        senders.send_sms("+6281234567890", "x")


@pytest.mark.django_db
def test_one_time_codes_by_sms_are_single_use_and_hashed(twilio):
    from kartu.core.models import OneTimeCode

    issued = otp.issue("test", "person:1", phone="+6281234567890")
    assert issued.sent and issued.destination == "sms" and issued.masked.endswith("890")
    code = "".join(ch for ch in twilio.received[-1]["Body"].split(":")[1][:8] if ch.isdigit())
    stored = OneTimeCode.objects.get()
    assert code not in stored.code_hash
    assert not otp.verify("test", "person:1", "000000" if code != "000000" else "111111")
    assert otp.verify("test", "person:1", code)
    assert not otp.verify("test", "person:1", code)  # single use


@pytest.mark.django_db
def test_codes_expire_and_five_wrong_tries_void_them(twilio):
    from datetime import timedelta

    from django.utils import timezone

    from kartu.core.models import OneTimeCode

    otp.issue("test", "person:2", phone="+6281234567890")
    code = "".join(ch for ch in twilio.received[-1]["Body"].split(":")[1][:8] if ch.isdigit())
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert not otp.verify("test", "person:2", wrong)
    assert not otp.verify("test", "person:2", code)
    otp.issue("test", "person:3", phone="+6281234567890")
    code = "".join(ch for ch in twilio.received[-1]["Body"].split(":")[1][:8] if ch.isdigit())
    OneTimeCode.objects.filter(subject="person:3").update(expires_at=timezone.now()
                                                          - timedelta(seconds=1))
    assert not otp.verify("test", "person:3", code)


@pytest.mark.django_db
def test_code_issuing_is_rate_limited(twilio):
    results = [otp.issue("test", "person:4", phone="+6281234567890") for _ in range(4)]
    assert [r.sent for r in results] == [True, True, True, False]
    assert results[-1].limited
