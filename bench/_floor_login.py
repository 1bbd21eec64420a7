"""The floor under any sign-in on kartu's stack: a hand-written login view for the benchmark.

Never served by kartu: ``bench/login_bench.py --view floor`` puts it beside kartu's URLs to
measure what a sign-in costs with allauth's login view and flow taken out, everything the issue
requires still done, and the same server, middleware (sessions, CSRF, locale, messages, allauth's
and kartu's), database and settings as the real view:

* the ALTCHA solution is checked and spent (replay protection in the shared store);
* the three sign-in limits are counted before the password and the failures taken back after;
* one query finds the user by verified email, with whether they have a second factor;
* the password is checked (one Argon2id hash, re-hashed if the profile changed);
* ``django.contrib.auth.login``: new session key, CSRF token rotated, ``last_login`` written
  (it voids password-reset links); the session recorded for the member's session list;
* 302 to ``/akun/``.

``--view hash`` posts to :func:`hash_only` instead: the same request through the same server and
middleware, whose view only checks the posted password against the member's stored hash (no
query, no robot check, no limits, no session): what serving a request around one hash costs.

Not done in the floor view, compared with allauth's flow: login stages, the "signed in"
message, the record of the authentication method (for re-authentication), the redirect-URL
logic, form rendering on errors. The gap between this view and the real one is what allauth's
flow costs; the gap between the hash-only view and this one is what the issue's own
requirements cost on this stack; the hash-only view's gap to the raw hash is the server's.
"""

from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib.auth import login
from django.contrib.auth.hashers import check_password
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import include, path
from django.views.decorators.debug import sensitive_post_parameters
from login_bench import BENCH_VIEWS  # the URLs the bench posts to (bench/ is on the path)

from kartu.accounts import signin_limits
from kartu.accounts.altcha import Rejected, consume
from kartu.accounts.receivers import record_session_at_login

_stored: dict[str, str] = {}


@sensitive_post_parameters("password")
def floor_login(request: HttpRequest) -> HttpResponse:
    email = request.POST.get("login", "").strip().lower()
    password = request.POST.get("password", "")
    try:
        consume(request.POST.get("altcha", ""))
    except Rejected:
        return HttpResponseBadRequest("robot check")
    attempt = signin_limits.count_attempt(signin_limits.client_ip(request), email)
    if not attempt.allowed:
        return HttpResponseBadRequest("too many attempts")
    second_factor = Authenticator.objects.filter(
        user=OuterRef("user_id"), type__in=[Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]
    )
    address = (EmailAddress.objects.filter(email=email, verified=True).select_related("user")
               .annotate(mfa=Exists(second_factor)).first())
    if address is None or not address.user.check_password(password) or not address.user.is_active:
        return HttpResponseBadRequest("wrong email or password")
    attempt.succeeded()
    if address.mfa:
        return HttpResponseBadRequest("second factor needed (not in the floor view)")
    login(request, address.user, backend="allauth.account.auth_backends.AuthenticationBackend")
    record_session_at_login(sender=None, request=request, user=address.user)
    return HttpResponseRedirect("/akun/")


@sensitive_post_parameters("password")
def hash_only(request: HttpRequest) -> HttpResponse:
    email = request.POST.get("login", "")
    if email not in _stored:  # the first request of each member fetches the hash, once
        _stored[email] = EmailAddress.objects.select_related("user").get(email=email).user.password
    if not check_password(request.POST.get("password", ""), _stored[email]):
        return HttpResponseBadRequest("wrong password")
    return HttpResponseRedirect("/akun/")


urlpatterns = [
    path(BENCH_VIEWS["floor"][0].lstrip("/"), floor_login),
    path(BENCH_VIEWS["hash"][0].lstrip("/"), hash_only),
    path("", include("kartu.urls")),
]
