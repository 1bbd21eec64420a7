"""The bot through the whole desk path: receive → process (task) → outbox → adapter."""

from __future__ import annotations

import itertools

import pytest
from django.core import mail

from kartu.desk import channels, services
from kartu.desk.models import Conversation, Message, Outbox
from kartu.desk.tests.conftest import FakeAdapter
from kartu.registry.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


_ids = itertools.count()


def say(text: str, sender: str = "user-1", subject: str | None = None) -> Message | None:
    meta = {"subject": subject} if subject else {}
    return services.receive(services.Inbound("test", sender, f"m{next(_ids)}", text, meta=meta))


def last_reply(adapter: FakeAdapter) -> str:
    return adapter.sent[-1].text


FULL_ID = ("Selamat pagi min, saya Siti Nurhaliza lahir di Jakarta 17 Agustus 1990, "
           "NIK 3174 0557 0890 0003. Mohon info nomor KPJ saya.")


def test_a_full_request_is_answered_with_every_kpj_and_employer(adapter, loaded_registry):
    say(FULL_ID)
    reply = last_reply(adapter)
    assert "10987654321" in reply and "12345678901" in reply
    assert "PT SINAR ABADI" in reply and "PT MAJU JAYA" in reply
    assert "3174055708900003" not in reply  # never echo the NIK
    assert "Data Anda cocok" in reply
    conversation = Conversation.objects.get()
    assert conversation.status == Conversation.Status.RESOLVED
    assert conversation.state == {}
    assert AuditEvent.objects.filter(outcome="disclosed").count() == 1


def test_english_messages_get_english_replies(adapter, loaded_registry):
    say("Hello, my name is Siti Nurhaliza, born in Jakarta on August 17, 1990. "
        "My NIK is 3174055708900003. I lost my card, what is my KPJ number?")
    reply = last_reply(adapter)
    assert "12345678901" in reply
    assert "Your data matches" in reply


def test_missing_fields_are_asked_for_and_kept_across_messages(adapter, loaded_registry):
    say("Halo kak, nama saya Siti Nurhaliza, NIK 3174055708900003")
    first = last_reply(adapter)
    assert "tempat lahir" in first and "tanggal lahir" in first
    assert "nama lengkap" not in first and "NIK (16" not in first
    say("lahir di Jakarta")
    second = last_reply(adapter)
    assert "tanggal lahir" in second and "tempat lahir" not in second
    say("tgl lahir 17-08-1990")
    assert "12345678901" in last_reply(adapter)


def test_a_wrong_guess_gets_the_neutral_answer_then_a_person(adapter, loaded_registry):
    say("Nama Siti Nurhaliza, lahir di Bandung 17 Agustus 1990, NIK 3174055708900003")
    first = last_reply(adapter)
    assert "belum cocok dengan data kami" in first
    assert "Bandung" not in first and "tanggal lahir" in first
    unknown = "Nama Siti Nurhaliza, lahir di Jakarta 17 Agustus 1990, NIK 3174055708900011"
    say(unknown, sender="user-2")
    assert last_reply(adapter) == first  # an unknown NIK reads exactly the same
    say("Nama Siti Nurhaliza, lahir di Bogor 17 Agustus 1990, NIK 3174055708900003")
    assert "diteruskan ke petugas" in last_reply(adapter) or \
        "teruskan ke petugas" in last_reply(adapter)
    conversation = Conversation.objects.get(escalation="repeated_failures")
    assert conversation.status == Conversation.Status.WAITING and conversation.flagged
    # while a person has it, the bot stays quiet
    count = len(adapter.sent)
    say("halo?")
    assert len(adapter.sent) == count


def test_asking_for_a_person_escalates(adapter, loaded_registry):
    say("min saya mau bicara dengan CS aja")
    assert "petugas" in last_reply(adapter)
    assert Conversation.objects.get().escalation == "requested"


def test_greeting_thanks_and_off_topic(adapter, loaded_registry):
    say("Assalamualaikum")
    assert "NIK" in last_reply(adapter)
    say("terima kasih")
    assert last_reply(adapter).startswith("Sama-sama")
    say("berapa harga tiket pesawat ke Bali?")
    assert "khusus untuk membantu" in last_reply(adapter)
    say("jual pulsa murah")
    assert Conversation.objects.get().escalation == "not_understood"


def test_a_locked_nik_is_handed_over(adapter, loaded_registry):
    wrong = "Nama Siti Nurhaliza, lahir di Medan 17 Agustus 1990, NIK 3174055708900003"
    for sender in ("a", "b", "c"):
        say(wrong, sender=sender)
    say(FULL_ID, sender="d")
    assert "sementara kami hentikan" in last_reply(adapter)
    assert Conversation.objects.get(escalation="nik_locked")


def test_a_redelivered_message_is_stored_once_and_answered_once(adapter, loaded_registry):
    event = services.Inbound("test", "user-9", "platform-id-1", FULL_ID)
    assert services.receive(event) is not None
    assert services.receive(event) is None
    assert Message.objects.filter(direction="in").count() == 1
    assert len(adapter.sent) == 1 and Outbox.objects.count() == 1


