"""Cache (Redis) sessions; see the package docstring."""

from __future__ import annotations

from django.contrib.sessions.backends import cache

from kartu.accounts.session_backends import WriteOnceOnCreate


class SessionStore(WriteOnceOnCreate, cache.SessionStore):
    pass
