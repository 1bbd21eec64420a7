"""End to end over real loopback SMTP: mail into the listener, the bot's reply out of the sink.

Tests use the ImmediateBackend (tests/settings.py): the listener's worker thread stores the
message, then processes it and delivers the reply before it answers 250.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest
from django.db import OperationalError

from kartu.channels.email import listener as smtp_listener
from kartu.channels.email.tests.conftest import CARE, Sink, compose, fixture_bytes, send
from kartu.desk import services
from kartu.desk.models import Contact, Message, Outbox

pytestmark = pytest.mark.django_db(transaction=True)

SITI_MID = "<CAJ5x+Zq1nW3pK8=tY0vB2mN4rE6sT8uV0wX2yZ4aB6cD8eF0gH@mail.gmail.com>"
SITI = "siti.nurhaliza90@gmail.com"


def only_reply(sink: Sink) -> EmailMessage:
    replies = sink.wait(1)
    assert len(replies) == 1, f"expected one reply, got {len(replies)}"
    assert len(sink.settle()) == 1
    return replies[0]


def body(msg: EmailMessage) -> str:
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    return str(msg.get_content())


def test_a_full_request_gets_the_kpj_in_a_threaded_auto_reply(listener, smtp_out,
                                                              loaded_registry):
    refused = send(listener.port, fixture_bytes("gmail_multipart.eml"), sender=SITI)
    assert refused == {}
    reply = only_reply(smtp_out)

    assert reply["From"] == CARE
    assert reply["To"] == SITI
    assert reply["Subject"] == "Re: Permohonan informasi nomor KPJ"
    # (Django folds a long header after the colon: legal folding white space)
    assert reply["In-Reply-To"].strip() == SITI_MID
    assert reply["References"].strip() == SITI_MID
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["X-Auto-Response-Suppress"] == "All"
    assert reply["Message-ID"].endswith("@kartu.localhost>")
    text = body(reply)
    assert "Data Anda cocok" in text  # Indonesian: the member wrote Indonesian
    for expected in ("12345678901", "10987654321", "PT MAJU JAYA", "PT SINAR ABADI"):
        assert expected in text
    assert "3174055708900003" not in text  # the NIK is never echoed

    # the envelope went to the member, from the care address
    mail_from, rcpt_tos, _raw = smtp_out.messages[0]
    assert (mail_from, rcpt_tos) == (CARE, [SITI])
    inbound = Message.objects.get(direction=Message.Direction.IN)
    assert inbound.external_id == SITI_MID
    assert inbound.meta["subject"] == "Permohonan informasi nomor KPJ"
    assert inbound.meta["auto_reply"] is True
    outbound = Message.objects.get(direction=Message.Direction.OUT)
    assert outbound.external_id == reply["Message-ID"]  # our Message-ID is the platform id
    assert Outbox.objects.get().status == Outbox.Status.SENT


def test_an_english_request_gets_an_english_reply(listener, smtp_out, loaded_registry):
    raw = compose("Hello, my name is Siti Nurhaliza, born in Jakarta on August 17, 1990. "
                  "My NIK is 3174055708900003. I lost my card, what is my KPJ number?",
                  sender="siti@contoh.id", subject="Lost card", message_id="<en-1@contoh.id>")
    send(listener.port, raw, sender="siti@contoh.id")
    reply = only_reply(smtp_out)
    assert reply["Subject"] == "Re: Lost card"
    text = body(reply)
    assert "Your data matches" in text
    assert "12345678901" in text and "PT SINAR ABADI" in text


def test_a_follow_up_threads_and_its_quoted_text_is_ignored(listener, smtp_out,
                                                             loaded_registry):
    send(listener.port, compose("Halo admin, saya lupa nomor KPJ saya.", sender=SITI,
                                subject="Lupa KPJ", message_id="<first@gmail.com>"), sender=SITI)
    first = smtp_out.wait(1)[0]
    assert first["In-Reply-To"].strip() == "<first@gmail.com>"
    instructions = body(first)
    quoted = "\n".join(f"> {line}" for line in instructions.splitlines())
    answer = compose(
        "Nama Siti Nurhaliza, lahir di Jakarta 17 Agustus 1990, NIK 3174055708900003\n\n"
        f"Pada Sen, 3 Jun 2024 pukul 09.01 <{CARE}> menulis:\n{quoted}\n",
        sender=SITI, subject=f"RE: {first['Subject']}", message_id="<second@gmail.com>",
        headers={"In-Reply-To": first["Message-ID"],
                 "References": f"<first@gmail.com> {first['Message-ID']}"})
    send(listener.port, answer, sender=SITI)
    replies = smtp_out.wait(2)
    assert len(replies) == 2
    second = replies[1]
    assert second["Subject"] == "Re: Lupa KPJ"  # no "Re: RE: Re:"
    assert second["In-Reply-To"].strip() == "<second@gmail.com>"
    assert second["References"].split() == ["<first@gmail.com>", first["Message-ID"],
                                             "<second@gmail.com>"]
    assert "12345678901" in body(second)
    stored = Message.objects.get(external_id="<second@gmail.com>")
    assert "menulis" not in stored.text and ">" not in stored.text


def test_a_redelivered_mail_is_stored_once_and_answered_once(listener, smtp_out,
                                                             loaded_registry):
    raw = fixture_bytes("gmail_multipart.eml")
    assert send(listener.port, raw, sender=SITI) == {}
    assert send(listener.port, raw, sender=SITI) == {}  # 250 again: the MTA may stop retrying
    assert len(smtp_out.wait(1)) == 1
    assert len(smtp_out.settle()) == 1
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 1


def test_a_mail_without_message_id_is_deduplicated_by_its_content(listener, smtp_out):
    raw = fixture_bytes("no_message_id.eml")
    send(listener.port, raw, sender="agus.salim@warnet.id")
    send(listener.port, raw, sender="agus.salim@warnet.id")
    assert len(smtp_out.wait(1)) == 1
    assert len(smtp_out.settle()) == 1
    inbound = Message.objects.get(direction=Message.Direction.IN)
    assert inbound.meta["synthetic_message_id"] is True
    reply = smtp_out.parsed()[0]
    assert reply["In-Reply-To"] is None  # nothing to thread on
    assert reply["Subject"] == "Re: kpj"


@pytest.mark.parametrize(("fixture", "reason"), [
    ("auto_reply_ooo.eml", "auto-submitted"),
    ("mailing_list.eml", "mailing-list"),
    ("bounce_dsn.eml", "delivery-report"),
    ("mailer_daemon.eml", "system-sender"),
])
def test_automatic_and_list_mail_is_stored_for_agents_but_never_answered(
        listener, smtp_out, fixture, reason):
    assert send(listener.port, fixture_bytes(fixture), sender="x@contoh.id") == {}
    assert smtp_out.settle() == []
    inbound = Message.objects.get(direction=Message.Direction.IN)
    assert inbound.meta["auto_reply"] is False
    assert inbound.meta["auto_reply_reason"] == reason
    assert inbound.processed_at is not None  # the bot saw it and stayed silent
    assert not Outbox.objects.exists()


def test_null_envelope_sender_is_never_answered(listener, smtp_out):
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=30) as client:
        client.ehlo()
        assert client.mail("<>")[0] == 250
        assert client.rcpt(CARE)[0] == 250
        code, _ = client.data(compose("Halo", message_id="<null-sender@contoh.id>"))
    assert code == 250
    assert smtp_out.settle() == []
    assert Message.objects.get().meta["auto_reply_reason"] == "null-return-path"


def test_mail_for_another_address_is_refused_at_rcpt(listener, smtp_out):
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=30) as client:
        client.ehlo()
        client.mail("member@contoh.id")
        code, text = client.rcpt("someone@elsewhere.example")
        assert code == 550
        assert b"help desk only" in text
        assert client.rcpt("Care+Tiket42@KARTU.localhost")[0] == 250  # tagged care address
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(listener.port, compose("Halo"), rcpt="relay@victim.example")
    assert refused.value.recipients["relay@victim.example"][0] == 550
    assert not Message.objects.exists()


def test_an_oversized_mail_is_refused_with_552_and_a_clear_text(smtp_out):
    small = smtp_listener.start("127.0.0.1:0", max_bytes=100_000)
    try:
        raw = fixture_bytes("huge.eml")
        # announced size (ESMTP SIZE): refused at MAIL FROM
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(small.port, raw)
        assert refused.value.smtp_code == 552
        assert b"too big" in refused.value.smtp_error
        assert b"plain text without attachments" in refused.value.smtp_error
        # not announced: refused after DATA
        with smtplib.SMTP("127.0.0.1", small.port, timeout=30) as client:
            client.ehlo()
            client.mail("member@contoh.id")
            client.rcpt(CARE)
            code, text = client.data(raw)
        assert code == 552
        assert b"limit 0.1 MB" in text and b"tanpa lampiran" in text
    finally:
        small.stop()
    assert not Message.objects.exists()
    assert smtp_out.settle() == []


def test_a_database_failure_answers_451_and_the_retry_succeeds(listener, smtp_out,
                                                               loaded_registry, monkeypatch):
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "receive", broken)
    raw = fixture_bytes("gmail_multipart.eml")
    with pytest.raises(smtplib.SMTPDataError) as failed:
        send(listener.port, raw, sender=SITI)
    assert failed.value.smtp_code == 451  # temporary: the sending MTA keeps it and retries
    assert not Message.objects.exists()
    monkeypatch.undo()
    assert send(listener.port, raw, sender=SITI) == {}  # the retry
    assert "12345678901" in body(only_reply(smtp_out))


def test_auto_replies_are_limited_per_sender(listener, smtp_out):
    sender = "rajin@contoh.id"
    for i in range(6):
        send(listener.port, compose("Halo", sender=sender, message_id=f"<hi-{i}@contoh.id>"),
             sender=sender)
    assert len(smtp_out.wait(5)) == 5
    assert len(smtp_out.settle()) == 5  # the sixth is not answered …
    sixth = Message.objects.get(external_id="<hi-5@contoh.id>")
    assert sixth.meta["auto_reply"] is False  # … but stored for an agent
    assert sixth.meta["auto_reply_reason"] == "rate-limited"
    # a +tag does not make a new sender for the limit; another person is not affected
    send(listener.port, compose("Halo", sender="rajin+2@contoh.id", message_id="<hi-6@c.id>"),
         sender="rajin+2@contoh.id")
    send(listener.port, compose("Halo", sender="lain@contoh.id", message_id="<hi-7@c.id>"),
         sender="lain@contoh.id")
    replies = smtp_out.wait(6)
    assert len(smtp_out.settle()) == 6
    assert replies[-1]["To"] == "lain@contoh.id"


def test_a_mail_from_ourselves_is_not_answered(listener, smtp_out):
    send(listener.port, compose("Halo", sender=CARE, message_id="<self@kartu.localhost>"),
         sender=CARE)
    assert smtp_out.settle() == []


def test_malformed_mail_over_the_wire_is_stored_not_crashed(listener, smtp_out):
    raw = fixture_bytes("malformed_from.eml") + b"\r\n\xff\xfe\x00garbage\r\n"
    assert send(listener.port, raw, sender="x@contoh.id") == {}
    stored = Message.objects.get(direction=Message.Direction.IN)
    assert "3174055708900003" in stored.text
    assert Contact.objects.get().address == "siti.nurhaliza@contoh.id"


def test_sender_address_case_does_not_split_the_contact(listener, smtp_out):
    send(listener.port, compose("Halo", sender="Budi@Contoh.ID", message_id="<c1@c.id>"))
    send(listener.port, compose("Halo lagi", sender="budi@contoh.id", message_id="<c2@c.id>"))
    assert Contact.objects.count() == 1
    assert Contact.objects.get().address == "budi@contoh.id"


def test_a_nik_in_the_subject_is_read_but_never_stored_in_clear_or_echoed(
        listener, smtp_out, loaded_registry):
    raw = compose("Nama saya Siti Nurhaliza, lahir di Jakarta 17 Agustus 1990.", sender=SITI,
                  subject="Permohonan KPJ NIK 3174055708900003", message_id="<subj@gmail.com>")
    send(listener.port, raw, sender=SITI)
    reply = only_reply(smtp_out)
    assert "12345678901" in body(reply)  # the bot still found the NIK
    assert "3174055708900003" not in reply["Subject"]
    assert reply["Subject"] == "Re: Permohonan KPJ NIK [NIK]"
    stored = Message.objects.get(external_id="<subj@gmail.com>")
    assert "3174055708900003" not in str(stored.meta)  # meta is not encrypted
    assert stored.text.startswith("Permohonan KPJ NIK 3174055708900003")  # text is
