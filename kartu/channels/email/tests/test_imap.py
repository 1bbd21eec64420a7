"""IMAP polling against a fake server: UID + UIDVALIDITY cursor, each message processed once."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.db import OperationalError

from kartu.channels.email import imap, inbound, jobs
from kartu.channels.email.models import ImapCursor
from kartu.channels.email.tests.conftest import CARE, compose, fixture_bytes
from kartu.desk.models import Message, Outbox

pytestmark = pytest.mark.django_db(transaction=True)

URL = "imaps://care%40agency.id:s%3Acret@imap.agency.id/INBOX"


class FakeImap:
    """Just enough of ``imaplib.IMAP4`` for ``imap.poll``."""

    def __init__(self, messages: dict[int, bytes], uidvalidity: int = 7) -> None:
        self.messages = dict(messages)
        self.uidvalidity = uidvalidity
        self.fetched: list[tuple[int, str]] = []
        self.readonly: bool | None = None
        self.logged_out = False

    def select(self, mailbox: str, readonly: bool = False) -> tuple[str, list[bytes]]:
        assert mailbox == '"INBOX"'
        self.readonly = readonly
        return "OK", [str(len(self.messages)).encode()]

    def response(self, code: str) -> tuple[str, list[bytes | None]]:
        return code, [str(self.uidvalidity).encode()]

    def uid(self, command: str, *args: Any) -> tuple[str, list[Any]]:
        if command == "SEARCH":
            criteria = args[1]
            low = int(criteria.split()[1].split(":")[0])
            found = [u for u in sorted(self.messages) if u >= low]
            if not found and self.messages:  # RFC 9051: "N:*" always matches the highest UID
                found = [max(self.messages)]
            return "OK", [" ".join(map(str, found)).encode()]
        assert command == "FETCH"
        uid, item = int(args[0]), args[1]
        raw = self.messages.get(uid)
        if raw is None:
            return "OK", [None]
        self.fetched.append((uid, item))
        if item == "(RFC822.SIZE)":
            return "OK", [f"1 (UID {uid} RFC822.SIZE {len(raw)})".encode()]
        if item == "(BODY.PEEK[HEADER])":
            head = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            return "OK", [(f"1 (UID {uid} BODY[HEADER] {{{len(head)}}}".encode(), head), b")"]
        assert item == "(BODY.PEEK[])"
        return "OK", [(f"1 (UID {uid} BODY[] {{{len(raw)}}}".encode(), raw), b")"]

    def logout(self) -> tuple[str, list[bytes]]:
        self.logged_out = True
        return "BYE", [b""]


@pytest.fixture
def server(monkeypatch, settings):  # type: ignore[no-untyped-def]
    settings.KARTU_CARE_ADDRESS = CARE
    settings.DEFAULT_FROM_EMAIL = CARE
    settings.KARTU_IMAP_URL = URL
    fake = FakeImap({
        3: compose("Halo, saya lupa nomor KPJ", sender="a@contoh.id", message_id="<a@contoh.id>"),
        5: fixture_bytes("mailing_list.eml"),
    })
    seen: list[imap.ImapConfig] = []

    def connect(config: imap.ImapConfig) -> FakeImap:
        seen.append(config)
        return fake

    monkeypatch.setattr(imap, "connect", connect)
    fake.configs = seen  # type: ignore[attr-defined]
    return fake


def bodies(fake: FakeImap) -> list[int]:
    return [uid for uid, item in fake.fetched if item == "(BODY.PEEK[])"]


def test_new_messages_are_stored_once_and_the_cursor_advances(server):
    first = imap.poll()
    assert (first.fetched, first.stored, first.duplicates) == (2, 2, 0)
    assert server.readonly is True and server.logged_out
    assert server.configs[0].user == "care@agency.id"
    assert server.configs[0].password == "s:cret"
    cursor = ImapCursor.objects.get()
    assert (cursor.mailbox, cursor.uidvalidity, cursor.last_uid) == (
        "care@agency.id@imap.agency.id:993/INBOX", 7, 5)
    assert "s:cret" not in cursor.mailbox
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 2
    # the member is answered (locmem backend), the list mail is not
    assert [m.to for m in mail.outbox] == [["a@contoh.id"]]

    server.fetched.clear()
    again = imap.poll()
    assert (again.fetched, again.stored) == (0, 0)
    assert bodies(server) == []  # "6:*" matched UID 5 again, which is filtered out

    server.messages[9] = compose("Halo lagi", sender="b@contoh.id", message_id="<b@contoh.id>")
    third = imap.poll()
    assert (third.fetched, third.stored) == (1, 1)
    assert bodies(server) == [9]
    assert ImapCursor.objects.get().last_uid == 9


def test_a_new_uidvalidity_restarts_and_relies_on_message_id_dedup(server):
    imap.poll()
    server.uidvalidity = 8
    server.messages = {1: server.messages[3], 2: server.messages[5]}  # renumbered mailbox
    result = imap.poll()
    assert result.restarted
    assert (result.fetched, result.stored, result.duplicates) == (2, 0, 2)
    assert Message.objects.filter(direction=Message.Direction.IN).count() == 2
    cursor = ImapCursor.objects.get()
    assert (cursor.uidvalidity, cursor.last_uid) == (8, 2)


def test_a_database_failure_leaves_the_cursor_before_the_failed_message(server, monkeypatch):
    real = inbound.accept_raw
    calls = {"n": 0}

    def flaky(raw: bytes, envelope_from: str | None = None) -> inbound.Accepted:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OperationalError("database is locked")
        return real(raw, envelope_from)

    monkeypatch.setattr(inbound, "accept_raw", flaky)
    with pytest.raises(OperationalError):
        imap.poll()
    assert ImapCursor.objects.get().last_uid == 3
    monkeypatch.setattr(inbound, "accept_raw", real)
    result = imap.poll()
    assert (result.fetched, result.stored) == (1, 1)
    assert ImapCursor.objects.get().last_uid == 5


def test_an_oversized_message_is_not_downloaded_and_is_bounced(server, settings):
    settings.KARTU_EMAIL_MAX_BYTES = 100_000
    server.messages = {11: fixture_bytes("huge.eml")}
    result = imap.poll()
    assert (result.too_large, result.stored) == (1, 1)
    assert bodies(server) == []  # only the size and the headers were fetched
    note = Message.objects.get(direction=Message.Direction.IN)
    assert note.meta["auto_reply"] is False and note.meta["auto_reply_reason"] == "too-large"
    assert "Semarang" not in note.text  # the content was never read
    (bounce,) = mail.outbox
    assert bounce.to == ["yanti.kusuma@contoh.id"]
    assert "terlalu besar" in bounce.body and "too large" in bounce.body
    assert bounce.extra_headers["In-Reply-To"] == "<huge-0001@contoh.id>"
    assert Outbox.objects.get().status == Outbox.Status.SENT


def test_the_periodic_job_does_nothing_without_an_imap_url(settings, monkeypatch):
    settings.KARTU_IMAP_URL = ""
    monkeypatch.setattr(imap, "connect", lambda config: pytest.fail("must not connect"))
    assert jobs.poll_imap() == 0


def test_the_periodic_job_polls_when_configured(server):
    assert jobs.poll_imap() == 2


@pytest.mark.parametrize(("url", "expected"), [
    ("imaps://u:p@h/INBOX", imap.ImapConfig("h", 993, "u", "p", "INBOX", True, False)),
    ("imaps://u:p@h:1993", imap.ImapConfig("h", 1993, "u", "p", "INBOX", True, False)),
    ("imap://u%40x.id:p%2Fq@h/Layanan%20KPJ?starttls",
     imap.ImapConfig("h", 143, "u@x.id", "p/q", "Layanan KPJ", False, True)),
])
def test_parse_url(url, expected):
    assert imap.parse_url(url) == expected


@pytest.mark.parametrize("url", ["pop3://u:p@h", "imaps:///INBOX", "h:993"])
def test_parse_url_rejects_what_it_cannot_use(url):
    with pytest.raises(ValueError, match="KARTU_IMAP_URL"):
        imap.parse_url(url)


def test_a_login_failure_is_an_imap_error(settings, monkeypatch):
    settings.KARTU_IMAP_URL = URL

    def refuse(config: imap.ImapConfig) -> None:
        raise imap.imaplib.IMAP4.error("[AUTHENTICATIONFAILED] Invalid credentials")

    monkeypatch.setattr(imap, "connect", refuse)
    with pytest.raises(imap.ImapError, match="cannot log in") as raised:
        imap.poll()
    assert "s:cret" not in str(raised.value)
