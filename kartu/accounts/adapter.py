"""kartu's allauth adapter: sign-in attempts counted by kartu's own rate limiter.

allauth's limiter takes a cache lock and reads and writes a pickled list of timestamps for each
rate: sixteen to twenty cache operations for one successful sign-in (the per-IP limit, the two
``login_failed`` rates and their roll-back), which cost more than the rest of the view on the
database cache and about as much as the password hash itself on Redis. The same rules, counted
with :class:`kartu.core.ratelimit.RateLimiter` (one atomic increment per rate, one decrement to
take a harmless attempt back), in the same shared store:

* ``signin_ip``: sign-in attempts per client IP (allauth's ``login``, 30/minute);
* ``signin_failed_ip`` and ``signin_failed_key``: attempts per IP (10/minute) and per address
  (5 per 5 minutes), counted *before* the password is checked, so a burst of parallel guesses
  cannot slip past, and taken back when the password was right (allauth's ``login_failed``).

allauth's own ``login`` and ``login_failed`` rates are switched off in settings; every other
allauth limit (sign-up, password reset, …) is unchanged.
"""

from __future__ import annotations

import time
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest

from kartu.core.ratelimit import Limit, RateLimiter

_limiter = RateLimiter()
SIGNIN_LIMITS = ("signin_ip", "signin_failed_ip", "signin_failed_key")


class AccountAdapter(DefaultAccountAdapter):
    def _signin_keys(self, request: HttpRequest, **credentials: Any) -> dict[str, str]:
        ip = self.get_client_ip(request)
        return {
            "signin_ip": ip,
            "signin_failed_ip": ip,
            "signin_failed_key": self._get_login_attempts_cache_key(request, **credentials),
        }

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        now = time.time()
        hits = [(name, key, Limit.named(name))
                for name, key in self._signin_keys(request, **credentials).items()]
        decisions = _limiter.hit_many(hits, now)  # one statement / one Redis round trip
        self._kartu_counted = hits
        self._kartu_counted_at = now
        if not all(decision.allowed for decision in decisions):
            raise self.validation_error("too_many_login_attempts")

    def _rollback_login_failed_rl_usage(self) -> None:
        """The password was right: take back the two ``signin_failed_*`` hits (the per-IP
        attempt stays counted, as allauth's ``login`` rate does)."""
        hits = [hit for hit in getattr(self, "_kartu_counted", ()) if hit[0] != "signin_ip"]
        _limiter.undo_many(hits, getattr(self, "_kartu_counted_at", 0.0))
        self._kartu_counted = []

    def _delete_login_attempts_cached_email(self, request: HttpRequest, **credentials: Any) -> None:
        """A password reset wipes the failed-attempt count of that address (as allauth's)."""
        key = self._get_login_attempts_cache_key(request, **credentials)
        _limiter.clear("signin_failed_key", key, Limit.named("signin_failed_key"))
