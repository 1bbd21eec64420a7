"""Signal handlers (connected in AccountsConfig.ready)."""

from __future__ import annotations

from typing import Any

from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.models import Authenticator
from allauth.mfa.signals import authenticator_added
from django.dispatch import receiver


@receiver(authenticator_added)
def _first_factor_counts_for_this_session(
    sender: Any, request: Any, user: Any, authenticator: Authenticator, **kwargs: Any
) -> None:
    """Adding a TOTP app or a security key proves possession of it (a code or a signature was
    just checked), so this session counts as MFA-confirmed: a new agent who sets up their first
    factor goes straight on to the inbox instead of typing a second code."""
    if request is None or authenticator.type == Authenticator.Type.RECOVERY_CODES:
        return
    record_authentication(request, user, "mfa", id=authenticator.pk, type=authenticator.type)
