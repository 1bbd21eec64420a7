"""kartu's allauth adapter: sign-in attempts counted by kartu's own rate limiter
(:mod:`kartu.accounts.signin_limits`).

allauth's limiter takes a cache lock and reads and writes a pickled list of timestamps for each
rate: sixteen to twenty cache operations for one successful sign-in (the per-IP limit, the two
``login_failed`` rates and their roll-back), which cost more than the rest of the view on the
database cache and about as much as the password hash itself on Redis. The same rules are
counted in one statement and taken back in another. allauth's own ``login`` and
``login_failed`` rates are switched off in settings; every other allauth limit (sign-up,
password reset, …) is unchanged.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest

from kartu.accounts import signin_limits


class AccountAdapter(DefaultAccountAdapter):
    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        key = self._get_login_attempts_cache_key(request, **credentials)
        attempt = signin_limits.count_attempt(self.get_client_ip(request), key)
        self._kartu_attempt: signin_limits.Attempt | None = attempt
        if not attempt.allowed:
            raise self.validation_error("too_many_login_attempts")

    def _rollback_login_failed_rl_usage(self) -> None:
        """The password was right: take back the failed-attempt hits."""
        attempt = getattr(self, "_kartu_attempt", None)
        if attempt is not None:
            attempt.succeeded()
            self._kartu_attempt = None

    def _delete_login_attempts_cached_email(self, request: HttpRequest, **credentials: Any) -> None:
        """A password reset wipes the failed-attempt count of that address (as allauth's)."""
        signin_limits.clear_failures(self._get_login_attempts_cache_key(request, **credentials))
