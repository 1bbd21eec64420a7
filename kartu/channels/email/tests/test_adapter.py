"""Outgoing replies: headers, threading, and how SMTP failures map to retry or dead letter."""

from __future__ import annotations

import smtplib
import socket
from typing import Any, ClassVar

import pytest
from django.core import mail

from kartu.channels.email.adapter import EmailAdapter, reply_subject, thread_headers
from kartu.channels.email.listener import BoundController
from kartu.desk import channels
from kartu.desk.channels import Outgoing, PermanentSendError, TransientSendError

CARE = "care@kartu.localhost"


@pytest.fixture(autouse=True)
def _care(settings):  # type: ignore[no-untyped-def]
    settings.KARTU_CARE_ADDRESS = CARE
    settings.DEFAULT_FROM_EMAIL = CARE


def outgoing(address: str = "siti@contoh.id", text: str = "Halo.\nNomor KPJ Anda: 12345678901",
             language: str = "id", **meta: Any) -> Outgoing:
    return Outgoing(channel="email", address=address, text=text, language=language,
                    conversation_id=1, message_id=1, reply_meta=meta)


def test_the_adapter_is_registered_for_the_email_channel():
    assert isinstance(channels.get("email"), EmailAdapter)


def test_a_reply_threads_and_is_marked_automatic():
    result = EmailAdapter().send(outgoing(
        message_id="<m2@gmail.com>", references=["<m0@gmail.com>", "<m1@kartu.localhost>"],
        subject="RE: Re: Lupa KPJ"))
    (sent,) = mail.outbox
    msg = sent.message()
    assert msg["From"] == CARE
    assert msg["To"] == "siti@contoh.id"
    assert msg["Subject"] == "Re: Lupa KPJ"
    assert msg["In-Reply-To"].strip() == "<m2@gmail.com>"
    assert msg["References"].split() == ["<m0@gmail.com>", "<m1@kartu.localhost>",
                                          "<m2@gmail.com>"]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert result.platform_id == msg["Message-ID"]
    assert result.platform_id.startswith("<") and result.platform_id.endswith(
        ".kartu@kartu.localhost>")
    assert result.meta["in_reply_to"] == "<m2@gmail.com>"
    assert sent.body == "Halo.\nNomor KPJ Anda: 12345678901"


@pytest.mark.parametrize(("original", "language", "expected"), [
    ("Lupa KPJ", "id", "Re: Lupa KPJ"),
    ("Re: Lupa KPJ", "id", "Re: Lupa KPJ"),
    ("RE: re:Re :  Lupa KPJ", "id", "Re: Lupa KPJ"),
    ("AW: Balas: Lupa KPJ", "id", "Re: Lupa KPJ"),
    ("Fwd: Lupa KPJ", "id", "Re: Fwd: Lupa KPJ"),
    ("", "id", "Re: Permintaan nomor KPJ"),
    ("  Re:  ", "en", "Re: Your KPJ number request"),
    ("Lupa\r\nBcc: evil@example.com", "id", "Re: Lupa Bcc: evil@example.com"),
])
def test_reply_subject(original, language, expected):
    assert reply_subject(original, language) == expected


def test_a_header_injection_attempt_stays_in_the_subject():
    EmailAdapter().send(outgoing(subject="x\r\nBcc: evil@example.com\r\n"))
    msg = mail.outbox[0].message()
    assert msg["Bcc"] is None
    assert mail.outbox[0].recipients() == ["siti@contoh.id"]


def test_thread_headers_without_a_parent_message_id():
    assert thread_headers({}) == {}
    assert thread_headers({"message_id": "", "in_reply_to": "<p@x.id>"}) == {
        "References": "<p@x.id>"}
    many = {"message_id": "<m@x>", "references": [f"<r{i}@x>" for i in range(40)]}
    refs = thread_headers(many)["References"].split()
    assert len(refs) == 20 and refs[0] == "<r0@x>" and refs[-1] == "<m@x>"


@pytest.mark.parametrize("address", ["", "not-an-address", "a@b", "x@y.id\r\nBcc: z@w.id"])
def test_an_invalid_recipient_is_a_permanent_failure(address):
    with pytest.raises(PermanentSendError):
        EmailAdapter().send(outgoing(address=address))
    assert mail.outbox == []


class FailingBackend:
    error: ClassVar[Exception | None] = None

    def __init__(self, **kwargs: Any) -> None:
        pass

    def send_messages(self, messages: list[Any]) -> int:
        assert self.error is not None
        raise self.error


@pytest.mark.parametrize(("error", "kind"), [
    (smtplib.SMTPRecipientsRefused({"siti@contoh.id": (550, b"5.1.1 unknown")}),
     PermanentSendError),
    (smtplib.SMTPRecipientsRefused({"siti@contoh.id": (450, b"4.2.0 greylisted")}),
     TransientSendError),
    (smtplib.SMTPDataError(554, b"5.7.1 rejected as spam"), PermanentSendError),
    (smtplib.SMTPDataError(451, b"4.3.0 try later"), TransientSendError),
    (smtplib.SMTPSenderRefused(553, b"5.7.1 not allowed", CARE), PermanentSendError),
    (smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"), TransientSendError),
    (smtplib.SMTPServerDisconnected("gone"), TransientSendError),
    (smtplib.SMTPConnectError(554, b"no service"), TransientSendError),
    (ConnectionRefusedError(111, "refused"), TransientSendError),
    (TimeoutError("timed out"), TransientSendError),
    (socket.gaierror(-2, "Name or service not known"), TransientSendError),
])
def test_smtp_failures_map_to_retry_or_dead_letter(settings, error, kind):
    settings.EMAIL_BACKEND = f"{__name__}.FailingBackend"
    FailingBackend.error = error
    with pytest.raises(kind) as raised:
        EmailAdapter().send(outgoing())
    assert "siti@contoh.id" not in str(raised.value)  # no address in what the outbox records


def test_nothing_listening_is_transient(settings):
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    with pytest.raises(TransientSendError):
        EmailAdapter().send(outgoing())


class RefusingServer:
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        return "550 5.1.1 No such user here"


def test_a_real_550_from_the_smtp_server_is_permanent(settings):
    controller = BoundController(RefusingServer(), hostname="127.0.0.1", port=0,
                                 server_hostname="mx.localhost")
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 5
        with pytest.raises(PermanentSendError, match="SMTP 550"):
            EmailAdapter().send(outgoing())
    finally:
        controller.stop()
