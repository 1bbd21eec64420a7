"""The agent inbox: access, list and filters, the conversation page, and every agent action."""

from __future__ import annotations

import io
import itertools
import re

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from kartu.desk import channels, services
from kartu.desk.models import Conversation, Message, Outbox
from kartu.desk.tests.conftest import make_agent
from kartu.registry import services as registry
from kartu.registry.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

INBOX = "/desk/"


_ids = itertools.count()


def say(text: str, sender: str = "user-1", channel: str = "test") -> Conversation:
    message = services.receive(services.Inbound(channel, sender, f"in-{next(_ids)}", text))
    assert message is not None
    return Conversation.objects.get(pk=message.conversation_id)


@pytest.fixture
def agent() -> User:
    return make_agent()


@pytest.fixture
def desk(client: Client, agent: User) -> Client:
    client.force_login(agent)
    return client


def detail_url(conversation: Conversation) -> str:
    return reverse("desk:conversation", args=[conversation.pk])


def listed(html: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'href="/desk/c/(\d+)/"', html)}


SITI_TEXT = ("Selamat pagi, saya Siti Nurhaliza lahir di Jakarta 17 Agustus 1990, "
             "NIK 3174 0557 0890 0003. Mohon info nomor KPJ saya.")
SITI_FORM = {"nik": "3174055708900003", "full_name": "Siti Nurhaliza",
             "birth_place": "Jakarta", "birth_date": "1990-08-17"}


