"""Staff (agents, operators) need a second factor before the inbox or the admin works.

* no authenticator (TOTP or security key/passkey) yet → the MFA setup page;
* an authenticator, but this session was not confirmed with it (e.g. a password-only sign-in
  through the desk login or the admin login) → allauth's MFA re-authentication, then back.

A session counts as MFA-confirmed when allauth recorded an ``mfa`` authentication in it: the
second step of sign-in, passkey sign-in, MFA re-authentication, or adding the first
authenticator in this session (see receivers.py).
``KARTU_REQUIRE_STAFF_MFA`` (default True) switches this off for a test suite only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _

PROTECTED = ("/desk/", "/admin/")
OPEN = ("/desk/login/", "/desk/logout/", "/admin/login/", "/admin/logout/")
STRONG_TYPES = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]


def is_staff_member(user: Any) -> bool:
    """Agents (the "agents" group), staff and superusers: the people who see member data."""
    from kartu.desk.forms import AGENTS_GROUP

    if not (user.is_authenticated and user.is_active):
        return False
    return bool(user.is_staff or user.is_superuser
                or user.groups.filter(name=AGENTS_GROUP).exists())


def session_has_mfa(request: HttpRequest) -> bool:
    records = request.session.get(AUTHENTICATION_METHODS_SESSION_KEY) or []
    return any(isinstance(r, dict) and r.get("method") == "mfa" for r in records)


class StaffMfaMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        redirect = self._check(request)
        return redirect if redirect is not None else self.get_response(request)

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        if not getattr(settings, "KARTU_REQUIRE_STAFF_MFA", True):
            return None
        path = request.path_info
        if not path.startswith(PROTECTED) or path.startswith(OPEN):
            return None
        user = getattr(request, "user", None)
        if user is None or not is_staff_member(user):
            return None
        if session_has_mfa(request):
            return None
        if not is_mfa_enabled(user, STRONG_TYPES):
            messages.warning(request, _(
                "Petugas wajib memakai verifikasi dua langkah. Aktifkan aplikasi autentikator "
                "atau kunci keamanan terlebih dahulu."))
            return HttpResponseRedirect(reverse("mfa_index"))
        query = urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")
