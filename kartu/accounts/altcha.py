"""“Saya bukan robot”: ALTCHA proof of work, self-hosted, each solution usable once.

The server signs a challenge (``SHA-256(salt + n)`` with a secret ``n ≤ maxnumber`` and an
expiry inside the salt); the browser widget finds ``n`` and posts it back. Verification is local
(HMAC + hash + expiry, no outside call).

A valid signature only proves *we* issued the challenge, not that it is unused, so replay
protection is ours: the first accepted solution is recorded in the shared cache
(``caches[ALTCHA_CACHE_ALIAS]``: Redis or the database table, never a per-process memory cache)
with an atomic ``add()``, kept until the challenge expires. A second use fails in every process.

Fails closed: a missing, malformed, expired, wrongly signed or already used solution is refused,
and so is every solution while the cache cannot be reached.

The widget script is the one django-altcha ships (served from our own static files, no CDN).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast
from urllib.parse import parse_qs

import altcha as altcha_lib
from django import forms
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)

FIELD_NAME = "altcha"
MAX_PAYLOAD = 2048
_USED_PREFIX = "altcha-used:"

MESSAGES = {
    "missing": _(
        "Centang kotak “Saya bukan robot” terlebih dahulu (pemeriksaan ini memerlukan "
        "JavaScript)."
    ),
    "invalid": _("Pemeriksaan “Saya bukan robot” tidak valid. Silakan centang lagi."),
    "expired": _("Pemeriksaan “Saya bukan robot” sudah kedaluwarsa. Silakan centang lagi."),
    "replayed": _("Pemeriksaan “Saya bukan robot” ini sudah dipakai. Silakan centang lagi."),
    "error": _("Pemeriksaan “Saya bukan robot” tidak dapat diproses. Silakan coba lagi."),
}


class Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def message(self) -> str:
        return str(MESSAGES[self.reason])


def hmac_key() -> str:
    key = getattr(settings, "ALTCHA_HMAC_KEY", "")
    if not key:
        raise ImproperlyConfigured("ALTCHA_HMAC_KEY must be set")
    return str(key)


def max_number() -> int:
    return int(getattr(settings, "KARTU_ALTCHA_MAXNUMBER", 50_000))


def lifetime() -> int:
    """Seconds a challenge stays valid (ALTCHA_CHALLENGE_EXPIRE is in milliseconds)."""
    return int(getattr(settings, "ALTCHA_CHALLENGE_EXPIRE", 1_200_000)) // 1000


def new_challenge() -> dict[str, Any]:
    """A fresh signed challenge, as the widget expects it (``maxNumber`` etc.)."""
    challenge = altcha_lib.create_challenge(altcha_lib.ChallengeOptions(
        hmac_key=hmac_key(),
        max_number=max_number(),
        expires=timezone.now() + timedelta(seconds=lifetime()),
    ))
    return challenge.to_dict()


@dataclass(frozen=True)
class Solution:
    challenge: str
    salt: str
    expires: int


def _decode(payload: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Rejected("invalid") from None
    if not isinstance(data, dict):
        raise Rejected("invalid")
    fields = ("algorithm", "challenge", "number", "salt", "signature")
    if not all(isinstance(data.get(k), str) for k in fields if k != "number") or not (
        isinstance(data.get("number"), int) and not isinstance(data.get("number"), bool)
    ):
        raise Rejected("invalid")
    return data


def verify(payload: str | None) -> Solution:
    """Check a solution's signature, hash and expiry (not its single use). Raises Rejected."""
    if not payload:
        raise Rejected("missing")
    if len(payload) > MAX_PAYLOAD:
        raise Rejected("invalid")
    data = _decode(payload)
    params = parse_qs(data["salt"].partition("?")[2])
    try:
        expires = int(params["expires"][0])
    except (KeyError, IndexError, ValueError):
        raise Rejected("invalid") from None  # every challenge we issue has an expiry
    if expires < time.time():
        raise Rejected("expired")
    try:
        ok, _error = altcha_lib.verify_solution(
            cast("altcha_lib.altcha.PayloadType", data), hmac_key(), check_expires=True
        )
    except Exception:  # a malformed payload must never get further than a refusal
        log.warning("altcha: verification raised", exc_info=True)
        raise Rejected("invalid") from None
    if not ok:
        raise Rejected("invalid")
    return Solution(challenge=data["challenge"], salt=data["salt"], expires=expires)


