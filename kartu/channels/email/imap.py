"""Optional IMAP polling, for agencies whose care mailbox lives on another server.

``KARTU_IMAP_URL=imaps://user:password@host:993/INBOX`` (``imap://…?starttls`` for STARTTLS on
143). The periodic job ``email.poll_imap`` calls ``poll()``: it selects the mailbox read-only
(messages are fetched with ``BODY.PEEK``, so they stay unread for people using the mailbox),
asks for UIDs above the remembered one, and stores each message through ``inbound.accept`` —
advancing ``ImapCursor.last_uid`` only after that message committed. A new UIDVALIDITY restarts
from the first message; the Message-ID unique constraint keeps every message processed once.

A message over ``KARTU_EMAIL_MAX_BYTES`` is not downloaded: its headers are, a note is stored for
agents and the sender gets a short bounce (when an automatic answer to them is allowed).
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.utils import timezone

from kartu.channels.email import inbound
from kartu.channels.email.models import ImapCursor

log = logging.getLogger(__name__)

TIMEOUT = 30  # seconds per IMAP operation
_SIZE = re.compile(rb"RFC822\.SIZE\s+(\d+)", re.IGNORECASE)
_UIDVALIDITY = re.compile(rb"UIDVALIDITY\s+(\d+)", re.IGNORECASE)


class ImapError(Exception):
    """The IMAP server refused or failed a command."""


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    user: str
    password: str
    mailbox: str = "INBOX"
    ssl: bool = True
    starttls: bool = False

    @property
    def key(self) -> str:
        """The mailbox's identity for its cursor (without the password)."""
        return f"{self.user}@{self.host}:{self.port}/{self.mailbox}"[:255]


def parse_url(url: str) -> ImapConfig:
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps"):
        raise ValueError("KARTU_IMAP_URL must start with imaps:// or imap://")
    if not parts.hostname:
        raise ValueError("KARTU_IMAP_URL has no host")
    secure = parts.scheme == "imaps"
    return ImapConfig(
        host=parts.hostname,
        port=parts.port or (993 if secure else 143),
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
        ssl=secure,
        starttls=not secure and "starttls" in parts.query.lower(),
    )


def connect(config: ImapConfig) -> Any:
    """A logged-in ``imaplib`` client (tests replace this function with a fake)."""
    context = ssl.create_default_context()
    client: imaplib.IMAP4
    if config.ssl:
        client = imaplib.IMAP4_SSL(config.host, config.port, ssl_context=context,
                                   timeout=TIMEOUT)
    else:
        client = imaplib.IMAP4(config.host, config.port, timeout=TIMEOUT)
        if config.starttls:
            client.starttls(context)
    client.login(config.user, config.password)
    return client


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(result: tuple[str, Any], what: str) -> Any:
    typ, data = result
    if typ != "OK":
        raise ImapError(f"IMAP {what} failed: {typ}")
    return data


def _uidvalidity(client: Any, mailbox: str) -> int:
    _typ, data = client.response("UIDVALIDITY")
    for item in data or []:
        if item:
            try:
                return int(item)
            except (TypeError, ValueError):
                pass
    data = _ok(client.status(_quote(mailbox), "(UIDVALIDITY)"), "STATUS")
    found = _UIDVALIDITY.search(b" ".join(d for d in data if isinstance(d, bytes)))
    if not found:
        raise ImapError("the server reported no UIDVALIDITY")
    return int(found.group(1))


def _fetch(client: Any, uid: int, item: str) -> bytes | None:
    data = _ok(client.uid("FETCH", str(uid), f"({item})"), "FETCH")
    for part in data or []:
        if isinstance(part, tuple) and len(part) >= 2 and isinstance(part[1], bytes):
            return part[1]
    return None


def _size(client: Any, uid: int) -> int | None:
    data = _ok(client.uid("FETCH", str(uid), "(RFC822.SIZE)"), "FETCH")
    for part in data or []:
        head = part[0] if isinstance(part, tuple) else part
        if isinstance(head, bytes):
            found = _SIZE.search(head)
            if found:
                return int(found.group(1))
    return None


@dataclass
class PollResult:
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    too_large: int = 0
    restarted: bool = False  # UIDVALIDITY changed


def poll(url: str | None = None, *, batch: int = 200) -> PollResult:
    """Fetch and store up to ``batch`` new messages. Database errors propagate (the cursor stays
    before the message that failed, so the next poll retries it)."""
    config = parse_url(url or settings.KARTU_IMAP_URL)
    limit = int(settings.KARTU_EMAIL_MAX_BYTES)
    result = PollResult()
    try:
        client = connect(config)
    except (imaplib.IMAP4.error, OSError) as exc:
        raise ImapError(f"cannot log in to {config.host}:{config.port}: "
                        f"{type(exc).__name__}") from exc
    try:
        _ok(client.select(_quote(config.mailbox), readonly=True), "SELECT")
        validity = _uidvalidity(client, config.mailbox)
        cursor, _ = ImapCursor.objects.get_or_create(mailbox=config.key,
                                                     defaults={"uidvalidity": validity})
        last = cursor.last_uid
        if cursor.uidvalidity != validity:
            log.warning("IMAP UIDVALIDITY of %s changed: reading the mailbox again", config.key)
            ImapCursor.objects.filter(pk=cursor.pk).update(
                uidvalidity=validity, last_uid=0, updated_at=timezone.now())
            last, result.restarted = 0, True
        data = _ok(client.uid("SEARCH", None, f"UID {last + 1}:*"), "SEARCH")
        found = b" ".join(d for d in data or [] if isinstance(d, bytes)).split()
        # "N:*" also matches the highest UID when it is below N: filter.
        uids = sorted({int(u) for u in found if u.isdigit() and int(u) > last})[:batch]
        for uid in uids:
            _process(client, uid, limit, result)
            ImapCursor.objects.filter(pk=cursor.pk, uidvalidity=validity,
                                      last_uid__lt=uid).update(last_uid=uid,
                                                               updated_at=timezone.now())
    except (imaplib.IMAP4.error, OSError) as exc:
        raise ImapError(f"IMAP polling of {config.host} failed: {type(exc).__name__}") from exc
    finally:
        try:
            client.logout()
        except Exception:  # already disconnected
            log.debug("IMAP logout failed", exc_info=True)
    return result


def _process(client: Any, uid: int, limit: int, result: PollResult) -> None:
    size = _size(client, uid)
    if size is not None and size > limit:
        headers = _fetch(client, uid, "BODY.PEEK[HEADER]")
        if headers is None:
            return  # expunged meanwhile
        result.fetched += 1
        accepted = inbound.accept_too_large(headers, size, limit)
        result.too_large += 1
    else:
        raw = _fetch(client, uid, "BODY.PEEK[]")
        if raw is None:
            return
        result.fetched += 1
        if len(raw) > limit:  # the server under-reported the size
            accepted = inbound.accept_too_large(raw.split(b"\r\n\r\n", 1)[0], len(raw), limit)
            result.too_large += 1
        else:
            accepted = inbound.accept_raw(raw)
    if accepted.duplicate:
        result.duplicates += 1
    else:
        result.stored += 1
