"""Sending one-time codes and notices: email through Django's mail backend, SMS through a
pluggable sender — console/file for development, a Twilio-compatible Messages API for production
(``KARTU_SMS_BACKEND=twilio`` with ``KARTU_TWILIO_BASE_URL``, ``KARTU_TWILIO_ACCOUNT_SID``,
``KARTU_TWILIO_AUTH_TOKEN``, ``KARTU_TWILIO_FROM``)."""

from __future__ import annotations

import base64
import json
import logging
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from kartu.core.logging import redact

log = logging.getLogger(__name__)


class SendError(Exception):
    pass


def send_email(to: str, subject: str, body: str) -> None:
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)


def send_sms(to: str, body: str) -> str:
    """Send ``body`` to the E.164 number ``to``; returns the provider's message id (or "")."""
    backend = settings.KARTU_SMS_BACKEND
    if backend == "console":
        sys.stderr.write(f"[sms to {to[:5]}…] {body}\n")
        return ""
    if backend == "file":
        path = Path(settings.DATA_DIR) / "sms-outbox.jsonl"
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"to": to, "body": body, "at": timezone.now().isoformat()}) + "\n")
        return ""
    if backend == "twilio":
        return _twilio(to, body)
    raise SendError(f"unknown KARTU_SMS_BACKEND {backend!r}")


def _twilio(to: str, body: str) -> str:
    sid, token = settings.KARTU_TWILIO_ACCOUNT_SID, settings.KARTU_TWILIO_AUTH_TOKEN
    if not (sid and token and settings.KARTU_TWILIO_FROM):
        raise SendError("the Twilio SMS sender needs KARTU_TWILIO_ACCOUNT_SID, _AUTH_TOKEN, _FROM")
    url = f"{settings.KARTU_TWILIO_BASE_URL.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
    data = urllib.parse.urlencode({"To": to, "From": settings.KARTU_TWILIO_FROM, "Body": body})
    request = urllib.request.Request(url, data=data.encode(), method="POST")  # noqa: S310
    auth = base64.b64encode(f"{sid}:{token}".encode()).decode()
    request.add_header("Authorization", f"Basic {auth}")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            payload = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        raise SendError(f"Twilio answered {exc.code}: {redact(detail)}") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise SendError(f"Twilio unreachable: {exc}") from None
    return str(payload.get("sid", ""))