# --- access -----------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_the_login_page(client, adapter):
    conversation = say("halo")
    for url in (INBOX, detail_url(conversation), reverse("desk:nik_lock")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/desk/login/?next=")
    response = client.post(reverse("desk:status", args=[conversation.pk]), {"status": "resolved"})
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.status != Conversation.Status.RESOLVED


def test_signed_in_non_agents_get_403(client, adapter):
    conversation = say("halo")
    client.force_login(User.objects.create_user("tamu", password="x" * 12))
    assert client.get(INBOX).status_code == 403
    assert client.get(detail_url(conversation)).status_code == 403
    response = client.post(reverse("desk:reply", args=[conversation.pk]), {"text": "hai"})
    assert response.status_code == 403
    assert not Message.objects.filter(direction="out", author__isnull=False).exists()


def test_staff_and_agents_get_in(client, agent):
    client.force_login(agent)
    assert client.get(INBOX).status_code == 200
    staff = User.objects.create_user("staf", password="x" * 12, is_staff=True)
    client.force_login(staff)
    assert client.get(INBOX).status_code == 200


def test_login_page_signs_an_agent_in(client, agent):
    agent.set_password("kata-sandi-panjang-1")
    agent.save()
    page = client.get("/desk/login/")
    assert page.status_code == 200
    assert b"Masuk petugas" in page.content
    response = client.post("/desk/login/", {"username": "ani", "password": "kata-sandi-panjang-1",
                                            "next": "/desk/"})
    assert response.status_code == 302 and response["Location"] == "/desk/"
    assert client.get(INBOX).status_code == 200


def test_posts_need_a_csrf_token(agent, adapter):
    conversation = say("halo")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(agent)
    response = strict.post(reverse("desk:status", args=[conversation.pk]), {"status": "resolved"})
    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.OPEN


def test_actions_refuse_get(desk, adapter):
    conversation = say("halo")
    assert desk.get(reverse("desk:status", args=[conversation.pk])).status_code == 405


# --- list ---------------------------------------------------------------------------------------


def test_filters_really_filter(desk, agent, adapter, other_adapter):
    plain = say("halo", sender="a")
    other = say("halo", sender="b", channel="othertest")
    flagged = say("halo", sender="c")
    services.set_flag(flagged, True)
    mine = say("halo", sender="d")
    services.assign(mine, agent)
    theirs = say("halo", sender="e")
    services.assign(theirs, make_agent("budi"))
    done = say("halo", sender="f")
    services.set_status(done, Conversation.Status.RESOLVED)
    waiting = say("min saya mau bicara dengan CS aja", sender="g")
    assert Conversation.objects.get(pk=waiting.pk).status == Conversation.Status.WAITING

    everything = {plain.pk, other.pk, flagged.pk, mine.pk, theirs.pk, done.pk, waiting.pk}
    assert listed(desk.get(INBOX).content.decode()) == everything
    assert listed(desk.get(INBOX, {"channel": "othertest"}).content.decode()) == {other.pk}
    assert listed(desk.get(INBOX, {"status": "resolved"}).content.decode()) == {done.pk}
    assert listed(desk.get(INBOX, {"status": "waiting"}).content.decode()) == {waiting.pk}
    assert listed(desk.get(INBOX, {"status": "open"}).content.decode()) == (
        everything - {done.pk, waiting.pk})
    # the escalation flags the waiting one too
    assert listed(desk.get(INBOX, {"flagged": "on"}).content.decode()) == {flagged.pk, waiting.pk}
    assert listed(desk.get(INBOX, {"mine": "on"}).content.decode()) == {mine.pk}
    assert listed(desk.get(INBOX, {"mine": "on", "status": "resolved"}).content.decode()) == set()


def test_list_is_newest_first_and_keeps_message_text_off(desk, adapter):
    first = say("rahasia-pertama", sender="a")
    second = say("rahasia-kedua", sender="b")
    say("lagi dari a, rahasia-ketiga", sender="a")  # first becomes the latest activity
    html = desk.get(INBOX).content.decode()
    assert html.index(f"/desk/c/{first.pk}/") < html.index(f"/desk/c/{second.pk}/")
    assert "rahasia" not in html
    assert "menunggu petugas" in html or "terbuka" in html


def test_list_queries_do_not_grow_with_conversations(desk, adapter):
    for i in range(3):
        services.assign(say("halo", sender=f"a{i}"), make_agent(f"agen{i}"))
    with CaptureQueriesContext(connection) as few:
        assert desk.get(INBOX).status_code == 200
    for i in range(12):
        services.assign(say("halo", sender=f"b{i}"), make_agent(f"petugas{i}"))
    with CaptureQueriesContext(connection) as many:
        assert desk.get(INBOX).status_code == 200
    assert len(many) == len(few) <= 10


def test_list_is_paginated_by_50(desk, adapter):
    for i in range(52):
        say("halo", sender=f"p{i}")
    first = desk.get(INBOX).content.decode()
    assert len(listed(first)) == 50
    second = desk.get(INBOX, {"page": 2}).content.decode()
    assert len(listed(second)) == 2
    assert not listed(first) & listed(second)
    # the shared pager: a next link on the first page, a previous link on the last
    assert 'rel="next"' in first and 'rel="prev"' not in first and "Halaman 1 dari 2" in first
    assert 'rel="prev"' in second and 'rel="next"' not in second


# --- conversation page --------------------------------------------------------------------------


def test_message_text_is_escaped(desk, adapter):
    conversation = say("<script>alert('kartu')</script> <b>tebal</b>")
    html = desk.get(detail_url(conversation)).content.decode()
    assert "&lt;script&gt;alert(&#x27;kartu&#x27;)&lt;/script&gt;" in html
    assert "<script>alert(" not in html
    assert "&lt;b&gt;tebal&lt;/b&gt;" in html


def test_conversation_shows_messages_extracted_fields_outcome_and_audit(
    desk, adapter, loaded_registry
):
    conversation = say(SITI_TEXT)
    conversation.refresh_from_db()
    assert conversation.person_id is not None
    html = desk.get(detail_url(conversation)).content.decode()
    assert "Siti Nurhaliza lahir di Jakarta" in html  # the member's message
    assert "12345678901" in html  # the bot's answer
    assert "************0003" in html  # extracted NIK, masked
    assert "SITI NURHALIZA" in html and "JAKARTA" in html and "1990-08-17" in html
    assert "<code>verified</code>" in html  # the conversation's last outcome code
    event = AuditEvent.objects.get(outcome="disclosed")
    assert f"<td>{event.pk}</td>" in html  # the audit trail of that person
    # the manual verification form is prefilled from what was extracted
    assert 'value="3174055708900003"' in html and 'value="1990-08-17"' in html


def test_detail_queries_are_bounded(desk, adapter):
    conversation = say("halo")
    for i in range(3):
        say(f"pesan {i}")
    with CaptureQueriesContext(connection) as few:
        desk.get(detail_url(conversation))
    for i in range(10):
        say(f"pesan lagi {i}")
    with CaptureQueriesContext(connection) as many:
        desk.get(detail_url(conversation))
    assert len(many) == len(few)


# --- actions ------------------------------------------------------------------------------------


def test_reply_is_stored_and_sent_through_the_channel(desk, agent, adapter):
    conversation = say("min saya mau bicara dengan CS aja")
    sent_before = len(adapter.sent)
    response = desk.post(reverse("desk:reply", args=[conversation.pk]),
                         {"text": "Halo, saya Ani dari layanan peserta."})
    assert response.status_code == 302
    assert response["Location"].startswith(detail_url(conversation))
    reply = Message.objects.get(direction="out", author=agent)
    assert reply.text == "Halo, saya Ani dari layanan peserta."
    assert reply.outbox.status == Outbox.Status.SENT
    assert len(adapter.sent) == sent_before + 1
    assert adapter.sent[-1].text == "Halo, saya Ani dari layanan peserta."
    page = desk.get(response["Location"]).content.decode()
    assert "Balasan disimpan dan sedang dikirim." in page  # the flash message
    assert "Petugas ani" in page


def test_empty_reply_is_refused(desk, agent, adapter):
    conversation = say("halo")
    response = desk.post(reverse("desk:reply", args=[conversation.pk]), {"text": "   "})
    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode()
    assert not Message.objects.filter(author=agent).exists()


def test_assign_resolve_reopen_and_flag(desk, agent, adapter):
    conversation = say("min saya mau bicara dengan CS aja")
    url = reverse("desk:assign", args=[conversation.pk])
    desk.post(url, {"assignee": agent.pk})
    conversation.refresh_from_db()
    assert conversation.assigned_to == agent
    desk.post(url, {"assignee": ""})
    conversation.refresh_from_db()
    assert conversation.assigned_to is None

    status = reverse("desk:status", args=[conversation.pk])
    response = desk.post(status, {"status": "resolved"})
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.RESOLVED
    desk.post(status, {"status": "open"})
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.OPEN and conversation.escalation == ""
    desk.post(status, {"status": "waiting"})
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WAITING
    desk.post(status, {"status": "nonsense"})
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WAITING

    flag = reverse("desk:flag", args=[conversation.pk])
    desk.post(flag, {})
    conversation.refresh_from_db()
    assert not conversation.flagged
    desk.post(flag, {"flagged": "on"})
    conversation.refresh_from_db()
    assert conversation.flagged


def test_manual_verify_discloses_and_is_audited_with_the_agents_name(
    desk, adapter, loaded_registry
):
    conversation = say("min saya mau bicara dengan CS aja")
    response = desk.post(reverse("desk:verify", args=[conversation.pk]), SITI_FORM)
    assert response.status_code == 302
    page = desk.get(detail_url(conversation)).content.decode()
    assert "12345678901" in page and "10987654321" in page and "PT MAJU JAYA" in page
    event = AuditEvent.objects.get(outcome="disclosed")
    assert event.agent == "ani" and event.requester_ref == "agent:ani"
    conversation.refresh_from_db()
    assert conversation.last_outcome == "agent_verified"
    assert conversation.person_id == event.person_id
    # the agent puts the numbers into the reply box, worded for the member
    prefilled = desk.get(detail_url(conversation), {"prefill": "kpj"}).content.decode()
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", prefilled, re.DOTALL)
    assert textarea is not None
    assert "12345678901" in textarea.group(1) and "Data Anda cocok" in textarea.group(1)


def test_manual_verify_failure_shows_the_neutral_result_and_the_reason(
    desk, adapter, loaded_registry
):
    conversation = say("min saya mau bicara dengan CS aja")
    desk.post(reverse("desk:verify", args=[conversation.pk]),
              {**SITI_FORM, "birth_place": "Bandung"})
    page = desk.get(detail_url(conversation)).content.decode()
    assert "Tidak cocok — tidak ada data yang diungkapkan." in page
    assert "<code>place_mismatch</code>" in page
    assert "12345678901" not in page
    event = AuditEvent.objects.get()
    assert event.outcome == "not_verified" and event.agent == "ani"


def test_manual_verify_shows_limited_clearly(desk, adapter, loaded_registry):
    for _ in range(3):  # three failures lock the NIK
        registry.verify_identity(registry.parse_claim(**{**SITI_FORM, "birth_place": "Bogor"}),
                                 "email:x@contoh.id")
    conversation = say("min saya mau bicara dengan CS aja")
    desk.post(reverse("desk:verify", args=[conversation.pk]), SITI_FORM)
    page = desk.get(detail_url(conversation)).content.decode()
    assert "Dibatasi — tidak ada data yang diungkapkan." in page
    assert "<code>nik_locked</code>" in page
    assert "12345678901" not in page


def test_manual_verify_with_a_malformed_nik_shows_a_field_error(desk, adapter, loaded_registry):
    conversation = say("halo")
    response = desk.post(reverse("desk:verify", args=[conversation.pk]),
                         {**SITI_FORM, "nik": "1234"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="verify-nik_error"' in html and "NIK tidak valid." in html
    assert re.search(r'<input[^>]*name="nik"[^>]*aria-invalid="true"', html)
    assert not AuditEvent.objects.exists()


def test_dead_letters_are_visible_and_can_be_retried(desk, adapter):
    adapter.fail_with = channels.PermanentSendError("recipient unknown")
    conversation = say("halo")
    outbox = Outbox.objects.get()
    assert outbox.status == Outbox.Status.DEAD
    alive = say("halo", sender="lain")  # its reply is dead too, but we make it sent
    Outbox.objects.filter(message__conversation=alive).update(status=Outbox.Status.SENT)

    assert listed(desk.get(INBOX, {"dead": "on"}).content.decode()) == {conversation.pk}
    assert "gagal terkirim" in desk.get(INBOX).content.decode()
    page = desk.get(detail_url(conversation)).content.decode()
    assert "permanent: recipient unknown" in page
    assert reverse("desk:retry", args=[outbox.pk]) in page

    adapter.fail_with = None
    response = desk.post(reverse("desk:retry", args=[outbox.pk]))
    assert response.status_code == 302
    outbox.refresh_from_db()
    assert outbox.status == Outbox.Status.SENT
    assert adapter.sent and adapter.sent[-1].message_id == outbox.message_id
    assert listed(desk.get(INBOX, {"dead": "on"}).content.decode()) == set()


def test_clear_nik_lock(desk, adapter, loaded_registry):
    for _ in range(3):
        registry.verify_identity(registry.parse_claim(**{**SITI_FORM, "birth_place": "Bogor"}),
                                 "email:x@contoh.id")
    assert registry.is_locked(SITI_FORM["nik"])
    conversation = say("halo")
    response = desk.post(reverse("desk:nik_lock"),
                         {"nik": "3174 0557 0890 0003", "conversation": conversation.pk})
    assert response.status_code == 302 and response["Location"] == detail_url(conversation)
    assert not registry.is_locked(SITI_FORM["nik"])
    unlock = AuditEvent.objects.get(action="unlock")
    assert unlock.agent == "ani" and unlock.requester_ref == "agent:ani"
    again = desk.post(reverse("desk:nik_lock"), {"nik": SITI_FORM["nik"]}, follow=True)
    assert "NIK ini tidak sedang terkunci." in again.content.decode()


# --- languages ----------------------------------------------------------------------------------


def test_indonesian_by_default_and_english_on_request(desk, adapter):
    say("halo")
    assert "Percakapan" in desk.get(INBOX).content.decode()
    english = desk.get(INBOX, headers={"accept-language": "en"}).content.decode()
    assert "Conversations" in english and "Kanal" not in english
    desk.cookies["django_language"] = "en"
    by_cookie = desk.get(INBOX).content.decode()
    assert "Conversations" in by_cookie and "Channel" in by_cookie


# --- createagent --------------------------------------------------------------------------------


def test_createagent_creates_the_user_and_the_group(monkeypatch, client):
    monkeypatch.setattr("sys.stdin", io.StringIO("sandi-yang-cukup-panjang\n"))
    out = io.StringIO()
    call_command("createagent", "dewi", "--password-stdin", stdout=out)
    assert 'agent "dewi" created' in out.getvalue()
    user = User.objects.get(username="dewi")
    assert user.groups.filter(name="agents").exists() and not user.is_staff
    assert client.login(username="dewi", password="sandi-yang-cukup-panjang")
    assert client.get(INBOX).status_code == 200
    # again: idempotent, still one group
    monkeypatch.setattr("sys.stdin", io.StringIO("sandi-lain-yang-panjang\n"))
    call_command("createagent", "dewi", "--password-stdin", stdout=io.StringIO())
    assert Group.objects.filter(name="agents").count() == 1


def test_createagent_refuses_a_weak_password(monkeypatch):
    from django.core.management import CommandError

    monkeypatch.setattr("sys.stdin", io.StringIO("123\n"))
    with pytest.raises(CommandError):
        call_command("createagent", "eka", "--password-stdin", stdout=io.StringIO())
    assert not User.objects.filter(username="eka").exists()
