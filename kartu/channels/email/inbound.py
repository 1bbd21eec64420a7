"""Mail in → the desk: parse, decide whether the bot may answer, store (committed on return).

Shared by the SMTP listener and the IMAP poller. Every mail addressed to the care address is
stored — also auto-replies, list mail and delivery reports, so agents can see them — but only
those that ``should_auto_reply`` allows, and at most ``KARTU_LIMITS["email_auto_reply"]``
(default 5 per sender per hour), are marked for the bot to answer::

    meta["auto_reply"] = False
    meta["auto_reply_reason"] = "<reason>"   # parse.* constants, "rate-limited", "too-large"

``meta`` is stored unencrypted, so the subject kept there (for the bot and the reply's
"Re: …") has NIK-, KPJ-, phone- and address-like numbers masked (``kartu.core.logging.redact``);
when that changed it, the original subject becomes the first line of the (encrypted) text, so
the bot still reads a NIK given only in the subject — and the reply never echoes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from kartu.channels.email.parse import ParsedEmail, normalise_address, parse, parse_address
from kartu.core.logging import redact
from kartu.core.ratelimit import Limit, RateLimiter
from kartu.desk import services
from kartu.desk.models import Message

log = logging.getLogger(__name__)

CHANNEL = "email"
RATE_LIMITED = "rate-limited"
TOO_LARGE = "too-large"
REPLY_SCOPE = "email-auto-reply"
DEFAULT_REPLY_LIMIT = (5, 3600)  # auto-replies per sender per hour


def care_address() -> str:
    configured = str(settings.KARTU_CARE_ADDRESS)
    return normalise_address(parse_address(configured)[1] or configured) or configured.lower()


def care_addresses() -> list[str]:
    """Our own addresses: mail from them is never answered."""
    addresses = {care_address()}
    from_address = parse_address(str(getattr(settings, "DEFAULT_FROM_EMAIL", "")))[1]
    if from_address:
        addresses.add(from_address)
    return sorted(a for a in addresses if a)


def own_domain() -> str:
    """The domain of our Message-IDs (the care address's domain)."""
    return care_address().rsplit("@", 1)[-1]


def is_care_address(address: str) -> bool:
    """True for the care address, also with a ``+tag`` (``care+123@…``), in any letter case."""
    candidate = normalise_address(address)
    care = care_address()
    if not candidate or "@" not in care:
        return False
    local, _, domain = candidate.rpartition("@")
    care_local, _, care_domain = care.rpartition("@")
    return domain == care_domain and local.split("+", 1)[0] == care_local


def reply_limit() -> Limit:
    count, period = settings.KARTU_LIMITS.get("email_auto_reply", DEFAULT_REPLY_LIMIT)
    return Limit(int(count), int(period))


def _limit_key(sender: str) -> str:
    local, _, domain = sender.rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def reply_allowed(sender: str) -> bool:
    """Count one automatic answer to ``sender``; False once the per-sender limit is reached."""
    return RateLimiter().hit(REPLY_SCOPE, _limit_key(sender), reply_limit()).allowed


def parse_raw(raw: bytes, envelope_from: str | None = None) -> ParsedEmail:
    return parse(raw, envelope_from=envelope_from, care_addresses=care_addresses(),
                 own_domain=own_domain())


@dataclass(frozen=True)
class Accepted:
    message_pk: int | None  # the desk message; None for a redelivery
    duplicate: bool
    auto_reply: bool
    reason: str = ""


def desk_fields(parsed: ParsedEmail) -> tuple[str, dict[str, Any]]:
    """(text, meta) for the desk: personal data out of the unencrypted meta."""
    meta = parsed.meta()
    text = parsed.text
    safe_subject = redact(parsed.subject)
    if safe_subject != parsed.subject:
        meta["subject"] = safe_subject
        text = f"{parsed.subject}\n\n{text}"
    return text, meta


def is_duplicate(message_id: str) -> bool:
    return Message.objects.filter(channel=CHANNEL, external_id=message_id[:255]).exists()


def accept(parsed: ParsedEmail, *, extra_meta: dict[str, Any] | None = None) -> Accepted:
    """Store one parsed mail in the desk. Commits before returning; raises on database errors
    (the SMTP listener then answers 451 so that the sending server retries)."""
    if is_duplicate(parsed.message_id):  # checked first so a redelivery does not use up the limit
        return Accepted(None, True, False, "duplicate")
    text, meta = desk_fields(parsed)
    if extra_meta:
        meta.update(extra_meta)
    if meta.get("auto_reply") and not reply_allowed(parsed.sender):
        meta["auto_reply"] = False
        meta["auto_reply_reason"] = RATE_LIMITED
    sender = parsed.sender or f"unknown:{parsed.message_id}"
    message = services.receive(services.Inbound(
        channel=CHANNEL, sender=sender, external_id=parsed.message_id, text=text,
        sent_at=parsed.date, meta=meta,
    ))
    if message is None:
        return Accepted(None, True, False, "duplicate")
    reason = "" if meta.get("auto_reply") else str(meta.get("auto_reply_reason", ""))
    log.info("email stored as message %s (auto-reply: %s)", message.pk, reason or "yes")
    return Accepted(message.pk, False, bool(meta.get("auto_reply")), reason)


def accept_raw(raw: bytes, envelope_from: str | None = None) -> Accepted:
    return accept(parse_raw(raw, envelope_from))


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".rstrip("0").rstrip(".")


def too_large_text(size: int, limit: int) -> str:
    """The bounce for a mail over ``KARTU_EMAIL_MAX_BYTES`` (both languages: not yet known)."""
    return (
        f"Maaf, email Anda terlalu besar ({_megabytes(size)} MB; batasnya {_megabytes(limit)} MB) "
        "sehingga tidak kami proses. Silakan kirim ulang permintaan Anda sebagai teks biasa, "
        "tanpa lampiran.\n\n"
        f"Sorry, your email is too large ({_megabytes(size)} MB; the limit is "
        f"{_megabytes(limit)} MB), so we did not process it. Please send your request again as "
        "plain text, without attachments."
    )


def too_large_status(limit: int) -> str:
    """The SMTP 552 answer; the sending server puts it in the bounce the member receives."""
    return (
        f"552 5.3.4 Message too big for the help desk (limit {_megabytes(limit)} MB): please "
        "send your request again as plain text without attachments / Email terlalu besar "
        f"(batas {_megabytes(limit)} MB): kirim ulang sebagai teks biasa tanpa lampiran"
    )


def accept_too_large(headers: bytes, size: int, limit: int) -> Accepted:
    """A mail over the limit that could not be refused (IMAP): store a note for agents, not the
    content, and bounce it to the sender through the outbox when an answer is allowed."""
    parsed = parse_raw(headers)
    if is_duplicate(parsed.message_id):
        return Accepted(None, True, False, "duplicate")
    bounce = parsed.auto_reply and reply_allowed(parsed.sender)
    _text, meta = desk_fields(parsed)
    meta.update(auto_reply=False, auto_reply_reason=TOO_LARGE, size=size)
    sender = parsed.sender or f"unknown:{parsed.message_id}"
    message = services.receive(services.Inbound(
        channel=CHANNEL, sender=sender, external_id=parsed.message_id,
        text=f"[email of {_megabytes(size)} MB over the {_megabytes(limit)} MB limit: "
             "content not retrieved]",
        sent_at=parsed.date, meta=meta,
    ))
    if message is None:
        return Accepted(None, True, False, "duplicate")
    if bounce:
        with transaction.atomic():
            services.add_reply(message.conversation, too_large_text(size, limit),
                               in_reply_to=message)
    return Accepted(message.pk, False, False, TOO_LARGE)
