"""A cursor for the few statements that run on every request of the hot paths (verification,
rate limits, the audit append), where Django's per-statement overhead costs more than the query.

* PostgreSQL: server-side binding with prepared statements, so the statement is parsed and
  planned once per connection instead of at every call (planning the verification lookup took
  longer than running it). The ORM keeps Django's client-side binding; only these cursors
  prepare, so the server holds a handful of statements per connection. Behind a connection
  pooler in transaction mode that does not track prepared statements (PgBouncer before 1.21),
  set ``KARTU_DB_PREPARE=0``.
* SQLite: the statement goes to the sqlite3 cursor in its own ``?`` style, converted once and
  remembered, instead of being rewritten by a regular expression at every call.

Statements are written in the ``%s`` style as everywhere else in Django; errors become
``django.db`` errors; with query logging on (tests, ``CaptureQueriesContext``) the statements
are logged like any other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections


@lru_cache(maxsize=256)
def _qmark(sql: str) -> str:
    return sql.replace("%%", "\x00").replace("%s", "?").replace("\x00", "%")


class HotCursor:
    """The DB-API cursor under a thin wrapper: ``%s``-style SQL in, converted once per statement
    text for SQLite; prepared on PostgreSQL. With query logging on (tests,
    ``CaptureQueriesContext``), each statement is logged as Django logs its own."""

    __slots__ = ("_db", "_logged", "_prepare", "_qmark", "_raw", "fetchall", "fetchone")

    def __init__(self, db: Any, raw: Any, *, qmark: bool, prepare: bool) -> None:
        self._db = db
        self._raw = raw
        self._qmark = qmark
        self._prepare = prepare
        self._logged = db.queries_logged
        self.fetchone = raw.fetchone
        self.fetchall = raw.fetchall

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        started = time.monotonic() if self._logged else 0.0
        if self._qmark:
            self._raw.execute(_qmark(sql), params)
        elif self._prepare:
            self._raw.execute(sql, params, prepare=True)
        else:
            self._raw.execute(sql, params)
        if self._logged:
            db = self._db
            shown = (db.ops.compose_sql(sql, params) if db.vendor == "postgresql"
                     else db.ops.last_executed_query(self._raw, sql, params))
            db.queries_log.append({"sql": shown, "time": f"{time.monotonic() - started:.3f}"})


class hot_cursor:
    """A :class:`HotCursor` on the default connection (inside or outside a transaction).

    A class rather than a generator-based context manager: it runs several times per request,
    and the generator machinery and the connection proxy's lookups cost more than a statement
    on SQLite."""

    __slots__ = ("_errors", "_raw")

    def __enter__(self) -> HotCursor:
        db = connections[DEFAULT_DB_ALIAS]
        if db.connection is None or getattr(db, "health_check_enabled", True):
            db.close_if_health_check_failed()
            db.ensure_connection()
        vendor = db.vendor
        prepare = vendor == "postgresql" and _prepare_enabled()
        self._errors = db.wrap_database_errors
        self._errors.__enter__()
        if prepare:
            from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
                ServerBindingCursor,
            )

            self._raw = ServerBindingCursor(db.connection)
        else:
            self._raw = db.connection.cursor()
        return HotCursor(db, self._raw, qmark=vendor == "sqlite", prepare=prepare)

    def __exit__(self, *exc: Any) -> None:
        try:
            self._raw.close()
        finally:
            self._errors.__exit__(*exc)  # turns a DB-API error into Django's; never swallows


@lru_cache(maxsize=1)
def _prepare_enabled() -> bool:
    return bool(settings.KARTU_DB_PREPARE)

