"""Sign-in attempt limits, shared by every password form: the member portal (allauth, through
:class:`kartu.accounts.adapter.AccountAdapter`), the agents' desk and the admin site.

allauth's rules, counted with :class:`kartu.core.ratelimit.RateLimiter`:

* ``signin_ip``: sign-in attempts per client IP (30/minute);
* ``signin_failed_ip`` and ``signin_failed_key``: attempts per IP (10/minute) and per login
  name (5 per 5 minutes), counted *before* the password is checked, so that a burst of parallel
  guesses cannot slip past, and taken back when the password was right.

The three are counted in one statement (or one Redis round trip), the roll-back in one more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest

from kartu.core.ratelimit import Limit, RateLimiter

_limiter = RateLimiter()


@dataclass
class Attempt:
    hits: list[tuple[str, str, Limit]]
    at: float
    allowed: bool
    _settled: bool = field(default=False, repr=False)

    def succeeded(self) -> None:
        """The password was right: take back the failed-attempt hits (the per-IP attempt
        stays counted)."""
        if not self._settled:
            _limiter.undo_many([hit for hit in self.hits if hit[0] != "signin_ip"], self.at)
            self._settled = True


def count_attempt(ip: str, login_key: str) -> Attempt:
    now = time.time()
    hits = [(name, key, Limit.named(name)) for name, key in (
        ("signin_ip", ip), ("signin_failed_ip", ip), ("signin_failed_key", login_key),
    )]
    decisions = _limiter.hit_many(hits, now)
    return Attempt(hits, now, all(decision.allowed for decision in decisions))


def clear_failures(login_key: str) -> None:
    """Wipe the failed attempts of one login name (after a password reset)."""
    _limiter.clear("signin_failed_key", login_key, Limit.named("signin_failed_key"))


def client_ip(request: HttpRequest | None) -> str:
    from allauth.account.adapter import get_adapter

    if request is None:
        return "unknown"
    return str(get_adapter().get_client_ip(request))


def too_many_attempts() -> forms.ValidationError:
    from allauth.account.adapter import DefaultAccountAdapter

    return forms.ValidationError(
        DefaultAccountAdapter.error_messages["too_many_login_attempts"],
        code="too_many_login_attempts",
    )


class LimitedAuthenticationMixin:
    """For Django's username/password forms (desk, admin): count the attempt before the
    password is checked, refuse when over a limit, take it back when the password was right."""

    request: HttpRequest | None
    cleaned_data: dict[str, object]

    def clean(self) -> dict[str, object]:
        username = self.cleaned_data.get("username")
        if username and self.cleaned_data.get("password"):
            attempt = count_attempt(client_ip(self.request), f"staff:{str(username).lower()}")
            if not attempt.allowed:
                raise too_many_attempts()
            cleaned = super().clean()  # type: ignore[misc]  # authenticates, or raises
            attempt.succeeded()
            return cleaned
        return super().clean()  # type: ignore[misc]


class StaffLoginForm(LimitedAuthenticationMixin, AuthenticationForm):
    """The desk's sign-in form."""


class AdminLoginForm(LimitedAuthenticationMixin, AdminAuthenticationForm):
    """The admin site's sign-in form."""