def test_processing_twice_creates_no_second_reply(adapter, loaded_registry):
    message = services.receive(services.Inbound("test", "u", "p-2", FULL_ID), enqueue=False)
    assert services.process_inbound(message.pk) == "disclosed"
    assert services.process_inbound(message.pk) == "already processed"
    assert Outbox.objects.filter(in_reply_to=message).count() == 1


def test_failed_sends_retry_with_backoff_then_become_dead_letters(adapter, loaded_registry):
    adapter.fail_with = channels.TransientSendError("platform timeout")
    say(FULL_ID)
    outbox = Outbox.objects.get()
    assert outbox.status == Outbox.Status.PENDING and outbox.attempts == 1
    assert "platform timeout" in outbox.last_error
    assert services.deliver(outbox.pk) == "not claimed"  # not due yet (backoff)
    Outbox.objects.filter(pk=outbox.pk).update(attempts=services.MAX_ATTEMPTS,
                                               next_attempt_at=outbox.created_at)
    assert services.deliver(outbox.pk) == "dead"
    assert Conversation.objects.get().flagged
    adapter.fail_with = None
    assert services.retry_dead(outbox.pk)
    assert Outbox.objects.get().status == Outbox.Status.SENT


def test_a_permanent_failure_is_a_dead_letter_at_once(adapter, loaded_registry):
    adapter.fail_with = channels.PermanentSendError("recipient blocked us")
    say(FULL_ID)
    assert Outbox.objects.get().status == Outbox.Status.DEAD


def test_an_expired_lease_is_reclaimed_by_another_worker(adapter, loaded_registry):
    from datetime import timedelta

    from django.utils import timezone

    message = services.receive(services.Inbound("test", "u", "p-3", FULL_ID), enqueue=False)
    services.process_inbound(message.pk)  # (the immediate test backend also delivers it)
    adapter.sent.clear()
    outbox = Outbox.objects.get()
    # a worker claimed it and died: the lease is still running, nobody else may send
    Outbox.objects.filter(pk=outbox.pk).update(
        status=Outbox.Status.SENDING, claimed_until=timezone.now() + timedelta(seconds=30))
    assert services.deliver(outbox.pk) == "not claimed"
    Outbox.objects.filter(pk=outbox.pk).update(claimed_until=timezone.now() - timedelta(1))
    assert services.due_outbox_ids() == [outbox.pk]
    assert services.deliver(outbox.pk) == "sent"
    assert len(adapter.sent) == 1


def test_message_text_and_contact_are_stored_encrypted(adapter, loaded_registry):
    from django.db import connection

    say(FULL_ID, sender="siti@contoh.id")
    with connection.cursor() as cur:
        for table in ("desk_message", "desk_contact", "desk_conversation"):
            cur.execute(f"SELECT * FROM {table}")
            dump = repr(cur.fetchall())
            assert "3174" not in dump and "Nurhaliza" not in dump and "siti@" not in dump


def test_confirm_policy_sends_a_code_to_the_email_on_file_first(adapter, loaded_registry,
                                                               settings):
    settings.KARTU_DISCLOSURE_POLICY = "direct,test=confirm"
    say(FULL_ID)
    reply = last_reply(adapter)
    assert "12345678901" not in reply and "s***@contoh.id" in reply
    (code_mail,) = mail.outbox
    assert code_mail.to == ["siti@contoh.id"]
    code = "".join(ch for ch in code_mail.body.split(":")[1][:8] if ch.isdigit())
    say("kodenya 000000" if code != "000000" else "kodenya 111111")
    assert "salah" in last_reply(adapter)
    say(f"kodenya {code}")
    assert "12345678901" in last_reply(adapter)
    assert AuditEvent.objects.filter(outcome="disclosed", reason="code_confirmed").count() == 1


def test_a_stranger_cannot_void_the_code_the_owner_asked_for(adapter, loaded_registry,
                                                             settings):
    settings.KARTU_DISCLOSURE_POLICY = "direct,test=confirm"
    say(FULL_ID, sender="owner")
    (code_mail,) = mail.outbox
    code = "".join(ch for ch in code_mail.body.split(":")[1][:8] if ch.isdigit())
    # Someone else who knows Siti's details asks too, and guesses: a code of their own, with
    # its own wrong tries; the owner's code still works.
    say(FULL_ID, sender="stranger")
    assert len(mail.outbox) == 2
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        say(f"kodenya {wrong}", sender="stranger")
    say(f"kodenya {code}", sender="stranger")  # the owner's code is not the stranger's
    assert "12345678901" not in last_reply(adapter)
    say(f"kodenya {code}", sender="owner")
    assert "12345678901" in last_reply(adapter)


def test_bad_input_never_crashes(adapter, loaded_registry):
    for text in ("", "\x00\x01\x02", "<script>alert(1)</script>", "'; DROP TABLE x; --",
                 "a" * 100_000, "\ud800 broken surrogate"):
        say(text)
    assert Message.objects.filter(direction="in", processed_at__isnull=True).count() == 0
