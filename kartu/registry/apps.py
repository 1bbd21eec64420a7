from __future__ import annotations

import hashlib
from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _sha256_hex(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def _sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """SQLite has no SHA-256: give every connection the one the audit append uses in SQL
    (kartu.registry.audit), so appending a record is a single INSERT statement."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "kartu_sha256_hex", 1, _sha256_hex, deterministic=True
        )


class RegistryConfig(AppConfig):
    name = "kartu.registry"
    label = "registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        connection_created.connect(_sqlite_functions, dispatch_uid="kartu-sqlite-functions")
