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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection


@lru_cache(maxsize=256)
def _qmark(sql: str) -> str:
    return sql.replace("%%", "\x00").replace("%s", "?").replace("\x00", "%")


class HotCursor:
    """The DB-API cursor under a thin wrapper: ``%s``-style SQL in, converted once per statement
    text for SQLite; prepared on PostgreSQL. With query logging on (tests,
    ``CaptureQueriesContext``), each statement is logged as Django logs its own."""

    def __init__(self, raw: Any, qmark: bool, prepare: bool) -> None:
        self._raw = raw
        self._qmark = qmark
        self._prepare = prepare
        self.fetchone = raw.fetchone
        self.fetchall = raw.fetchall

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        started = time.monotonic() if connection.queries_logged else 0.0
        if self._qmark:
            self._raw.execute(_qmark(sql), params)
        elif self._prepare:
            self._raw.execute(sql, params, prepare=True)
        else:
            self._raw.execute(sql, params)
        if started:
            if connection.vendor == "postgresql":
                shown = connection.ops.compose_sql(sql, params)  # type: ignore[attr-defined]
            else:
                shown = connection.ops.last_executed_query(self._raw, sql, params)
            connection.queries_log.append(
                {"sql": shown, "time": f"{time.monotonic() - started:.3f}"}
            )


@contextmanager
def hot_cursor() -> Iterator[Any]:
    """A :class:`HotCursor` on the default connection (inside or outside a transaction)."""
    vendor = connection.vendor
    if vendor not in ("sqlite", "postgresql"):  # pragma: no cover - kartu supports these two
        with connection.cursor() as plain:
            yield plain
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    prepare = vendor == "postgresql" and bool(settings.KARTU_DB_PREPARE)
    with connection.wrap_database_errors:
        if prepare:
            from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
                ServerBindingCursor,
            )

            raw = ServerBindingCursor(connection.connection)
        else:
            raw = connection.connection.cursor()
        try:
            yield HotCursor(raw, qmark=vendor == "sqlite", prepare=prepare)
        finally:
            raw.close()
