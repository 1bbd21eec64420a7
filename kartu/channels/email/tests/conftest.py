"""Real SMTP on loopback: the listener under test, and a sink that collects our replies."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from kartu.channels.email import listener as smtp_listener
from kartu.channels.email.listener import BoundController

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CARE = "care@kartu.localhost"


class Sink:
    """An SMTP server that keeps every message it receives (stands in for the agency's MTA)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.changed = threading.Condition()
        self.controller = BoundController(self, hostname="127.0.0.1", port=0,
                                          server_hostname="sink.localhost")

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.changed:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  bytes(envelope.original_content)))
            self.changed.notify_all()
        return "250 OK"

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def wait(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
            return self.parsed()

    def parsed(self) -> list[EmailMessage]:
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(raw) for _f, _t, raw in self.messages]  # type: ignore[misc]

    def settle(self, seconds: float = 0.3) -> list[EmailMessage]:
        """What arrived after a short wait (to assert that nothing more comes)."""
        time.sleep(seconds)
        return self.parsed()


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_out(settings, sink: Sink) -> Sink:  # type: ignore[no-untyped-def]
    """Django's SMTP backend pointed at the sink; the care address fixed for the tests."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    settings.KARTU_CARE_ADDRESS = CARE
    settings.DEFAULT_FROM_EMAIL = CARE
    return sink


@pytest.fixture
def listener(smtp_out: Sink) -> Iterator[smtp_listener.Listener]:
    running = smtp_listener.start("127.0.0.1:0")
    yield running
    running.stop()


def fixture_bytes(name: str) -> bytes:
    """A fixture with CRLF line ends, as on the wire (smtplib sends bytes unchanged)."""
    return (FIXTURES / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def send(port: int, raw: bytes, *, sender: str = "member@contoh.id",
         rcpt: str = CARE) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.sendmail(sender, [rcpt], raw)


def compose(text: str, *, sender: str = "member@contoh.id", subject: str = "Nomor KPJ",
            message_id: str | None = None, headers: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = CARE
    msg["Subject"] = subject
    msg["Date"] = "Mon, 03 Jun 2024 09:00:00 +0700"
    if message_id:
        msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    return msg.as_bytes(policy=policy.SMTP)
