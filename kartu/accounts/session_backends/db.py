"""Database sessions (see the package docstring), each write a single statement outside a
transaction (Django's store wraps it in one even then: three statements on SQLite)."""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.db import DatabaseError, IntegrityError, router, transaction

from kartu.accounts.session_backends import WriteOnceOnCreate


class SessionStore(WriteOnceOnCreate, db.SessionStore):
    def _write(self, must_create: bool) -> None:
        using = router.db_for_write(self.model)
        if transaction.get_connection(using).in_atomic_block:
            super()._write(must_create)  # Django's save, with its savepoint
            return
        data = self._get_session(no_load=must_create)  # type: ignore[attr-defined]
        obj = self.create_model_instance(data)
        try:
            obj.save(force_insert=must_create, force_update=not must_create, using=using)
        except IntegrityError:
            if must_create:
                raise CreateError from None
            raise
        except DatabaseError:
            if not must_create:
                raise UpdateError from None
            raise
