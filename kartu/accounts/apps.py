from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _create_cache_tables(using: str = "default", **_: Any) -> None:
    """The database cache (rate limits, ALTCHA replay markers) needs its table: create it after
    every migrate, so a fresh install, the test database and a switch from Redis all have it."""
    from django.conf import settings
    from django.core.management import call_command

    if any(c["BACKEND"].endswith("DatabaseCache") for c in settings.CACHES.values()):
        call_command("createcachetable", database=using, verbosity=0)


class AccountsConfig(AppConfig):
    name = "kartu.accounts"
    label = "accounts"
    verbose_name = "Akun peserta"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from kartu.accounts import (
            jobs,  # noqa: F401  (registers periodic jobs)
            receivers,  # (connects the signal handlers)
        )

        receivers.use_lean_session_recording()

        # The admin's sign-in counts attempts like every other password form (signin_limits).
        from django.contrib import admin

        from kartu.accounts.signin_limits import AdminLoginForm

        admin.site.login_form = AdminLoginForm

        post_migrate.connect(_create_cache_tables, sender=self)
