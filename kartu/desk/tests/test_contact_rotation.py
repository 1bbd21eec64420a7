"""A blind-index rotation keeps every sender's contact: found under every live index key,
re-indexed with the people, and a duplicate made meanwhile merged into the older contact."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User

from conftest import add_active_key
from kartu.core import crypto
from kartu.desk import services
from kartu.desk.models import CONTACT_AAD, Contact, Conversation, Message, Outbox
from kartu.registry import keys

pytestmark = [pytest.mark.django_db, pytest.mark.backends]

MEMBER = "siti@contoh.id"
START = datetime(2025, 1, 1, tzinfo=UTC)
_ids = itertools.count()
_minutes = itertools.count()


def say(text: str, sender: str = MEMBER, channel: str = "email") -> Message:
    """An inbound message, each a minute after the one before (a history has an order)."""
    message = services.receive(services.Inbound(
        channel, sender, f"<m{next(_ids)}@contoh.id>", text,
        START + timedelta(minutes=next(_minutes))), enqueue=False)
    assert message is not None
    return message


def contacts_of(sender: str = MEMBER, channel: str = "email") -> list[Contact]:
    ring = crypto.keyring()
    return [c for c in Contact.objects.filter(channel=channel).order_by("pk")
            if crypto.decrypt(c.address_cipher, CONTACT_AAD, ring) == sender]


def history(sender: str = MEMBER, channel: str = "email") -> list[str]:
    """Every message of the sender, in the order the desk and the web chat show them."""
    return [m.text for m in Message.objects.filter(
        conversation__contact__in=contacts_of(sender, channel)).order_by("sent_at", "pk")]


def legacy_contact(sender: str = MEMBER, channel: str = "email", *,
                   kid: str | None = None) -> Contact:
    """A contact as the code before this fix made it: under the active index key only, without
    the key id (e.g. a returning sender not found under the old key mid-rotation)."""
    index = crypto.blind_index(f"{channel}:{sender}", kid)
    return Contact.objects.create(channel=channel, address_index=index,
                                  address_cipher=crypto.encrypt(sender, CONTACT_AAD))


def assert_indexed_under_the_active_key() -> None:
    ring = crypto.keyring()
    for c in Contact.objects.all():
        address = crypto.decrypt(c.address_cipher, CONTACT_AAD, ring)
        assert c.address_index == crypto.blind_index(f"{c.channel}:{address}", ring=ring)
        assert c.address_index_kid == ring.active_index


# --- lookups under every live key --------------------------------------------------------------


def test_a_returning_sender_keeps_their_contact_while_an_old_index_key_is_live(own_keys_file):
    first = say("halo")
    add_active_key(own_keys_file, "index")
    second = say("masih saya")
    assert len(contacts_of()) == 1
    assert second.conversation_id == first.conversation_id
    assert history() == ["halo", "masih saya"]


def test_the_lookup_takes_the_older_of_two_contacts(own_keys_file):
    older = say("halo").conversation.contact
    add_active_key(own_keys_file, "index")
    legacy_contact()  # a duplicate under the new key, made before this fix
    assert say("lagi").conversation.contact == older


def test_the_web_chat_keeps_its_history_through_an_index_rotation(client, own_keys_file):
    from kartu.accounts.altcha import solved_payload

    def post(text: str, client_id: str, **extra: str) -> list[str]:
        response = client.post("/tanya-kpj/", {"text": text, "client_id": client_id, **extra},
                               HTTP_ACCEPT="application/json")
        assert response.status_code == 200, response.json()
        return [m["text"] for m in response.json()["messages"] if m["direction"] == "in"]

    def poll() -> list[str]:
        return [m["text"] for m in client.get("/tanya-kpj/pesan").json()["messages"]
                if m["direction"] == "in"]

    assert post("halo", "a", altcha=solved_payload()) == ["halo"]
    add_active_key(own_keys_file, "index")
    assert poll() == ["halo"]  # mid-rotation: found under the old key
    assert post("masih ada?", "b") == ["halo", "masih ada?"]
    keys.rotate(field=False, log=lambda _: None, wait=False)
    assert len(crypto.keyring().index_keys) == 1
    assert poll() == ["halo", "masih ada?"]  # the contact moved to the new key
    assert post("terima kasih", "c") == ["halo", "masih ada?", "terima kasih"]
    assert Contact.objects.count() == 1 and Conversation.objects.count() == 1


# --- the rotation re-indexes contacts ----------------------------------------------------------


def test_an_index_rotation_reindexes_every_contact(own_keys_file):
    say("halo")
    say("halo juga", sender="budi@contoh.id")
    say("pesan WA", sender="+6281234567890", channel="whatsapp")
    Contact.objects.filter(channel="whatsapp").update(address_index_kid="")  # before key ids
    pks = sorted(Contact.objects.values_list("pk", flat=True))
    report = keys.rotate(field=False, log=lambda _: None, wait=False)
    assert len(crypto.keyring().index_keys) == 1  # the old key is gone
    assert (report.contacts_reindexed, report.contacts_merged) == (3, 0)
    assert "3 contacts" in report.text()
    assert_indexed_under_the_active_key()
    # returning senders are found under the new key alone
    say("kembali")
    say("kembali juga", sender="+6281234567890", channel="whatsapp")
    assert sorted(Contact.objects.values_list("pk", flat=True)) == pks
    assert history() == ["halo", "kembali"]
    # idempotent: a second pass has nothing to do
    assert keys.reindex_contacts(crypto.keyring()) == (0, 0)


# --- duplicates are merged ---------------------------------------------------------------------


def test_a_duplicate_is_merged_into_the_older_contact(own_keys_file):
    agent = User.objects.create_user("ani")
    old = say("kasus lama").conversation
    services.set_status(old, Conversation.Status.RESOLVED)
    first = say("halo")
    kept = first.conversation.contact
    with_reply = services.add_reply(first.conversation, "balasan 1", in_reply_to=first)
    conversation = Conversation.objects.get(pk=first.conversation_id)
    conversation.state = {"full_name": "Siti Nurhaliza"}
    conversation.save()
    add_active_key(own_keys_file, "index")
    # before this fix, a returning sender got a new contact under the new key
    duplicate = legacy_contact()
    split = Conversation.objects.create(contact=duplicate, channel="email", flagged=True,
                                        assigned_to=agent, failures=2)
    split.state = {"birth_place": "Jakarta"}
    split.save()
    late = Message(conversation=split, channel="email", direction=Message.Direction.IN,
                   external_id="<late@contoh.id>", sent_at=START + timedelta(days=1))
    late.text = "saya lahir di Jakarta"
    late.save()
    late_reply = services.add_reply(split, "balasan 2", in_reply_to=late)

    assert keys.reindex_contacts(crypto.keyring()) == (1, 1)

    assert contacts_of() == [kept]
    assert not Contact.objects.filter(pk=duplicate.pk).exists()
    assert_indexed_under_the_active_key()
    # one open conversation holds the whole case, the resolved one stays as it was
    conversations = list(Conversation.objects.order_by("pk"))
    assert [c.pk for c in conversations] == [old.pk, first.conversation_id]
    merged = conversations[1]
    assert merged.contact == kept and merged.status == Conversation.Status.OPEN
    assert merged.state == {"full_name": "Siti Nurhaliza", "birth_place": "Jakarta"}
    assert merged.flagged and merged.assigned_to == agent and merged.failures == 2
    assert [m.text for m in merged.messages.order_by("pk")] == [
        "halo", "balasan 1", "saya lahir di Jakarta", "balasan 2"]
    # messages and their outbox rows moved, not copied
    assert Outbox.objects.get(pk=late_reply.pk).message.conversation == merged
    assert Outbox.objects.get(pk=with_reply.pk).in_reply_to == first
    assert Message.objects.count() == 5
    # the next message joins the same conversation
    assert say("terima kasih").conversation_id == merged.pk
    # idempotent: nothing left to do
    assert keys.reindex_contacts(crypto.keyring()) == (0, 0)


def test_the_older_contact_is_kept_whichever_index_it_is_under(own_keys_file, monkeypatch):
    old_ring = add_active_key(own_keys_file, "index")
    older = say("halo").conversation.contact  # under the new key
    # A process that has not re-read the key file yet knows only the old key: it does not
    # find the contact and makes one under the old key (the race the rotation's wait narrows).
    monkeypatch.setattr(crypto, "keyring", lambda: old_ring)
    newer = say("halo lagi").conversation.contact
    monkeypatch.undo()
    assert newer != older and newer.address_index_kid == old_ring.active_index
    assert keys.reindex_contacts(crypto.keyring()) == (0, 1)
    assert contacts_of() == [older]
    assert_indexed_under_the_active_key()
    assert Conversation.objects.get().contact == older
    assert history() == ["halo", "halo lagi"]


def test_a_merge_is_all_or_nothing(own_keys_file, monkeypatch):
    kept = say("halo").conversation.contact
    add_active_key(own_keys_file, "index")
    duplicate = legacy_contact()
    Conversation.objects.create(contact=duplicate, channel="email")
    before = sorted(Conversation.objects.values_list("pk", "contact_id"))

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "_fold_open_conversations", fail)
    with pytest.raises(RuntimeError):
        keys.reindex_contacts(crypto.keyring())
    assert sorted(Conversation.objects.values_list("pk", "contact_id")) == before
    assert contacts_of() == [kept, duplicate]
    monkeypatch.undo()
    assert keys.reindex_contacts(crypto.keyring()) == (1, 1)  # run again: finished
    assert contacts_of() == [kept] and Conversation.objects.get().contact == kept


# --- a member keeps writing through a whole rotation -------------------------------------------


def test_a_member_writing_through_a_whole_rotation_keeps_one_contact_and_one_history(
    own_keys_file, monkeypatch
):
    for n in range(4):  # other senders, so the re-index takes several batches
        say("halo", sender=f"orang{n}@contoh.id")
    member = say("1 sebelum").conversation.contact
    for n in range(4, 6):
        say("halo", sender=f"orang{n}@contoh.id")
    old_ring = add_active_key(own_keys_file, "index")
    say("2 kunci baru ditambahkan")
    ring = crypto.keyring()
    batches = 0
    expected = ["1 sebelum", "2 kunci baru ditambahkan"]
    while keys.reindex_contacts_batch(ring, batch=2) is not None:
        batches += 1
        expected.append(f"{len(expected) + 1} di antara batch")
        say(expected[-1])
        if batches == 3:  # the member's contact has moved by now
            assert Contact.objects.get(pk=member.pk).address_index_kid == ring.active_index
            # a process that has not re-read the key file yet makes an old-key duplicate
            monkeypatch.setattr(crypto, "keyring", lambda: old_ring)
            expected.append(f"{len(expected) + 1} dari proses lama")
            say(expected[-1])
            monkeypatch.undo()
            assert len(contacts_of()) == 2
    assert batches >= 4
    report = keys.rotate(field=False, log=lambda _: None, wait=False)  # finishes the rotation
    assert list(crypto.keyring().index_keys) == [ring.active_index]
    assert report.contacts_merged == 0  # the last batches merged the duplicate already
    expected.append(f"{len(expected) + 1} sesudah")
    say(expected[-1])

    assert contacts_of() == [member]
    assert Contact.objects.count() == 7
    assert_indexed_under_the_active_key()
    conversation = Conversation.objects.get(contact=member)  # exactly one, continuous
    assert [m.text for m in conversation.messages.order_by("sent_at", "pk")] == expected
    assert history() == expected


@pytest.mark.django_db(transaction=True)
def test_a_member_writing_during_a_concurrent_rotation_keeps_one_contact(own_keys_file):
    """The same, with the member's messages arriving from another thread (its own database
    connection) while ``kartu keys rotate --index`` runs batch by batch."""
    import threading

    from django.db import connection

    for n in range(30):
        say("halo", sender=f"orang{n}@contoh.id")
    member = say("sebelum").conversation.contact
    add_active_key(own_keys_file, "index")
    rotating, rotated = threading.Event(), threading.Event()
    written: list[str] = []
    during: list[str] = []  # written before the rotation was over
    errors: list[BaseException] = []

    def member_writes() -> None:
        try:
            rotating.wait(5)
            while not rotated.is_set() and len(written) < 200:
                written.append(f"selama {len(written)}")
                say(written[-1])
                if not rotated.is_set():
                    during.append(written[-1])
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    writer = threading.Thread(target=member_writes)
    writer.start()
    rotating.set()
    try:
        keys.rotate(field=False, log=lambda _: None, wait=False, batch=1)
    finally:
        rotated.set()
        writer.join(60)
    assert not errors and not writer.is_alive()
    assert during  # the member did write while the contacts were re-indexed
    say("sesudah")
    assert list(crypto.keyring().index_keys) == [crypto.keyring().active_index]
    assert contacts_of() == [member] and Contact.objects.count() == 31
    assert_indexed_under_the_active_key()
    conversation = Conversation.objects.get(contact=member)
    assert [m.text for m in conversation.messages.order_by("sent_at", "pk")] == [
        "sebelum", *written, "sesudah"]
