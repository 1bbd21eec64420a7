"""Signal handlers (connected in AccountsConfig.ready)."""

from __future__ import annotations

from contextlib import nullcontext
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


def record_session_at_login(sender: Any, request: Any, **kwargs: Any) -> None:
    """Record the new session for the member's session list (allauth.usersessions).

    Replaces allauth's own receiver, which also purged every stale session of the member at each
    login: three queries per earlier session, on the path of every sign-in, where the hash of
    the password is the only work that should count. Stale rows are purged when the member
    opens their session list (allauth does it there too) and by the daily
    ``accounts.purge_user_sessions`` job."""
    from allauth.usersessions.models import UserSession
    from django.db import IntegrityError, transaction

    from kartu.accounts.signin_limits import client_ip

    if not request.session.session_key:
        request.session.save()
    # A sign-in has just cycled the session key, so the row is new: one INSERT instead of
    # allauth's get_or_create (a transaction with a SELECT and a savepoint around the INSERT).
    # The rare existing row (a key reused by a custom flow) goes through allauth's own path.
    agent_length = UserSession._meta.get_field("user_agent").max_length or 200
    in_transaction = transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic() if in_transaction else nullcontext():  # savepoint if needed
            UserSession.objects.create(
                user=request.user, session_key=request.session.session_key,
                ip=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:agent_length],
            )
    except IntegrityError:
        UserSession.objects.create_from_request(request)


def use_lean_session_recording() -> None:
    from allauth.account.signals import user_logged_in
    from allauth.usersessions import signals as usersessions_signals

    user_logged_in.disconnect(receiver=usersessions_signals.on_user_logged_in)
    user_logged_in.connect(receiver=record_session_at_login, dispatch_uid="kartu-usersession")
