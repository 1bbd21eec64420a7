"""Periodic job of the email channel: poll IMAP when ``KARTU_IMAP_URL`` is set."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from kartu.core.periodic import register


@register("email.poll_imap", every=timedelta(seconds=30))
def poll_imap() -> int:
    """Fetch new mail from the configured mailbox; a no-op without ``KARTU_IMAP_URL``."""
    if not settings.KARTU_IMAP_URL:
        return 0
    from kartu.channels.email import imap

    return imap.poll().stored
