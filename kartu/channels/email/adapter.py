"""Replies by email, through ``KARTU_SMTP_URL`` (Django's email backend).

A reply threads under the member's mail (``In-Reply-To`` = its Message-ID, ``References`` = its
References + its Message-ID, subject "Re: <original>") and is labelled as an automatic answer
(``Auto-Submitted: auto-replied``, RFC 3834 §5; ``X-Auto-Response-Suppress: All`` asks Exchange
not to answer it with an out-of-office). Our own Message-ID uses the care address's domain, which
is how an answer that comes back to us is recognised as a loop.

Errors: a refused recipient or another 5xx answer → ``PermanentSendError`` (dead letter); no
connection, a timeout, a 4xx answer or a refused login (an operator can fix it) →
``TransientSendError`` (retried with backoff).
"""

from __future__ import annotations

import re
import smtplib
import socket
from typing import Any

from django.core.mail import BadHeaderError, EmailMessage, get_connection, make_msgid

from kartu.channels.email.inbound import CHANNEL, care_address, own_domain
from kartu.channels.email.parse import MAX_REFERENCES, message_ids, normalise_address
from kartu.desk.channels import Outgoing, PermanentSendError, SendResult, TransientSendError

_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|antw|balas|bls)\s*(?:\[\d+\])?\s*:\s*)+",
                           re.IGNORECASE)
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")
DEFAULT_SUBJECT = {"id": "Permintaan nomor KPJ", "en": "Your KPJ number request"}


def reply_subject(original: str, language: str = "id") -> str:
    """"Re: <original>" with exactly one "Re:" (also over "RE:", "Aw:", "Balas:")."""
    base = _REPLY_PREFIX.sub("", _SPACE.sub(" ", original or "")).strip()
    if not base:
        base = DEFAULT_SUBJECT.get(language[:2], DEFAULT_SUBJECT["id"])
    return f"Re: {base}"[:250]


def thread_headers(reply_meta: dict[str, Any]) -> dict[str, str]:
    """In-Reply-To and References for an answer to the message described by ``reply_meta``."""
    parent = next(iter(message_ids(str(reply_meta.get("message_id") or ""))), "")
    refs_meta = reply_meta.get("references") or []
    refs = message_ids(" ".join(str(r) for r in refs_meta) if isinstance(refs_meta, list)
                       else str(refs_meta))
    if not refs and reply_meta.get("in_reply_to"):
        refs = message_ids(str(reply_meta["in_reply_to"]))
    if parent:
        refs = [r for r in refs if r != parent] + [parent]
    if len(refs) > MAX_REFERENCES:
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1):]
    headers: dict[str, str] = {}
    if parent:
        headers["In-Reply-To"] = parent
    if refs:
        headers["References"] = " ".join(refs)
    return headers


def _classify(exc: Exception) -> Exception:
    """The desk's error for an SMTP failure (messages carry codes, never addresses)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            return PermanentSendError(f"recipient refused (SMTP {codes[0]})")
        first = codes[0] if codes else "?"
        return TransientSendError(f"recipient temporarily refused (SMTP {first})")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return TransientSendError(f"SMTP login refused ({exc.smtp_code}): check KARTU_SMTP_URL")
    if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return TransientSendError(f"SMTP connection failed: {type(exc).__name__}")
    if isinstance(exc, smtplib.SMTPResponseException):
        if 500 <= exc.smtp_code < 600:
            return PermanentSendError(f"SMTP {exc.smtp_code} ({type(exc).__name__})")
        return TransientSendError(f"SMTP {exc.smtp_code} ({type(exc).__name__})")
    if isinstance(exc, socket.timeout | TimeoutError | OSError | smtplib.SMTPException):
        return TransientSendError(f"SMTP unavailable: {type(exc).__name__}")
    return TransientSendError(type(exc).__name__)


class EmailAdapter:
    """The desk's adapter for the ``email`` channel."""

    name = CHANNEL

    def build(self, message: Outgoing) -> EmailMessage:
        address = normalise_address(message.address)
        if not address:
            raise PermanentSendError("the contact has no valid email address")
        meta = message.reply_meta or {}
        msgid = make_msgid(idstring="kartu", domain=own_domain())
        headers = {
            "Message-ID": msgid,
            **thread_headers(meta),
            "Auto-Submitted": "auto-replied",
            "X-Auto-Response-Suppress": "All",
        }
        email = EmailMessage(
            subject=reply_subject(str(meta.get("subject") or ""), message.language),
            body=message.text.replace("\r\n", "\n"),
            from_email=care_address(),
            to=[address],
            headers=headers,
        )
        email.encoding = "utf-8"
        return email

    def send(self, message: Outgoing) -> SendResult:
        email = self.build(message)
        msgid = email.extra_headers["Message-ID"]
        try:
            sent = get_connection(fail_silently=False).send_messages([email])
        except BadHeaderError as exc:
            raise PermanentSendError("the reply has an invalid header") from exc
        except (PermanentSendError, TransientSendError):
            raise
        except Exception as exc:
            raise _classify(exc) from exc
        if not sent:
            raise TransientSendError("the email backend sent nothing")
        return SendResult(platform_id=msgid, meta={
            "message_id": msgid,
            "in_reply_to": email.extra_headers.get("In-Reply-To", ""),
            "references": email.extra_headers.get("References", "").split(),
            "subject": email.subject,
        })
