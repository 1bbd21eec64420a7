"""One-time codes: short-lived, single-use, rate-limited, stored hashed.

Used by the desk's ``confirm`` disclosure policy and by account linking: the code goes to the
email or phone *on file in the registry*, so knowing someone's NIK and birth date is not enough.

A code, its wrong tries and its per-hour limit belong to a ``subject``: what the code proves
control of *for whom* (account linking uses the person and the claiming account). Several
subjects may send to one contact; ``recipient`` then caps what that contact receives in all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from kartu.core import senders
from kartu.core.models import OneTimeCode
from kartu.core.ratelimit import Limit, RateLimiter

TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
ISSUE_LIMIT = Limit(3, 3600)  # codes per subject per hour
RECIPIENT_LIMIT = Limit(3, 3600)  # codes per recipient per hour, whichever subject asked
#: Codes one requester (an account, a chat sender) may have sent to a person's contact per hour,
#: of the RECIPIENT_LIMIT that reach it whoever asks: one stranger cannot use up the owner's hour.
REQUESTER_LIMIT = Limit(2, 3600)


def person_recipient(person_id: int) -> str:
    """The recipient of codes sent to a person's contact on file, for every purpose (account
    linking, the bot): one per-person budget, :data:`RECIPIENT_LIMIT`."""
    return f"person:{person_id}"
_limiter = RateLimiter()


@dataclass(frozen=True)
class Issued:
    sent: bool
    destination: str  # "email" / "sms" / ""
    masked: str  # where it went, masked for display ("s***@contoh.id", "+62812****890")
    limited: bool = False


def _hash(code: str, purpose: str, subject: str) -> str:
    key = hashlib.sha256(f"kartu-otp:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, f"{purpose}\x00{subject}\x00{code}".encode(), "sha256").hexdigest()


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(number: str) -> str:
    return f"{number[:6]}****{number[-3:]}" if len(number) > 9 else "****"


def _allowed(purpose: str, subject: str, recipient: str, subject_limit: Limit) -> bool:
    """Count one code against its subject's limit and, when it passes, its recipient's.

    The recipient is counted only for codes its subject may send, so one subject hammering its
    own limit uses up no more of the recipient's budget than its own limit allows. A code the
    recipient's limit refuses is taken back from the subject's count (nothing was sent)."""
    now = time.time()
    if not _limiter.hit("otp-issue", f"{purpose}:{subject}", subject_limit, now).allowed:
        return False
    # The recipient's budget is shared by every purpose (account linking and the bot both send
    # to a person's contact on file): at most RECIPIENT_LIMIT codes an hour, whoever asks.
    if recipient and not _limiter.hit("otp-recipient", recipient, RECIPIENT_LIMIT,
                                      now).allowed:
        _limiter.undo("otp-issue", f"{purpose}:{subject}", subject_limit, now)
        return False
    return True


def issue(purpose: str, subject: str, *, email: str = "", phone: str = "",
          language: str = "id", recipient: str = "",
          subject_limit: Limit = ISSUE_LIMIT) -> Issued:
    """Send a new code to ``email`` (preferred) or ``phone``. Older codes *of this subject* stop
    working; codes of other subjects are untouched.

    ``subject_limit`` codes per subject per hour. ``recipient`` names whoever receives the code
    when several subjects send to the same contact (a person's email on file, claimed by several
    accounts): at most :data:`RECIPIENT_LIMIT` codes reach it per hour, whoever asks."""
    from django.utils import translation

    if not (email or phone):
        return Issued(False, "", "")
    if not _allowed(purpose, subject, recipient, subject_limit):
        return Issued(False, "", "", limited=True)
    code = f"{secrets.randbelow(10**6):06d}"
    destination = "email" if email else "sms"
    with transaction.atomic():
        OneTimeCode.objects.filter(purpose=purpose, subject=subject, used_at__isnull=True)\
            .update(used_at=timezone.now())
        OneTimeCode.objects.create(purpose=purpose, subject=subject,
                                   code_hash=_hash(code, purpose, subject),
                                   destination=destination, expires_at=timezone.now() + TTL)
    with translation.override(language):
        body = _("Kode verifikasi kartu Anda: %(code)s. Berlaku 10 menit. Jangan berikan kode "
                 "ini kepada siapa pun, termasuk petugas.") % {"code": code}
        if email:
            senders.send_email(email, _("Kode verifikasi"), body)
            return Issued(True, "email", mask_email(email))
        senders.send_sms(phone, body)
        return Issued(True, "sms", mask_phone(phone))


def verify(purpose: str, subject: str, code: str) -> bool:
    """True once for the right, unexpired code; wrong tries count, and 5 wrong tries void it."""
    code = "".join(ch for ch in code if ch.isdigit())
    with transaction.atomic():
        otp = (OneTimeCode.objects.select_for_update()
               .filter(purpose=purpose, subject=subject, used_at__isnull=True,
                       expires_at__gt=timezone.now())
               .order_by("-created_at").first())
        if otp is None:
            return False
        if hmac.compare_digest(otp.code_hash, _hash(code, purpose, subject)):
            otp.used_at = timezone.now()
            otp.save(update_fields=["used_at"])
            return True
        otp.attempts += 1
        if otp.attempts >= MAX_ATTEMPTS:
            otp.used_at = timezone.now()
        otp.save(update_fields=["attempts", "used_at"])
        return False


def pending(purpose: str, subject: str) -> bool:
    return OneTimeCode.objects.filter(purpose=purpose, subject=subject, used_at__isnull=True,
                                      expires_at__gt=timezone.now()).exists()