def _used_key(solution: Solution) -> str:
    digest = hashlib.sha256(f"{solution.salt}\x00{solution.challenge}".encode()).hexdigest()
    return _USED_PREFIX + digest


def consume(payload: str | None) -> None:
    """Verify ``payload`` and spend it: the first call for a solution passes, every later one
    (in any process) raises Rejected("replayed"). Raises Rejected for anything else wrong."""
    solution = verify(payload)
    timeout = max(1, solution.expires - int(time.time()) + 5)
    cache = caches[getattr(settings, "ALTCHA_CACHE_ALIAS", "default")]
    try:
        first = cache.add(_used_key(solution), 1, timeout=timeout)
    except Exception:
        log.exception("altcha: the replay cache is unreachable; refusing (fail closed)")
        raise Rejected("error") from None
    if not first:
        raise Rejected("replayed")


@never_cache
@require_GET
def challenge_view(request: HttpRequest) -> JsonResponse:
    """The widget's ``challengeurl``: a new signed challenge per request (stateless)."""
    return JsonResponse(new_challenge())


def widget_strings() -> str:
    return json.dumps({
        "label": gettext("Saya bukan robot"),
        "verifying": gettext("Memeriksa…"),
        "verified": gettext("Terverifikasi"),
        "error": gettext("Pemeriksaan gagal. Coba lagi."),
        "expired": gettext("Pemeriksaan kedaluwarsa. Coba lagi."),
        "waitAlert": gettext("Sedang memeriksa… mohon tunggu."),
        "ariaLinkLabel": gettext("Kunjungi altcha.org"),
        "footer": "",
    }, ensure_ascii=False)


class AltchaWidget(forms.Widget):
    """The checkbox widget (``<altcha-widget>``); it fetches its challenge from our endpoint and
    puts the solution in a hidden input named like the field. Never re-renders a value: every
    submission needs a fresh solution."""

    template_name = "accounts/altcha_widget.html"

    def format_value(self, value: Any) -> None:
        return None

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        widget = context["widget"]
        widget["challenge_url"] = reverse("accounts:altcha_challenge")
        widget["strings"] = widget_strings()
        # The field's aria-describedby / aria-invalid (its error) go on <altcha-widget>, and
        # a small script hands them on to the checkbox the widget draws inside itself.
        widget["tied"] = bool(widget["attrs"].get("id")) and any(
            widget["attrs"].get(k) for k in ("aria-describedby", "aria-invalid"))
        return context

    def use_required_attribute(self, initial: Any) -> bool:
        return False  # <altcha-widget> is no form control: its own checkbox says it is required

    def value_from_datadict(self, data: Any, files: Any, name: str) -> str:
        return str(data.get(name) or "")

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return False


class AltchaField(forms.Field):
    widget = AltchaWidget
    default_error_messages = {"required": MESSAGES["missing"]}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("label", _("Saya bukan robot"))
        kwargs.setdefault("required", True)
        super().__init__(**kwargs)

    def validate(self, value: Any) -> None:
        super().validate(value)
        try:
            consume(value)
        except Rejected as exc:
            raise forms.ValidationError(MESSAGES[exc.reason], code=exc.reason) from None


class AltchaForm(forms.Form):
    """A form with only the robot check (the web chat's first message)."""

    altcha = AltchaField()


def solve(challenge: dict[str, Any]) -> str:
    """Solve a challenge the way the widget does (brute force up to maxNumber) and return the
    payload to post. For tests and the benchmark: a real solution, no verification mocked out."""
    salt, target = challenge["salt"], challenge["challenge"]
    for number in range(int(challenge["maxNumber"]) + 1):
        if hashlib.sha256(f"{salt}{number}".encode()).hexdigest() == target:
            payload = {
                "algorithm": challenge["algorithm"], "challenge": target, "number": number,
                "salt": salt, "signature": challenge["signature"],
            }
            return base64.b64encode(json.dumps(payload).encode()).decode()
    raise ValueError("challenge has no solution up to maxNumber")


def solved_payload() -> str:
    """A new challenge, solved (tests, benchmark)."""
    return solve(new_challenge())
