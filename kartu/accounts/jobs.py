"""Housekeeping jobs of the accounts app."""

from __future__ import annotations

from datetime import timedelta

from kartu.core.periodic import register


@register("accounts.purge_user_sessions", every=timedelta(days=1))
def purge_user_sessions(batch: int = 2000) -> int:
    """Forget session-list rows whose session has ended (expired, signed out elsewhere, or no
    longer valid for the user), with allauth's own test, in batches by id."""
    from allauth.usersessions.models import UserSession

    purged = 0
    last = 0
    while True:
        rows = list(UserSession.objects.filter(pk__gt=last).order_by("pk")[:batch])
        if not rows:
            return purged
        purged += sum(1 for row in rows if row.purge())
        last = rows[-1].pk
